"""createZipFileCmd's pass over the export queue (under its cron lock, so one runner at a time).

Each job: find its studies in the project's research PACS (the study UID, or every study of
the participant), C-GET each into ``tmp_<job>/``, build the export type, zip it into
``files/`` (download) or a configured folder destination. A failure is logged without PHI,
the job's downloadAttempts counted and the job left queued until ``exports.max_attempts``;
then it fails for good. Its password file is removed when the job ends either way."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fionagw.export import build
from fionagw.export import jobs as q
from fionagw.export.settings import DOWNLOAD, ExportSettings, load_exports
from fionagw.export.source import event_of, find_studies, pull_study, research_pacs
from fionagw.pacs.client import PacsError, opaque

if TYPE_CHECKING:
    from fionagw.config.projects import Project
    from fionagw.config.site import SiteConfig

log = logging.getLogger("fionagw.export")


@dataclass
class RunSummary:
    done: int = 0
    retry: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        # the errors (they name studies) go to the job's state and the page, not the log
        return f"exports: {self.done} done, {self.retry} to retry, {self.failed} failed"


def log_safe(exc: Exception) -> str:
    """An error for the log: UIDs as opaque keys; an OSError only by its kind (its text may
    hold a path with a participant's folder)."""
    if isinstance(exc, OSError) and not isinstance(exc, PacsError):
        return type(exc).__name__
    return _UID.sub(lambda m: "uid:" + opaque(m.group()), str(exc))


_UID = re.compile(r"\b[0-9]+(?:\.[0-9]+){2,}\b")


def zip_name(
    job: q.ExportJob, participant: str, study_uid: str, accession: str, event: str = ""
) -> str:
    """FIONA's <project>_<participant>_<event>_<studyUID>_<accession>_<exportType>.zip."""
    parts = (job.project, participant, event or job.event, study_uid, accession, job.exportType)
    # '_' separates the fields, so inside one it (and anything unsafe in a name) becomes '-'
    return (
        "_".join(re.sub(r"[^A-Za-z0-9.-]+", "-", p).strip("-.") or "none" for p in parts) + ".zip"
    )


def _target_dir(cfg: SiteConfig, settings: ExportSettings, job: q.ExportJob) -> Path:
    if job.destination in ("", DOWNLOAD):
        return settings.files
    settings_obj = cfg.destinations.get(job.destination)
    if settings_obj is None or settings_obj.type != "folder":
        raise build.BuildError(
            f"export destination {job.destination!r} is not 'download' or a folder destination"
        )
    return Path(settings_obj.destination().path)  # type: ignore[attr-defined]


def run_job(cfg: SiteConfig, settings: ExportSettings, job: q.ExportJob, project: Project) -> dict:
    """Run one job; returns its result (files, counts). Raises PacsError/BuildError."""
    from fionagw.send.dicom import DicomDestination

    dest = cfg.destinations.get(project.destination)
    peer = dest.destination() if dest is not None else None
    if not isinstance(peer, DicomDestination):
        raise build.BuildError(f"project {job.project} has no dicom destination (research PACS)")
    source = research_pacs(peer)
    studies = find_studies(source, job.patientid, job.studyinstanceuid)
    if not studies:
        what = f"study {job.studyinstanceuid}" if job.studyinstanceuid else "participant's studies"
        raise PacsError(f"{source.name}: {what} not in the research PACS")
    if job.event and not job.studyinstanceuid:  # the participant's studies of that event only
        studies = [ds for ds in studies if event_of(ds) == job.event]
        if not studies:
            raise PacsError(
                f"{source.name}: no study of the participant for event {job.event!r} in the"
                " research PACS (its ReferringPhysicianName holds EventName:<event>)"
            )
    for ds in studies:  # a research PACS shared by projects: only this project's participants
        if not project.valid_participant(str(ds.get("PatientID", ""))):
            raise build.BuildError(
                f"study {ds.get('StudyInstanceUID', '')} is not project {job.project}'s (its"
                " PatientID does not match the project's participant pattern)"
            )
    target_dir = _target_dir(cfg, settings, job)
    password = q.password(settings, job)
    results: list[dict[str, Any]] = []
    state: dict[str, Any] = {"status": q.RUNNING, "job": job.to_json(), "started": time.time()}
    for ds in studies:
        study_uid = str(ds.get("StudyInstanceUID", ""))
        participant = job.patientid or str(ds.get("PatientID", ""))
        event = job.event or event_of(ds)
        accession = job.accessionnumber or str(ds.get("AccessionNumber", ""))
        tmp = settings.folder / f"tmp_{job.id}"
        build.remove_tree(tmp)
        try:
            state["phase"] = "retrieving"
            q.write_state(settings, job.id, state)
            n, size = pull_study(source, study_uid, tmp / "in")
            state.update(phase="building", retrieved=n, retrieved_bytes=size)
            q.write_state(settings, job.id, state)
            instances = build.read_instances(tmp / "in")
            about = {
                "project": job.project,
                "participant": participant,
                "event": event,
                "study": study_uid,
                "export type": job.exportType,
                "exported": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
            }
            root = tmp / "out"
            if job.exportType == "PURE":
                tree = build.build_pure(instances, root, participant, event, about)
            elif job.exportType == "NIFTI":
                tree = build.build_nifti(
                    instances, root, tmp / "work", participant, event, about, settings.dcm2niix
                )
            else:
                tree = build.build_dicom(instances, root, study_uid, about)

            def progress(done: int, total: int, nbytes: int) -> None:
                state.update(phase="zipping", files_done=done, files_total=total, bytes=nbytes)
                q.write_state(settings, job.id, state)

            name = zip_name(job, participant, study_uid, accession, event)
            size = build.write_zip(
                tree, target_dir / name, password, progress, settings.compress_level
            )
            results.append(
                {"file": name, "bytes": size, "instances": tree.instances, "series": tree.series}
            )
            log.info(
                "export written",
                extra={
                    "job": job.id,
                    "study_key": opaque(study_uid),
                    "type": job.exportType,
                    "instances": tree.instances,
                    "bytes": size,
                    "encrypted": bool(password),
                },
            )
        finally:
            build.remove_tree(tmp)
    return {"results": results, "state": state}


def run_queue(cfg: SiteConfig, projects: Mapping[str, Project]) -> RunSummary:
    settings = load_exports(cfg)
    out = RunSummary()
    for job in q.queued(settings):
        job.downloadAttempts += 1
        q.update_queue(settings, job.id, job)
        try:
            project = projects.get(job.project)
            if project is None:
                raise build.BuildError(f"unknown project {job.project!r}")
            done = run_job(cfg, settings, job, project)
        except (PacsError, build.BuildError, OSError) as exc:
            error = str(exc)
            final = job.downloadAttempts >= settings.max_attempts
            status = q.FAILED if final else q.QUEUED
            log.warning(
                "export failed",
                extra={
                    "job": job.id,
                    "attempt": job.downloadAttempts,
                    "final": final,
                    "error": log_safe(exc),
                },
            )
            q.write_state(
                settings, job.id, {"status": status, "job": job.to_json(), "error": error}
            )
            if final:
                q.update_queue(settings, job.id, None)
                q.forget_password(settings, job)
                out.failed += 1
            else:
                out.retry += 1
            out.errors.append(error)
            continue
        results = done["results"]
        state = done["state"]
        state.update(status=q.DONE, phase="done", results=results, finished=time.time())
        if job.destination in ("", DOWNLOAD) and len(results) == 1:
            state["file"] = results[0]["file"]
        state["files"] = [r["file"] for r in results]
        q.write_state(settings, job.id, state)
        q.update_queue(settings, job.id, None)
        q.forget_password(settings, job)
        out.done += 1
    return out
