"""getAllPatients [DAYS] [SITE]: the inventory of the default PACS source (cron: hourly with
DAYS 0, nightly with DAYS 7): every study of the last DAYS days, its series and instance
counts beside what the gateway holds, in DATADIR/inventory/<source>.json (mode 0640).
FIONA's second argument is the project, which names a site (SITES) here. ``--complete``
lists the studies the gateway holds only part of in active-scans/ for moveFromScanner."""

from __future__ import annotations

import argparse
import sys

from fionagw.cli.common import parser
from fionagw.cli.pacs_job import run_pacs_job
from fionagw.config import SiteConfig

PROG = "getAllPatients"


def _body(cfg: SiteConfig, args: argparse.Namespace) -> str:
    from fionagw.config.pacs import load_pacs
    from fionagw.pacs.inventory import take_inventory

    if not load_pacs(cfg).sources and not args.source:
        return ""  # no PACS configured: nothing to ask (the cron line stays harmless)
    return take_inventory(cfg, args.days, args.source, complete=args.complete).summary()


def main(argv: list[str]) -> int:
    p = parser(PROG, __doc__ or "")
    p.add_argument(
        "days",
        nargs="?",
        type=int,
        default=0,
        metavar="DAYS",
        help="days back from today (default 0: today)",
    )
    p.add_argument(
        "site",
        nargs="?",
        default="",
        metavar="PROJECT",
        help="a site named in the config's SITES (default: the top-level settings)",
    )
    p.add_argument("--source", default="", help="a PACS source (default: pacs.default)")
    p.add_argument(
        "--complete",
        action="store_true",
        help="list studies the gateway holds only part of in active-scans/ (moveFromScanner)",
    )
    args = p.parse_args(argv)
    if args.days < 0:
        p.error("DAYS must not be negative")
    return run_pacs_job(PROG, args, _body)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
