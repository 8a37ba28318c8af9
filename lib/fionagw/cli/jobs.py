"""What the tracker cron jobs share: config, logging, the job lock, the tracker, one-line errors."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from fionagw.cli.common import cron_job, job_parser, prepare_job
from fionagw.config import ConfigError, SiteConfig
from fionagw.config.projects import ProjectsError
from fionagw.tracking.base import Tracker, TrackerError

# Errors a job reports in one line (the operator's problem: REDCap down, bad token, bad file,
# a bad section of config.json that only this job reads).
EXPECTED = (TrackerError, ProjectsError, ConfigError, OSError)


def run_job(
    prog: str,
    description: str,
    body: Callable[[SiteConfig, Tracker, argparse.Namespace], str],
    argv: list[str],
    extra_args: Callable[[argparse.ArgumentParser], None] | None = None,
) -> int:
    p = job_parser(prog, description)
    if extra_args:
        extra_args(p)
    args = p.parse_args(argv)
    cfg, log = prepare_job(args, prog)
    from fionagw.tracking.factory import open_tracker

    with cron_job(cfg, prog) as run:
        try:
            tracker = open_tracker(cfg)
            try:
                summary = body(cfg, tracker, args)
            finally:
                tracker.close()
        except EXPECTED as exc:
            log.error("job failed; the next run retries", extra={"error": str(exc)})
            print(f"{prog}: {exc}", file=sys.stderr)
            run.ok, run.summary = False, str(exc)
            return 1
        except Exception:
            logging.getLogger(f"fionagw.{prog}").exception("job failed unexpectedly")
            print(f"{prog}: unexpected error, see {cfg.paths.logfile(prog)}", file=sys.stderr)
            run.ok, run.summary = False, "unexpected error (see log)"
            return 1
        run.summary = summary
    if summary:
        log.info(summary)
        print(f"{prog}: {summary}")
    return 0
