"""The Exports page's logic: queue an export for a project, the project's jobs with their
progress, and the finished file of a job (only through its own project)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fionagw.export import jobs as q
from fionagw.export.settings import DOWNLOAD, TYPES, load_exports

if TYPE_CHECKING:
    from fionagw.config.projects import Project
    from fionagw.config.site import SiteConfig

ROLE = "export"


@dataclass
class JobRow:
    id: str
    status: str
    type: str
    participant: str
    event: str
    phase: str
    percent: int
    files_done: int
    files_total: int
    bytes: int
    error: str
    file: str
    encrypted: bool


def _row(state: dict[str, Any]) -> JobRow:
    job = state.get("job", {})
    total = int(state.get("files_total") or 0)
    done = int(state.get("files_done") or 0)
    percent = 100 if state.get("status") == q.DONE else (done * 100 // total if total else 0)
    return JobRow(
        id=str(job.get("id", "")),
        status=str(state.get("status", "")),
        type=str(job.get("exportType", "")),
        participant=str(job.get("patientid", "")),
        event=str(job.get("event", "")),
        phase=str(state.get("phase", "")),
        percent=percent,
        files_done=done,
        files_total=total,
        bytes=int(state.get("bytes") or 0),
        error=str(state.get("error", "")),
        file=str(state.get("file", "")),
        encrypted=bool(job.get("encrypted")),
    )


def project_jobs(cfg: SiteConfig, project: str) -> list[JobRow]:
    """The project's export jobs, newest first (other projects' jobs are never listed)."""
    return [
        _row(s)
        for s in q.all_states(load_exports(cfg))
        if s.get("job", {}).get("project") == project
    ]


def request_export(
    cfg: SiteConfig,
    project: Project,
    user: str,
    participant: str,
    study_uid: str,
    event: str,
    export_type: str,
    destination: str,
    password: str,
) -> q.ExportJob:
    """Queue an export (the password goes only to the job's 0600 secret file)."""
    if participant.strip() and not project.valid_participant(participant.strip()):
        raise q.ExportError(
            f"{participant.strip()!r} is not a participant ID of {project.name}"
            f" (pattern {project.participant_id})"
        )
    if destination not in (DOWNLOAD, "") and cfg.destinations.get(destination) is None:
        raise q.ExportError(f"unknown destination {destination!r}")
    job = q.ExportJob(
        project=project.name,
        studyinstanceuid=study_uid.strip(),
        patientid=participant.strip(),
        event=event.strip(),
        exportType=export_type,
        destination=destination or DOWNLOAD,
        user=user,
    )
    return q.add_job(load_exports(cfg), job, password)


def job_project(cfg: SiteConfig, job_id: str) -> str | None:
    """The project of a job, or None when there is no such job."""
    try:
        state = q.read_state(load_exports(cfg), job_id)
    except q.ExportError:
        return None
    return None if state is None else str(state.get("job", {}).get("project", ""))


def job_file(cfg: SiteConfig, job_id: str) -> Path | None:
    settings = load_exports(cfg)
    state = q.read_state(settings, job_id)
    return None if state is None else q.finished_file(settings, state)


def folder_destinations(cfg: SiteConfig) -> list[str]:
    return [DOWNLOAD] + sorted(n for n, d in cfg.destinations.items() if d.type == "folder")


__all__ = ["ROLE", "TYPES", "JobRow", "project_jobs", "request_export", "job_file"]
