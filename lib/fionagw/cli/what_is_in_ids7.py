"""whatIsInIDS7 [--hours N] [SITE]: ask the research PACS whether the transfers sent in the last
N hours (default 24) are all there; record the answer in the tracker, queue the missing again
where the project's resend_missing is on (FIONA's hourly C-FIND inventory)."""

from __future__ import annotations

import argparse
import sys
import time

from fionagw.cli.jobs import run_job
from fionagw.config import SiteConfig
from fionagw.tracking.base import Tracker


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--hours",
        type=float,
        default=24.0,
        help="check the transfers sent in the last HOURS hours (default 24)",
    )


def _body(cfg: SiteConfig, tracker: Tracker, args: argparse.Namespace) -> str:
    from fionagw.reconcile.check import reconcile

    return reconcile(cfg, tracker, horizon=time.time() - args.hours * 3600).summary()


def main(argv: list[str]) -> int:
    return run_job("whatIsInIDS7", __doc__ or "", _body, argv, _args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
