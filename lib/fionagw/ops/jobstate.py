"""The last run of each cron job, for `fiona status`: DATADIR/.pids/<job><site>.last.json.

A job records one small JSON object when it finishes (atomically replaced)::

    with cron_lock(cfg, "clearOldFiles"):
        with job_run(cfg, "clearOldFiles") as run:
            ...
            run.summary = "3 studies deleted"

An exception inside the block is recorded as a failed run (its type and where it was raised;
the message only for the project's PHI-free errors, see ops/log_filter.py; no traceback)
and re-raised; ``SystemExit(0)`` counts as success. Or call :func:`record_run` directly.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from fionagw.config import SiteConfig
from fionagw.ops.atomic import write_bytes_atomic
from fionagw.ops.log_filter import exception_message


@dataclass
class JobRun:
    job: str
    site: str = ""
    ok: bool = True
    started: float = 0.0  # epoch seconds
    seconds: float = 0.0
    summary: str = ""
    pid: int = 0

    @property
    def finished(self) -> float:
        return self.started + self.seconds


def state_path(cfg: SiteConfig, job: str) -> Path:
    if not job or "/" in job or job.startswith("."):
        raise ValueError(f"bad job name {job!r}")
    return cfg.paths.job_state(job)


def record_run(
    cfg: SiteConfig,
    job: str,
    ok: bool,
    seconds: float,
    summary: str = "",
    started: float | None = None,
) -> JobRun:
    """Write the outcome of one run of ``job`` (best effort: an unwritable file is ignored)."""
    run = JobRun(
        job,
        cfg.site,
        bool(ok),
        time.time() - seconds if started is None else started,
        round(float(seconds), 3),
        summary[:500],
        os.getpid(),
    )
    try:
        cfg.paths.pids.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(state_path(cfg, job), json.dumps(asdict(run)).encode(), durable=False)
    except OSError:
        pass
    return run


def last_run(cfg: SiteConfig, job: str) -> JobRun | None:
    try:
        data = json.loads(state_path(cfg, job).read_text(encoding="utf-8"))
        return JobRun(**{k: data[k] for k in JobRun.__dataclass_fields__ if k in data})
    except (OSError, ValueError, TypeError):
        return None


def recorded_jobs(cfg: SiteConfig) -> list[str]:
    """Jobs of this site with a state file."""
    jobs = []
    for name, _ in cfg.paths.job_states():
        run = last_run(cfg, name)
        if run is not None and run.site == cfg.site:
            jobs.append(run.job)
    return jobs


class _Run:
    summary = ""
    ok = True


@contextmanager
def job_run(cfg: SiteConfig, job: str) -> Iterator[_Run]:
    """Record the run of the block; set ``.summary`` (and ``.ok = False`` for a soft failure)."""
    run = _Run()
    started, t0 = time.time(), time.monotonic()
    try:
        yield run
    except SystemExit as exc:
        ok = exc.code in (0, None)
        record_run(
            cfg,
            job,
            ok and run.ok,
            time.monotonic() - t0,
            run.summary or f"exit {exc.code}",
            started,
        )
        raise
    except BaseException as exc:
        # the summary reaches fiona status and the heartbeat POST: no message that may quote data
        summary = exception_message(exc)
        record_run(cfg, job, False, time.monotonic() - t0, summary, started)
        raise
    record_run(cfg, job, run.ok, time.monotonic() - t0, run.summary, started)
