"""`fiona notify status|test CHANNEL`: the notification channels on the command line.

``status`` prints each channel's deliveries by state and its latest failures (exit 1 when a
delivery failed for good); ``test CHANNEL`` delivers a "test" event to the channel now and
prints the outcome (a dicom channel is C-ECHOed: a test has no study to file a report in).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from fionagw.cli.common import config_errors, load_site

PROGRAM = "fiona notify"
COMMAND = "notify"


def register(sub: Any) -> None:
    p = sub.add_parser(COMMAND, help="notifications: delivery status, test a channel")
    p.add_argument("--site", default="")
    acts = p.add_subparsers(dest="action", required=True)
    acts.add_parser("status", help="deliveries per channel and the latest failures")
    a = acts.add_parser("test", help="deliver a test event to CHANNEL now")
    a.add_argument("channel")


def run(args: argparse.Namespace) -> int:
    from fionagw.notify.deliver import notify_status, test_delivery
    from fionagw.ops.log import setup_logging

    with config_errors(PROGRAM):
        cfg = load_site(args)
        setup_logging(cfg, "notify")
    if args.action == "status":
        statuses = notify_status(cfg)
        if not statuses:
            print("no notification channels configured (config.json notifications.channels)")
        failed = False
        for s in statuses:
            counts = ", ".join(f"{n} {k}" for k, n in sorted(s.counts.items())) or "nothing yet"
            print(f"{s.name} ({s.type}): {counts}")
            for f in s.failures[:10]:
                at = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(f.get("at") or 0)))
                print(f"  {f['status']}: {f['type']} event {f['event']} at {at}: {f['error']}")
            failed |= bool(s.counts.get("failed"))
        return 1 if failed else 0
    from fionagw.tracking.base import TrackerError
    from fionagw.tracking.factory import open_tracker

    try:
        tracker = open_tracker(cfg)
    except TrackerError:
        tracker = None  # a test needs no tracker
    try:
        status, message = test_delivery(cfg, tracker, args.channel)
    finally:
        if tracker is not None:
            tracker.close()
    print(f"{args.channel}: {status}" + (f": {message}" if message else ""))
    return 0 if status == "delivered" else 1
