"""moveFromScanner [SITE]: complete the studies listed in DATADIR/active-scans/ from the PACS
(cron, every 5 minutes, locked): only series with fewer instances here than in the PACS are
retrieved; complete studies move to finished-scans/, failing ones to failed-scans/ with the
reason. Nothing is pulled while the enabled file switches the receiver off."""

from __future__ import annotations

import argparse
import sys

from fionagw.cli.common import job_parser
from fionagw.cli.pacs_job import run_pacs_job
from fionagw.config import SiteConfig

PROG = "moveFromScanner"


def _body(cfg: SiteConfig, args: argparse.Namespace) -> str:
    from fionagw.config.site import receiver_enabled
    from fionagw.pacs.scans import move_from_scanner

    if not receiver_enabled(cfg):
        return ""  # the receiver is off (enabled file): what we moved would not be received
    return move_from_scanner(cfg).summary()


def main(argv: list[str]) -> int:
    args = job_parser(PROG, __doc__ or "").parse_args(argv)
    return run_pacs_job(PROG, args, _body)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
