"""populateIncoming [SITE]: record settled studies in the tracker, create transfer requests."""

from __future__ import annotations

import argparse
import sys

from fionagw.cli.jobs import run_job
from fionagw.config import SiteConfig
from fionagw.routing.populate import Populator
from fionagw.tracking.base import Tracker


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--settle",
        type=float,
        default=None,
        metavar="SECONDS",
        help="a series JSON unchanged this long is complete (default arrival.settle_seconds, 60)",
    )


def _body(cfg: SiteConfig, tracker: Tracker, args: argparse.Namespace) -> str:
    settle = args.settle if args.settle is not None else cfg.arrival.settle_seconds
    report = Populator(cfg, tracker, settle).run()
    if not (report.studies or report.requests):
        return ""
    return f"{report.studies} studies updated, {report.new_series} new series, {len(report.requests)} transfer requests"


def main(argv: list[str]) -> int:
    return run_job("populateIncoming", __doc__ or "", _body, argv, _args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
