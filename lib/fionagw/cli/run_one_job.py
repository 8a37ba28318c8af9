"""runOneJob [SITE]: run the queued Workflows jobs (cron, every minute, under a lock): up to
workflows.max_concurrent at once, each with its limits; check, send and record their output.

FIONA's runOneJob.sh ran one job a minute; this one runs until the queue is empty (see
fionagw.workflows.worker). Give it a heartbeat.job_limits entry longer than your longest job."""

from __future__ import annotations

import argparse
import sys

from fionagw.cli.jobs import run_job
from fionagw.config import SiteConfig
from fionagw.tracking.base import Tracker


def _body(cfg: SiteConfig, tracker: Tracker, args: argparse.Namespace) -> str:
    from fionagw.workflows.worker import run_queue

    return run_queue(cfg).summary()


def main(argv: list[str]) -> int:
    return run_job("runOneJob", __doc__ or "", _body, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
