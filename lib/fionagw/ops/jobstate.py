"""The last run of each cron job, for `fiona status`: DATADIR/.pids/<job><site>.last.json.

A job records one small JSON object when it finishes (atomically replaced)::

    with cron_lock(cfg, "clearOldFiles"):
        with job_run(cfg, "clearOldFiles") as run:
            ...
            run.summary = "3 studies deleted"
            run.work = 3

``work`` says how much the run did (0: idle). `fiona run` logs a run at INFO only when it did
something (:func:`did_work`), so an idle job four times a minute does not bury the log; a job
that sets no ``work`` did something when its summary is not empty.

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
    work: int | None = None  # items the run handled; 0 idle, None: the job does not say

    @property
    def finished(self) -> float:
        return self.started + self.seconds


def did_work(run: JobRun) -> bool:
    """The run handled something (or failed): worth a line at INFO."""
    if not run.ok:
        return True
    return run.work > 0 if run.work is not None else bool(run.summary)


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
    work: int | None = None,
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
        work,
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


def run_since(cfg: SiteConfig, job: str, since: float) -> JobRun | None:
    """The record of a run of ``job`` that started at ``since`` or later (epoch seconds), or
    None (that run recorded nothing: a second copy that found the lock held, say)."""
    run = last_run(cfg, job)
    return run if run is not None and run.started >= since - 1.0 else None


def run_outcome(cfg: SiteConfig, job: str, since: float) -> tuple[bool, str] | None:
    """For the scheduler of `fiona run`: whether the run of ``job`` that started at ``since``
    did something, and its summary; None when it left no record (or ``job`` is "")."""
    run = run_since(cfg, job, since) if job else None
    return None if run is None else (did_work(run), run.summary)


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
    work: int | None = None


@contextmanager
def job_run(cfg: SiteConfig, job: str) -> Iterator[_Run]:
    """Record the run of the block; set ``.summary`` and ``.work`` (and ``.ok = False`` for a
    soft failure)."""
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
            run.work,
        )
        raise
    except BaseException as exc:
        # the summary reaches fiona status and the heartbeat POST: no message that may quote data
        summary = exception_message(exc)
        record_run(cfg, job, False, time.monotonic() - t0, summary, started)
        raise
    record_run(cfg, job, run.ok, time.monotonic() - t0, run.summary, started, run.work)
