"""detectStudyArrival: finished series and studies, by the age of their job files.

The SCP touches the study job ``site/.arrived/"<calling> <called> <ip> scp_<Study>"`` for
every stored file and processSingleFile touches the series job
``"<calling> <called> <ip> <Study> <Series>"`` for every filed image. A job file whose mtime
is at least ``cfg.arrival.quiet_seconds`` old is finished (no image for that long); younger
ones wait for a later run (cron runs this 4 times a minute, under a cron lock).

Series job: recount NumFiles from raw/<Study>/<Series>/ into the series JSON, then (when
``cfg.arrival.quarantine``) write quarantine/<Study>_<Series>.{tgz,md5sum,json}.

Study job: the study's summary (every series it has in raw/) goes on the incoming list
(one line per study, replaced on update) and a ``study-arrived`` event is recorded, or
``study-updated`` when the study was on the list already (a late series). A study waits
while any of its jobs is still young, so its summary is complete, and while its archive
holds images processSingleFile has not filed yet (for at most UNFILED_PATIENCE_S after the
last image: a stuck file must not hide the study for ever). A study that only has
series jobs (files filed without the SCP, e.g. ``processSingleFile send``) is summarised
when its last series job finishes.

A job is deleted after it is handled only if its mtime did not change meanwhile (a new
image came in: the job stays for the next run). To make that check race-free the job is
first renamed to a private name; a touch after that creates a fresh job file. A job whose
handling failed stays and is retried at the next run.

FIONA's own script ran docker "inventions" (ABCD phantom QC, compliance checks) here; those
are not part of this gateway. Fixes over FIONA: a series is handled once per run even when
several connections filed it, and the md5sum is written last (never beside a half-made tgz).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fionagw import notify
from fionagw.arrival import incoming
from fionagw.arrival.events import record_event
from fionagw.arrival.quarantine import QuarantineResult, quarantine_series
from fionagw.config import SiteConfig
from fionagw.ops.log_filter import exception_message  # printed: no message quoting data
from fionagw.organize.series_json import read_series, write_series
from fionagw.pacs.mpps_records import complete_by_mpps
from fionagw.paths import parse_job_name

LOGGER = logging.getLogger(__name__)

CLAIM_PREFIX = ".claimed-"
# A study whose archive holds images processSingleFile has not filed yet waits for them this
# long (at least; 10 quiet periods if longer) after its last image, then is listed anyway.
UNFILED_PATIENCE_S = 600


@dataclass(frozen=True)
class Job:
    """One file in site/.arrived/."""

    path: Path
    mtime_ns: int
    calling: str
    called: str
    ip: str
    study_uid: str
    series_uid: str = ""  # empty for a study job

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def is_series(self) -> bool:
        return bool(self.series_uid)


def parse_job(path: Path, mtime_ns: int) -> Job | None:
    fields = parse_job_name(path.name)
    return None if fields is None else Job(path, mtime_ns, *fields)


@dataclass
class SeriesDone:
    study_uid: str
    series_uid: str
    calling: str
    called: str
    ip: str
    num_files: int
    quarantine: QuarantineResult | None = None
    missing: bool = False  # the raw/ folder was gone (e.g. cleared): nothing to do
    seconds: float = 0.0


@dataclass
class StudyDone:
    study_uid: str
    calling: str
    called: str
    ip: str
    new: bool  # True: entered the incoming list; False: its entry was updated
    series: list[dict[str, Any]] = field(default_factory=list)  # as on the incoming list
    images: int = 0
    entry: incoming.IncomingEntry | None = None
    event: Path | None = None


@dataclass
class ArrivalReport:
    """What one run completed; the hook for later work (tracker, routing, notifications)."""

    series: list[SeriesDone] = field(default_factory=list)
    studies: list[StudyDone] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # job files still too young
    deferred: list[str] = field(default_factory=list)  # studies waiting for a young series
    kept: list[str] = field(default_factory=list)  # finished jobs touched while handled
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0


# -- job files -----------------------------------------------------------------------------------


def scan(cfg: SiteConfig) -> list[Job]:
    """The job files of the site, oldest first (unknown names are logged and ignored)."""
    jobs = []
    try:
        entries = list(os.scandir(cfg.paths.arrived))
    except FileNotFoundError:
        return []
    for entry in entries:
        if entry.name.startswith("."):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue
        job = parse_job(Path(entry.path), st.st_mtime_ns)
        if job is None:
            LOGGER.debug(
                "not a job file name (or an unsafe UID); ignored", extra={"job": entry.name}
            )
            continue
        jobs.append(job)
    jobs.sort(key=lambda j: (j.mtime_ns, j.name))
    return jobs


def finish_job(job: Job) -> bool:
    """Delete a handled job unless it was touched meanwhile; True when deleted."""
    claimed = job.path.with_name(f"{CLAIM_PREFIX}{os.getpid()}-{job.name}")
    try:
        os.rename(job.path, claimed)
    except FileNotFoundError:
        return True
    try:
        unchanged = os.stat(claimed).st_mtime_ns == job.mtime_ns
    except FileNotFoundError:
        return True
    if not unchanged:
        try:
            os.link(claimed, job.path)  # back for the next run, unless a fresh one exists
        except FileExistsError:
            pass
    os.unlink(claimed)
    return unchanged


def recover_claimed(cfg: SiteConfig) -> int:
    """Put back jobs a crashed run had claimed but not finished (we hold the cron lock)."""
    n = 0
    try:
        entries = [e.name for e in os.scandir(cfg.paths.arrived) if e.name.startswith(CLAIM_PREFIX)]
    except FileNotFoundError:
        return 0
    for name in entries:
        claimed = cfg.paths.arrived / name
        original = cfg.paths.arrived / name[len(CLAIM_PREFIX) :].split("-", 1)[-1]
        try:
            os.link(claimed, original)
        except FileExistsError:
            pass
        except OSError:
            continue
        os.unlink(claimed)
        n += 1
    if n:
        LOGGER.warning("put back job files claimed by an interrupted run", extra={"count": n})
    return n


# -- handling --------------------------------------------------------------------------------------


def handle_series(cfg: SiteConfig, job: Job) -> SeriesDone:
    """Recount NumFiles into the series JSON; write the quarantine files if enabled."""
    t0 = time.perf_counter()
    done = SeriesDone(job.study_uid, job.series_uid, job.calling, job.called, job.ip, 0)
    series_dir = cfg.paths.raw_series_dir(job.study_uid, job.series_uid)
    json_path = cfg.paths.series_json(job.study_uid, job.series_uid)
    try:
        files = [e.name for e in os.scandir(series_dir) if not e.name.startswith(".")]
    except FileNotFoundError:
        LOGGER.warning(
            "series folder is gone; job dropped",
            extra={"study_uid": job.study_uid, "series_uid": job.series_uid},
        )
        done.missing = True
        return done
    before = os.stat(json_path)
    record = read_series(json_path)  # a bad record fails the job: it stays for the next run
    done.num_files = len(files)
    if record.get("NumFiles") != str(len(files)):
        now = os.stat(json_path)
        if (now.st_mtime_ns, now.st_size) == (before.st_mtime_ns, before.st_size):
            LOGGER.info(
                "NumFiles recounted",
                extra={
                    "study_uid": job.study_uid,
                    "series_uid": job.series_uid,
                    "was": record.get("NumFiles"),
                    "now": len(files),
                },
            )
            record["NumFiles"] = str(len(files))
            write_series(json_path, record, tmpdir=cfg.paths.temp)
        # else processSingleFile has just written it (a new image): it touches the job too,
        # so the next run recounts; writing our older copy now would undo its merge.
    if cfg.arrival.quarantine:
        done.quarantine = quarantine_series(
            cfg, job.study_uid, job.series_uid, files=files, series_json=json_path.read_bytes()
        )
    done.seconds = time.perf_counter() - t0
    q = done.quarantine
    LOGGER.info(
        "series complete",
        extra={
            "study_uid": job.study_uid,
            "series_uid": job.series_uid,
            "num_files": done.num_files,
            "calling": job.calling,
            "seconds": round(done.seconds, 3),
            **({"tgz": str(q.tgz), "tgz_bytes": q.bytes_out, "md5": q.md5} if q else {}),
        },
    )
    if q and q.skipped:
        LOGGER.warning(
            "files missing from the archive were left out of the quarantine tgz",
            extra={
                "study_uid": job.study_uid,
                "series_uid": job.series_uid,
                "count": len(q.skipped),
            },
        )
    return done


def unfiled(cfg: SiteConfig, study_uid: str) -> int:
    """Archived files of a study that have no raw/ link yet (processSingleFile lagging or down)."""
    try:
        archived = sum(
            1
            for e in os.scandir(cfg.paths.archive_study_dir(study_uid))
            if not e.name.startswith(".") and e.is_file(follow_symlinks=False)
        )
    except FileNotFoundError:
        return 0
    linked = 0
    try:
        for series in os.scandir(cfg.paths.raw_study_dir(study_uid)):
            if series.is_dir(follow_symlinks=False):
                linked += sum(1 for e in os.scandir(series.path) if not e.name.startswith("."))
    except FileNotFoundError:
        pass
    return max(0, archived - linked)


def handle_study(cfg: SiteConfig, study_uid: str, conn: Job) -> StudyDone | None:
    """Put the study on the incoming list and record its event; None if raw/ has nothing."""
    summary = incoming.study_summary(cfg, study_uid, conn.calling, conn.called, conn.ip)
    if not summary["series_count"]:
        LOGGER.warning("study has no series in raw/; not listed", extra={"study_uid": study_uid})
        return None
    previous = incoming.find(cfg, study_uid)
    kind = "study-arrived" if previous is None else "study-updated"
    # Event first, then the list: a crash in between repeats the event (at least once)
    # rather than losing it.
    event = record_event(
        cfg,
        kind,
        study_uid=study_uid,
        calling=summary["calling"],
        called=summary["called"],
        ip=summary["ip"],
        series=summary["series"],
        images=summary["images"],
    )
    notify.emit(cfg, "study-stable", ref=study_uid, series=summary["series_count"])
    entry, _ = incoming.upsert(cfg, study_uid, summary)
    if cfg.workflows.streams:  # the Workflows streams this arrival starts
        from fionagw.workflows.triggers import queue_for_arrival

        queue_for_arrival(cfg, study_uid, summary["called"], summary["calling"], summary["series"])
    LOGGER.info(
        "study complete" if previous is None else "study updated",
        extra={
            "study_uid": study_uid,
            "calling": summary["calling"],
            "series": summary["series_count"],
            "images": summary["images"],
        },
    )
    return StudyDone(
        study_uid,
        summary["calling"],
        summary["called"],
        summary["ip"],
        previous is None,
        summary["series"],
        summary["images"],
        entry,
        event,
    )


def check_stable_study(cfg: SiteConfig, study_uid: str) -> None:
    """QC of a study that became stable or got a new series (qc/run.py); a failure is
    logged and the study stays listed: the transfer's gate checks it again before sending."""
    # imported here: pydicom's import would cost every run (4 a minute), not only those
    # that complete a study
    from fionagw.qc.run import check_study

    try:
        check_study(cfg, study_uid)
    except Exception:
        LOGGER.exception("QC of the study failed", extra={"study_uid": study_uid})


