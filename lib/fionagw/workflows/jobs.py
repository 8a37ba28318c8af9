"""The job list: ``DATADIR/workflows/workflow_joblist.jobs``, one JSON object per line.

FIONA's keys come first (``type``, ``project``, ``job_number``, ``image``, ``user``, ``date``,
``ror_folder``, ``destination``, ``ROR_CONT_OPTIONS``), ours after them: the stream, what
triggered the job (study or series, the UIDs, the AE titles), its ``status``, ``exit_code``,
``reason``, times and attempts. FIONA removed a line when its job ended; we keep it, with its
outcome, so status, logs and retry work (the Workflows page and `fiona workflow` read them).

Every change is a read-modify-write of the whole file under an exclusive ``flock`` of a lock
file beside it, written to a temporary name and renamed: the web page, the CLI and the runner
may change it at once, and a reader never sees half a file.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from fionagw.ops.atomic import write_bytes_atomic
from fionagw.ops.perms import FILE_MODE, make_dirs

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
STATUSES = (QUEUED, RUNNING, DONE, FAILED, CANCELLED)
FINISHED = (DONE, FAILED, CANCELLED)
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"


class JobError(Exception):
    """A job cannot be found or changed as asked; str() is one line."""


@dataclass
class Job:
    job_number: int
    project: str
    stream: str
    study_uids: list[str]
    series_uid: str = ""  # a trigger-series job's series ("" for a study job)
    type: str = "stream"  # FIONA: "ror"
    image: str = ""
    user: str = ""
    date: str = ""
    ror_folder: str = ""  # FIONA's datajob_<n>_<image>_ folder name
    destination: str = ""
    ROR_CONT_OPTIONS: str = ""  # noqa: N815 - FIONA's key
    trigger: str = "study"  # "study", "series" or "manual"
    called: str = ""
    calling: str = ""
    status: str = QUEUED
    exit_code: int | None = None
    reason: str = ""
    started: str = ""
    finished: str = ""
    attempts: int = 0
    runner_pid: int = 0
    cancel_requested: bool = False
    sent: str = ""  # what left the gateway, one line ("3 instances to research-pacs, verified")
    extra: dict[str, Any] = field(default_factory=dict)  # keys we do not know (FIONA's own)

    @property
    def container_name(self) -> str:
        """The name its containers run under (cancel and clean-up find them by it)."""
        return f"fionagw-job-{self.job_number}"

    def to_json(self) -> str:
        data = asdict(self)
        extra = data.pop("extra")
        return json.dumps({**extra, **data}, sort_keys=False)

    @classmethod
    def from_json(cls, line: str) -> Job:
        data = json.loads(line)
        names = {f.name for f in fields(cls)} - {"extra"}
        known = {k: v for k, v in data.items() if k in names}
        if "study_uids" not in known:  # a FIONA line: no study named
            known["study_uids"] = []
        known.setdefault("stream", "")
        return cls(**known, extra={k: v for k, v in data.items() if k not in names})


def now_text() -> str:
    return time.strftime(DATE_FORMAT)


def job_folder(number: int, image: str) -> str:
    """FIONA's name: ``datajob_<n>_<image with : and / as _>_``."""
    name = image.replace(":", "_").replace("/", "_") if image else "exec"
    return f"datajob_{number}_{name}_"


class JobList:
    """The job list of one site (``path``: ``SitePaths.workflow_jobs``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock_path = path.with_name(path.name + ".lock")

    @contextmanager
    def _locked(self) -> Iterator[None]:
        make_dirs(self.path.parent)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _read(self) -> list[Job]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        jobs = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                jobs.append(Job.from_json(line))
            except (ValueError, TypeError) as exc:
                raise JobError(f"{self.path}: line {n}: not a job: {exc}") from None
        return jobs

    def _write(self, jobs: list[Job]) -> None:
        data = "".join(j.to_json() + "\n" for j in jobs).encode("utf-8")
        write_bytes_atomic(self.path, data)

    def all(self) -> list[Job]:
        with self._locked():
            return self._read()

    def get(self, number: int) -> Job:
        for job in self.all():
            if job.job_number == number:
                return job
        raise JobError(f"no workflow job {number}")

    def add(
        self, make: Callable[[int], Job], unique: Callable[[Job], bool] | None = None
    ) -> Job | None:
        """Append ``make(next number)``; None (nothing added) when ``unique`` is given and some
        job not yet finished, or done, already satisfies it (an arrival seen twice)."""
        with self._locked():
            jobs = self._read()
            if unique is not None and any(
                unique(j) and j.status not in (FAILED, CANCELLED) for j in jobs
            ):
                return None
            number = max((j.job_number for j in jobs), default=0) + 1
            job = make(number)
            jobs.append(job)
            self._write(jobs)
            return job

    def update(self, number: int, change: Callable[[Job], None]) -> Job:
        """Apply ``change`` to job ``number`` and write the list; the changed job."""
        with self._locked():
            jobs = self._read()
            for job in jobs:
                if job.job_number == number:
                    change(job)
                    self._write(jobs)
                    return job
        raise JobError(f"no workflow job {number}")

    def claim(self, runner_pid: int) -> Job | None:
        """The oldest queued job, marked running by ``runner_pid``; None when none is queued."""
        with self._locked():
            jobs = self._read()
            for job in jobs:
                if job.status == QUEUED:
                    job.status, job.started, job.finished = RUNNING, now_text(), ""
                    job.runner_pid, job.attempts = runner_pid, job.attempts + 1
                    job.exit_code, job.reason = None, ""
                    self._write(jobs)
                    return job
        return None
