"""populateIncoming [SITE]: record settled studies in the tracker, create transfer requests."""

from __future__ import annotations

import argparse
import sys

from fionagw.cli.jobs import run_job
from fionagw.config import SiteConfig
from fionagw.routing.populate import SETTLE_S, Populator
from fionagw.tracking.base import Tracker


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--settle", type=float, default=SETTLE_S, metavar="SECONDS",
                   help=f"a series JSON unchanged this long is complete (default {SETTLE_S:.0f})")


def _body(cfg: SiteConfig, tracker: Tracker, args: argparse.Namespace) -> str:
    report = Populator(cfg, tracker, args.settle).run()
    if not (report.studies or report.requests):
        return ""
    return f"{report.studies} studies updated, {report.new_series} new series, {len(report.requests)} transfer requests"


def main(argv: list[str]) -> int:
    return run_job("populateIncoming", __doc__ or "", _body, argv, _args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
