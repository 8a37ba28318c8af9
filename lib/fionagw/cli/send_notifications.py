"""sendNotifications [SITE]: deliver the events of DATADIR/notify/events.jsonl to the channels
that subscribe to them (config.json ``notifications``; cron, every minute, under a lock so a
slow receiver never blocks the pipeline): each (event, channel) at least once, de-duplicated
by its key, retried with backoff, then "delivery failed" (``fiona notify status``). First it
records services that went down or came back (notify/watch.py), assigns new studies to groups
by their automatic rules and makes the group reports that are due (notify/groups.py)."""

from __future__ import annotations

import argparse
import sys

from fionagw.cli.jobs import run_job
from fionagw.config import SiteConfig
from fionagw.tracking.base import Tracker


def _body(cfg: SiteConfig, tracker: Tracker, args: argparse.Namespace) -> str:
    import logging

    from fionagw.notify.deliver import send_notifications
    from fionagw.notify.groups import GroupError, run_groups
    from fionagw.notify.watch import watch

    try:
        down, up = watch(cfg)  # service-down / service-up since the last run
    except Exception as exc:  # noqa: BLE001 - the status is a nicety; delivering is the job
        logging.getLogger("fionagw.notify").warning(
            "services not watched", extra={"error": type(exc).__name__}
        )
        down = up = 0
    try:
        groups = run_groups(cfg, tracker).summary()  # first: its reports go out in this run
    except GroupError as exc:  # a broken groups file must not stop the notifications
        logging.getLogger("fionagw.notify").error("groups not run", extra={"error": str(exc)})
        groups = f"groups: {exc}"
    services = f"services: {down} down, {up} back up"
    return f"{services}; {groups}; {send_notifications(cfg, tracker).summary()}"


def main(argv: list[str]) -> int:
    return run_job("sendNotifications", __doc__ or "", _body, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
