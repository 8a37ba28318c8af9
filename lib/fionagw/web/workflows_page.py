"""What the Workflows page shows and does, without HTTP.

A user with the assign role on a project sees that project's streams (those serving it, and
those serving none), the studies of the incoming list by opaque key (never a UID in a URL),
and the project's jobs with status, exit code and reason; they launch a stream on studies,
read a job's log, download its output as a ZIP, cancel and retry. Admins also see every job
of the queue and the runner's resource settings.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from typing import Any

from fionagw.arrival.incoming import read_entries
from fionagw.config import SiteConfig
from fionagw.config.workflows import Stream
from fionagw.web.assign_queries import study_key
from fionagw.workflows import control, triggers
from fionagw.workflows.jobs import Job, JobError
from fionagw.workflows.runner import job_dir
from fionagw.workflows.worker import job_list

LOG_LIMIT = 200_000  # characters of a job log shown (the end)
ROLE = "assign"


@dataclass
class StudyChoice:
    key: str
    when: str
    description: str
    series: int
    images: int


@dataclass
class WorkflowsView:
    project: str
    streams: list[Stream]
    studies: list[StudyChoice]
    jobs: list[Job]
    queue: list[Job]  # every job (admins only; empty for others)
    settings: dict[str, Any]  # the runner's settings (admins only)


def project_streams(cfg: SiteConfig, project: str) -> list[Stream]:
    return [s for s in cfg.workflows.streams.values() if s.project in ("", project)]


def _studies(cfg: SiteConfig, secret: bytes) -> list[StudyChoice]:
    out = []
    for e in reversed(read_entries(cfg)):
        if (
            not e.study_uid
            or e.raw is not None
            or not cfg.paths.raw_study_dir(e.study_uid).is_dir()
        ):
            continue
        info = e.info
        out.append(
            StudyChoice(
                study_key(secret, e.study_uid),
                f"{info.get('study_date', '')} {info.get('study_time', '')}".strip(),
                str(info.get("study_description", "")),
                int(info.get("series_count") or 0),
                int(info.get("images") or 0),
            )
        )
    return out


def workflows_view(cfg: SiteConfig, secret: bytes, project: str, is_admin: bool) -> WorkflowsView:
    jobs = job_list(cfg).all()
    settings = {
        "runtime": cfg.workflows.runtime,
        "max_concurrent": cfg.workflows.max_concurrent,
        "cpus": cfg.workflows.limits.cpus,
        "memory_mb": cfg.workflows.limits.memory_mb,
        "time_limit_s": cfg.workflows.limits.time_limit_s,
        "network": cfg.workflows.limits.network,
    }
    return WorkflowsView(
        project,
        project_streams(cfg, project),
        _studies(cfg, secret),
        [j for j in reversed(jobs) if j.project == project],
        list(reversed(jobs)) if is_admin else [],
        settings if is_admin else {},
    )


def launch(
    cfg: SiteConfig, secret: bytes, project: str, stream: str, keys: list[str], user: str
) -> list[Job]:
    """Queue ``stream`` on the studies behind ``keys`` for ``project``; JobError."""
    if stream not in {s.name for s in project_streams(cfg, project)}:
        raise JobError(f"no stream {stream!r} for project {project}")
    by_key = {study_key(secret, e.study_uid): e.study_uid for e in read_entries(cfg) if e.study_uid}
    studies = [by_key[k] for k in keys if k in by_key]
    if not studies or len(studies) != len(keys):
        raise JobError("pick one or more studies of the list")
    return triggers.launch(cfg, stream, studies, user=user, project=project)


def project_job(cfg: SiteConfig, number: int, may_see: Any) -> Job | None:
    """Job ``number`` if the user may see it (``may_see(project) -> bool``)."""
    try:
        job = job_list(cfg).get(number)
    except JobError:
        return None
    return job if may_see(job.project) else None


def job_log(cfg: SiteConfig, job: Job) -> str:
    path = job_dir(cfg, job) / "job.log"
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return text[-LOG_LIMIT:]


def output_zip(cfg: SiteConfig, job: Job) -> bytes | None:
    """The job's output folder as a ZIP (None when it has none)."""
    output = job_dir(cfg, job) / "output"
    files = sorted(p for p in output.rglob("*") if p.is_file()) if output.is_dir() else []
    if not files:
        return None
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for p in files:
            z.write(p, p.relative_to(output).as_posix())
    return buf.getvalue()


def cancel(cfg: SiteConfig, job: Job, user: str) -> Job:
    return control.cancel(cfg, job.job_number, user)


def retry(cfg: SiteConfig, job: Job, user: str) -> Job:
    return control.retry(cfg, job.job_number, user)
