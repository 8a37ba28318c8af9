"""Notifications benchmark (not a test): 1,000 events delivered to a webhook in one
sendNotifications run.

Builds a site with one webhook channel (HMAC-signed JSON POST) subscribed to send-succeeded,
emits N send-succeeded events through notify.emit (each an fsynced append, as the pipeline
does), starts a local receiver (tests/support/notify_peers.HttpReceiver, HTTP/1.1 keep-alive,
checks every signature), then times `bin/sendNotifications` as cron runs it (the whole
program: start-up, the lock, reading the log, the deliveries, the fsynced state) and a second
run that has nothing to do. Goal: every event delivered within one run. JSON in bench/results/.

    bench/notify [--events 1000] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))
sys.path.insert(0, str(ROOT / "tests"))

from fionagw.config import load_config  # noqa: E402
from fionagw.notify import emit  # noqa: E402
from support.notify_peers import HttpReceiver  # noqa: E402

SECRET = "bench-secret"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=1000)
    p.add_argument("--keep", action="store_true", help="keep the work folder")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-notify-"))
    hook = HttpReceiver(SECRET)
    try:
        secrets = work / "secrets.json"
        secrets.write_text(json.dumps({"notifications": {"hook": {"secret": SECRET}}}))
        os.chmod(secrets, 0o600)
        config = work / "config.json"
        config.write_text(
            json.dumps(
                {
                    "DATADIR": str(work / "data"),
                    "DICOMIP": "127.0.0.1",
                    "DICOMPORT": 11112,
                    "DICOMAETITLE": "FIONA",
                    "CLASSIFY_RULES": str(ROOT / "config" / "classifyRules.json"),
                    "tracker": {"secrets_file": str(secrets)},
                    "notifications": {
                        "channels": {"hook": {"type": "webhook", "url": hook.url + "/bench"}},
                        "subscriptions": [{"events": ["send-succeeded"], "channel": "hook"}],
                    },
                }
            )
        )
        cfg = load_config(config)
        cfg.paths.create()
        t0 = time.perf_counter()
        for i in range(args.events):
            emit(
                cfg,
                "send-succeeded",
                ref=f"1.2.826.0.1.3680043.99.{i}",
                project="ALPHA",
                pseudonym=f"ALPHA{i:04d}",
                study_uid=f"2.25.{10**20 + i}",
                reason="",
            )
        emit_s = time.perf_counter() - t0

        def run() -> tuple[float, str]:
            t = time.perf_counter()
            r = subprocess.run(
                # this virtualenv's python, as cron's launcher execs it (no install check)
                [sys.executable, str(ROOT / "bin" / "sendNotifications"), "--config", str(config)],
                capture_output=True,
                text=True,
                timeout=600,
            )
            if r.returncode != 0:
                raise SystemExit(f"sendNotifications failed: {r.stderr}")
            return time.perf_counter() - t, r.stdout.strip()

        first_s, first_out = run()
        second_s, second_out = run()
        delivered = len(hook.accepted)
        out = {
            "events": args.events,
            "emit_seconds": round(emit_s, 3),
            "emit_ms_per_event": round(1000 * emit_s / args.events, 3),
            "run_seconds": round(first_s, 3),
            "events_per_second": round(args.events / first_s, 1),
            "delivered_in_one_run": delivered,
            "duplicates": sum(n - 1 for n in hook.accepted.values()),
            "bad_signatures": hook.bad_signatures,
            "second_run_seconds": round(second_s, 3),
            "first_run": first_out,
            "second_run": second_out,
            "goal_met": delivered == args.events,
        }
        print(json.dumps(out, indent=2))
        results = ROOT / "bench" / "results"
        results.mkdir(exist_ok=True)
        (results / f"notify-{time.strftime('%Y%m%dT%H%M%S')}.json").write_text(json.dumps(out))
        return 0 if out["goal_met"] else 1
    finally:
        hook.close()
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
