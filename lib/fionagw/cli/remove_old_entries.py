"""removeOldEntries [SITE]: drop incoming-list entries older than arrival.incoming_days.

FIONA runs it every 4 hours. Under a non-blocking cron lock; the list is rewritten
atomically, and only when something was dropped.
"""

from __future__ import annotations

import logging
import sys

from fionagw.arrival import incoming
from fionagw.cli.common import cron_job, job_parser, prepare_job

PROGRAM = "removeOldEntries"


def main(argv: list[str]) -> int:
    p = job_parser(
        PROGRAM,
        "Drop studies older than arrival.incoming_days from the incoming list.",
        verbose="print the studies dropped",
    )
    p.add_argument(
        "--days",
        type=float,
        metavar="N",
        help="maximum age in days (default: the config's arrival.incoming_days)",
    )
    args = p.parse_args(argv)
    if args.days is not None and args.days < 0:
        p.error("--days must not be negative")
    cfg, log = prepare_job(args, PROGRAM)
    with cron_job(cfg, PROGRAM) as run:
        dropped = incoming.remove_old(cfg, args.days)
        run.work = len(dropped)
        run.summary = f"{len(dropped)} old entries dropped" if dropped else ""
    if dropped:
        log.info(
            "old entries dropped from the incoming list",
            extra={"count": len(dropped), "study_uids": [e.study_uid for e in dropped]},
        )
    else:
        logging.getLogger("fionagw.removeOldEntries").debug("nothing to drop")
    if args.verbose:
        for e in dropped:
            print(f"dropped {e.study_uid or e.line()[:80]} (epoch {e.epoch})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
