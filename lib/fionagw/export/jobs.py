"""The export queue: JSON lines with FIONA's prepared_downloads_list.jobs keys, one state file
per job (status, progress, result) and the job's password, if any, in a 0600 secret file that
the run removes. The queue line never holds the password."""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock

from fionagw.export.settings import DOWNLOAD, TYPES, ExportSettings
from fionagw.ops.atomic import write_bytes_atomic, write_json_atomic
from fionagw.ops.perms import SECRET_MODE, make_dirs

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
_ID = re.compile(r"^[0-9]{8}T[0-9]{6}-[0-9a-f]{8}$")


class ExportError(Exception):
    """A job that cannot be queued or run; str() is one line."""


@dataclass
class ExportJob:
    # FIONA's keys
    project: str
    studyinstanceuid: str = ""
    accessionnumber: str = ""
    exportType: str = "PURE"  # noqa: N815 (FIONA's key)
    patientid: str = ""
    event: str = ""
    destination: str = DOWNLOAD
    downloadAttempts: int = 0  # noqa: N815
    user: str = ""
    # ours
    id: str = ""
    requested: float = field(default_factory=time.time)
    encrypted: bool = False  # a password was given (it is only in the secret file)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _lock(settings: ExportSettings) -> FileLock:
    make_dirs(settings.folder)
    return FileLock(str(settings.folder / ".queue.lock"))


def new_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + secrets.token_hex(4)


def check_id(job_id: str) -> str:
    if not _ID.match(job_id):
        raise ExportError(f"no export job {job_id!r}")
    return job_id


def add_job(settings: ExportSettings, job: ExportJob, password: str = "") -> ExportJob:
    """Append a job to the queue (and its password to a 0600 secret file)."""
    job.exportType = job.exportType.upper()
    if job.exportType not in TYPES:
        raise ExportError(f"unknown export type {job.exportType!r} (types: {', '.join(TYPES)})")
    if not job.project:
        raise ExportError("an export needs a project")
    if not (job.studyinstanceuid or job.patientid):
        raise ExportError("an export needs a study UID or a participant")
    job.id = job.id or new_id()
    job.encrypted = bool(password)
    if password:
        make_dirs(settings.secrets, 0o700)
        write_bytes_atomic(settings.secrets / job.id, password.encode(), mode=SECRET_MODE)
    with _lock(settings):
        write_state(settings, job.id, {"status": QUEUED, "job": job.to_json()})
        with open(settings.queue, "a", encoding="utf-8") as f:
            f.write(json.dumps(job.to_json(), sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())
    return job


def queued(settings: ExportSettings) -> list[ExportJob]:
    """The jobs in the queue file (a line that does not parse is kept, and skipped)."""
    if not settings.queue.exists():
        return []
    out = []
    for line in settings.queue.read_text(encoding="utf-8").splitlines():
        try:
            data = json.loads(line)
            known = {k: v for k, v in data.items() if k in ExportJob.__dataclass_fields__}
            out.append(ExportJob(**known))
        except (ValueError, TypeError):
            continue
    return out


def update_queue(settings: ExportSettings, job_id: str, job: ExportJob | None) -> None:
    """Replace (or with None remove) one job's line; other lines, also ones added meanwhile
    by the web page, stay as they are."""
    with _lock(settings):
        lines = []
        if settings.queue.exists():
            for line in settings.queue.read_text(encoding="utf-8").splitlines():
                try:
                    same = json.loads(line).get("id") == job_id
                except (ValueError, AttributeError):
                    same = False
                if not same:
                    lines.append(line)
                elif job is not None:
                    lines.append(json.dumps(job.to_json(), sort_keys=True))
        write_bytes_atomic(settings.queue, "".join(x + "\n" for x in lines).encode())


def password(settings: ExportSettings, job: ExportJob) -> str:
    file = settings.secrets / job.id
    return file.read_text() if file.exists() else ""


def forget_password(settings: ExportSettings, job: ExportJob) -> None:
    (settings.secrets / job.id).unlink(missing_ok=True)


def write_state(settings: ExportSettings, job_id: str, state: dict[str, Any]) -> None:
    make_dirs(settings.state)
    state["updated"] = time.time()
    write_json_atomic(settings.state / f"{job_id}.json", state)


def read_state(settings: ExportSettings, job_id: str) -> dict[str, Any] | None:
    file = settings.state / f"{check_id(job_id)}.json"
    try:
        return json.loads(file.read_text())
    except (OSError, ValueError):
        return None


def all_states(settings: ExportSettings) -> list[dict[str, Any]]:
    """Every job's state, newest first."""
    out = []
    if settings.state.is_dir():
        for file in settings.state.glob("*.json"):
            try:
                out.append(json.loads(file.read_text()))
            except (OSError, ValueError):
                continue
    return sorted(out, key=lambda s: s.get("job", {}).get("id", ""), reverse=True)


def finished_file(settings: ExportSettings, state: dict[str, Any]) -> Path | None:
    """The zip of a finished download job, if it is still there."""
    name = state.get("file") or ""
    if state.get("status") != DONE or not name or "/" in name:
        return None
    path = settings.files / name
    return path if path.is_file() else None
