"""anonymizeAndSend [--processes N] [SITE]: de-identify each queued transfer request and send it
to its project's destination (cron, every minute, under a lock)."""

from __future__ import annotations

import argparse
import sys

from fionagw.cli.jobs import run_job
from fionagw.config import SiteConfig
from fionagw.tracking.base import Tracker


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--processes",
        type=int,
        default=None,
        help="de-identification processes (default: one per CPU core)",
    )


def _body(cfg: SiteConfig, tracker: Tracker, args: argparse.Namespace) -> str:
    from fionagw.transfers.anonymize_and_send import AnonymizeAndSend

    return AnonymizeAndSend(cfg, tracker, processes=args.processes).run().summary()


def main(argv: list[str]) -> int:
    return run_job("anonymizeAndSend", __doc__ or "", _body, argv, _args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
