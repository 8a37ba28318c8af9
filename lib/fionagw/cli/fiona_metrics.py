"""`fiona metrics [--post] [--site SITE]`: print the Prometheus metrics, or send the heartbeat POST now.

`fiona run` serves the same text on metrics.host:metrics.port; this prints it once (for a
node_exporter textfile collector, or a look by hand). ``--post`` sends heartbeat.post_url
its report now; ``--post-if-due`` only when heartbeat.post_interval_seconds have passed (for
crontab mode: `* * * * * fiona metrics --post-if-due`).
"""

from __future__ import annotations

import sys
from typing import Any

from fionagw.cli.common import config_errors, load_site

PROGRAM = "fiona metrics"
COMMAND = "metrics"


def register(sub: Any) -> None:
    p = sub.add_parser(
        COMMAND, help="print the Prometheus metrics (or --post the heartbeat report now)"
    )
    p.add_argument("--site", default="")
    how = p.add_mutually_exclusive_group()
    how.add_argument(
        "--post", action="store_true", help="send the heartbeat POST to heartbeat.post_url now"
    )
    how.add_argument(
        "--post-if-due",
        action="store_true",
        help="send it only when heartbeat.post_interval_seconds have passed since the last one",
    )


def run(args: Any) -> int:
    from fionagw.ops.counters import update_counters
    from fionagw.ops.heartbeat_post import PostError, post_if_due
    from fionagw.ops.prometheus import render

    with config_errors(PROGRAM):
        cfg = load_site(args)
    if args.post or args.post_if_due:
        if not cfg.heartbeat.post_url:
            print(f"{PROGRAM}: heartbeat.post_url is not set in {cfg.config_file}", file=sys.stderr)
            return 2
        from fionagw.ops.log import setup_logging

        setup_logging(cfg, "heartbeatPost")
        try:
            outcome = post_if_due(cfg, force=args.post)
        except PostError as exc:
            print(f"{PROGRAM}: {exc}", file=sys.stderr)
            return 1
        if outcome is not None:
            print(f"{PROGRAM}: heartbeat POST to {cfg.heartbeat.post_url}: {outcome}")
        return 0
    try:
        sys.stdout.write(render(cfg, counters=update_counters(cfg, min_interval=0)))
    except OSError as exc:
        print(f"{PROGRAM}: {exc}", file=sys.stderr)
        return 1
    return 0
