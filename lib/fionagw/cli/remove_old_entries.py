"""removeOldEntries [SITE]: drop incoming-list entries older than arrival.incoming_days.

FIONA runs it every 4 hours. Under a non-blocking cron lock; the list is rewritten
atomically, and only when something was dropped.
"""

from __future__ import annotations

import logging
import sys

from fionagw.arrival import incoming
from fionagw.cli.common import add_site, fail_config, load_or_exit, parser
from fionagw.config import ConfigError, check_datadir, check_user
from fionagw.ops.locks import cron_lock
from fionagw.ops.log import setup_logging

PROGRAM = "removeOldEntries"


def main(argv: list[str]) -> int:
    p = parser(PROGRAM, "Drop studies older than arrival.incoming_days from the incoming list.")
    add_site(p)
    p.add_argument("--days", type=float, metavar="N",
                   help="maximum age in days (default: the config's arrival.incoming_days)")
    p.add_argument("-v", "--verbose", action="store_true", help="print the studies dropped")
    args = p.parse_args(argv)
    cfg = load_or_exit(args, PROGRAM)
    if args.days is not None and args.days < 0:
        p.error("--days must not be negative")
    try:
        check_user(cfg)
        check_datadir(cfg)
    except ConfigError as exc:
        return fail_config(PROGRAM, exc)
    log = setup_logging(cfg, PROGRAM)
    with cron_lock(cfg, PROGRAM):
        dropped = incoming.remove_old(cfg, args.days)
    if dropped:
        log.info("old entries dropped from the incoming list",
                 extra={"count": len(dropped), "study_uids": [e.study_uid for e in dropped]})
    else:
        logging.getLogger("fionagw.removeOldEntries").debug("nothing to drop")
    if args.verbose:
        for e in dropped:
            print(f"dropped {e.study_uid or e.line()[:80]} (epoch {e.epoch})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
