"""`fiona workflow list|run|cancel|retry|status`: the Workflows jobs from a shell.

fiona workflow list                      the streams, then every job with its status
fiona workflow run STREAM STUDY_UID...   queue a stream on studies (runOneJob runs it)
fiona workflow cancel N                  cancel a queued job, or stop a running one
fiona workflow retry N                   queue a failed or cancelled job again
fiona workflow status N                  one job: status, exit code, reason, its log's end
"""

from __future__ import annotations

import getpass
import sys
from typing import Any

from fionagw.cli.common import config_errors, load_site

PROGRAM = "fiona workflow"
COMMAND = "workflow"
LOG_TAIL_LINES = 20


def register(sub: Any) -> None:
    p = sub.add_parser(
        COMMAND, help="Workflows: streams and jobs (list, run, cancel, retry, status)"
    )
    p.add_argument("--site", default="")
    acts = p.add_subparsers(dest="action", required=True)
    acts.add_parser("list", help="the streams and every job")
    run = acts.add_parser("run", help="queue a stream on studies")
    run.add_argument("stream")
    run.add_argument("studies", nargs="+", metavar="STUDY_UID")
    run.add_argument("--project", default="", help="the project the job belongs to")
    for name, text in (
        ("cancel", "cancel a queued or running job"),
        ("retry", "queue a failed or cancelled job again"),
        ("status", "one job's status and the end of its log"),
    ):
        a = acts.add_parser(name, help=text)
        a.add_argument("job", type=int, metavar="N")


def _line(job: Any) -> str:
    what = f"series {job.series_uid}" if job.series_uid else f"study {','.join(job.study_uids)}"
    tail = f" exit {job.exit_code}" if job.exit_code is not None else ""
    reason = f": {job.reason}" if job.reason else ""
    return f"{job.job_number:>5} {job.status:<9} {job.stream} ({job.project or '-'}) {what}{tail}{reason}"


def run(args: Any) -> int:
    from fionagw.workflows import control, triggers
    from fionagw.workflows.jobs import JobError
    from fionagw.workflows.runner import job_dir
    from fionagw.workflows.worker import job_list

    with config_errors(PROGRAM):
        cfg = load_site(args)
    user = getpass.getuser()
    try:
        if args.action == "list":
            for s in cfg.workflows.streams.values():
                kind = "study" if s.study_steps else "series"
                print(f"stream {s.name} ({kind}, project {s.project or '-'}): {s.description}")
            for job in job_list(cfg).all():
                print(_line(job))
            return 0
        if args.action == "run":
            for job in triggers.launch(
                cfg, args.stream, args.studies, user=user, project=args.project
            ):
                print(f"{PROGRAM}: queued job {job.job_number} ({job.stream})")
            return 0
        if args.action == "cancel":
            job = control.cancel(cfg, args.job, user)
            done = "cancelled" if job.status != "running" else "stopping (its container is killed)"
            print(f"{PROGRAM}: job {job.job_number} {done}")
            return 0
        if args.action == "retry":
            job = control.retry(cfg, args.job, user)
            print(f"{PROGRAM}: job {job.job_number} queued again")
            return 0
        job = job_list(cfg).get(args.job)
        print(_line(job))
        if job.sent:
            print(f"sent: {job.sent}")
        log = job_dir(cfg, job) / "job.log"
        if log.is_file():
            lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
            print("\n".join(lines[-LOG_TAIL_LINES:]))
        return 0
    except JobError as exc:
        print(f"{PROGRAM}: {exc}", file=sys.stderr)
        return 1
