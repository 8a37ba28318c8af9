"""heartbeat [SITE] (cron, every minute): C-ECHO our receiver, restart it if it hangs; end hung cron jobs."""

from __future__ import annotations

import os
import sys

from fionagw.cli.common import cron_job, job_parser, prepare_job
from fionagw.ops.heartbeat import run_heartbeat
from fionagw.ops.heartbeat_post import PostError, post_if_due

PROGRAM = "heartbeat"


def main(argv: list[str]) -> int:
    p = job_parser(
        PROGRAM,
        "Check that the receiver answers C-ECHO (restart it if not); kill cron jobs "
        "that ran longer than their limit (heartbeat.job_limit_s).",
        verbose="print what was found",
    )
    args = p.parse_args(argv)
    cfg, _log = prepare_job(args, PROGRAM)
    with cron_job(cfg, PROGRAM) as run:
        result = run_heartbeat(cfg)
        run.summary = result.summary()
        # an answering (or busy) receiver is the idle case; a restart, a killed job is work
        run.work = (result.receiver == "restarted") + len(result.killed_jobs) + len(result.problems)
        run.ok = result.receiver != "down" and not result.problems
    if not os.environ.get("FIONA_SUPERVISOR"):  # fiona run posts from its own thread
        try:
            post_if_due(cfg)  # the optional heartbeat POST (heartbeat.post_url), crontab mode
        except PostError as exc:
            result.problems.append(f"heartbeat POST: {exc}")
    if (
        args.verbose
        or result.receiver in ("restarted", "down")
        or result.killed_jobs
        or result.problems
    ):
        print(f"{PROGRAM}: {result.summary()}")
    return 0 if run.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