def run(cfg: SiteConfig, *, now_ns: int | None = None) -> ArrivalReport:
    """One pass over site/.arrived/ (call it under ``cron_lock``)."""
    t0 = time.perf_counter()
    report = ArrivalReport()
    recover_claimed(cfg)
    jobs = scan(cfg)
    now_ns = time.time_ns() if now_ns is None else now_ns
    quiet_ns = cfg.arrival.quiet_seconds * 1_000_000_000
    finished = [j for j in jobs if now_ns - j.mtime_ns >= quiet_ns]
    young = [j for j in jobs if now_ns - j.mtime_ns < quiet_ns]
    # A study whose MPPS says COMPLETED and whose referenced instances are all filed is done
    # now: no need to wait for the quiet period (pacs/mpps_records.py).
    early = complete_by_mpps(cfg, {j.study_uid for j in young}) if young else set()
    if early:
        finished += [j for j in young if j.study_uid in early]
        young = [j for j in young if j.study_uid not in early]
        LOGGER.info("studies complete by MPPS", extra={"studies": len(early)})
    report.waiting = [j.name for j in young]
    young_studies = {j.study_uid for j in young}

    # Series first, so that the study summaries below see recounted series.
    series_jobs: dict[tuple[str, str], list[Job]] = {}
    for job in finished:
        if job.is_series:
            series_jobs.setdefault((job.study_uid, job.series_uid), []).append(job)
    handled_series_conn: dict[str, Job] = {}
    for (study, series), group in series_jobs.items():
        newest = group[-1]
        try:
            done = handle_series(cfg, newest)
        except Exception as exc:
            LOGGER.exception(
                "series handling failed; job kept for the next run",
                extra={"study_uid": study, "series_uid": series},
            )
            report.errors.append(f"series {study} {series}: {exception_message(exc)}")
            continue
        report.series.append(done)
        handled_series_conn[study] = newest
        for job in group:
            if not finish_job(job):
                report.kept.append(job.name)

    # Studies: finished study jobs, and studies filed without any study job.
    study_jobs: dict[str, list[Job]] = {}
    for job in finished:
        if not job.is_series:
            study_jobs.setdefault(job.study_uid, []).append(job)
    all_study_jobs = {j.study_uid for j in jobs if not j.is_series}
    candidates: dict[str, Job] = {uid: group[-1] for uid, group in study_jobs.items()}
    for uid, job in handled_series_conn.items():
        if uid not in all_study_jobs:
            candidates.setdefault(uid, job)
    patience_ns = max(UNFILED_PATIENCE_S, 10 * cfg.arrival.quiet_seconds) * 1_000_000_000
    for uid, conn in candidates.items():
        if uid in young_studies:
            report.deferred.append(uid)
            LOGGER.debug("study waits for its young jobs", extra={"study_uid": uid})
            continue
        missing = unfiled(cfg, uid)
        if missing:
            if now_ns - conn.mtime_ns < patience_ns:
                report.deferred.append(uid)
                LOGGER.debug(
                    "study waits for processSingleFile to file its images",
                    extra={"study_uid": uid, "unfiled": missing},
                )
                continue
            LOGGER.warning(
                "archived images still not filed in raw/; listing the study without them",
                extra={"study_uid": uid, "unfiled": missing},
            )
        try:
            done_study = handle_study(cfg, uid, conn)
        except Exception as exc:
            LOGGER.exception(
                "study handling failed; job kept for the next run", extra={"study_uid": uid}
            )
            report.errors.append(f"study {uid}: {exception_message(exc)}")
            continue
        if done_study is not None:
            report.studies.append(done_study)
            check_stable_study(cfg, uid)
        for job in study_jobs.get(uid, []):
            if not finish_job(job):
                report.kept.append(job.name)

    report.seconds = time.perf_counter() - t0
    if report.series or report.studies or report.errors:
        LOGGER.info(
            "run finished",
            extra={
                "series": len(report.series),
                "studies": len(report.studies),
                "waiting": len(report.waiting),
                "kept": len(report.kept),
                "errors": len(report.errors),
                "seconds": round(report.seconds, 3),
            },
        )
    return report
