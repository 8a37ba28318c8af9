"""sendNotifications [SITE]: deliver the events of DATADIR/notify/events.jsonl to the channels
that subscribe to them (config.json ``notifications``; cron, every minute, under a lock so a
slow receiver never blocks the pipeline): each (event, channel) at least once, de-duplicated
by its key, retried with backoff, then "delivery failed" (``fiona notify status``)."""

from __future__ import annotations

import argparse
import sys

from fionagw.cli.jobs import run_job
from fionagw.config import SiteConfig
from fionagw.tracking.base import Tracker


def _body(cfg: SiteConfig, tracker: Tracker, args: argparse.Namespace) -> str:
    from fionagw.notify.deliver import send_notifications

    return send_notifications(cfg, tracker).summary()


def main(argv: list[str]) -> int:
    return run_job("sendNotifications", __doc__ or "", _body, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
