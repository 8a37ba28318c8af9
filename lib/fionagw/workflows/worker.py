"""runOneJob's pass over the job list: up to ``workflows.max_concurrent`` jobs at once.

FIONA's runOneJob.sh took one job a minute. Ours (under its cron lock, so one runner per
site) keeps ``max_concurrent`` worker threads busy with queued jobs until none is left,
jobs queued meanwhile included, then exits; cron starts it again the next minute. A job
found ``running`` whose runner is gone (killed, machine restarted) is marked failed with that
reason and its container removed: `fiona workflow retry` queues it again.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field

from fionagw.config import SiteConfig
from fionagw.ops import process
from fionagw.tracking.base import Tracker, TrackerError
from fionagw.workflows.jobs import CANCELLED, DONE, FAILED, RUNNING, Job, JobList, now_text
from fionagw.workflows.results import OutputRefused, ResultError, deliver
from fionagw.workflows.runner import JobRunner, job_dir

LOGGER = logging.getLogger(__name__)


@dataclass
class QueueReport:
    done: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    cancelled: list[int] = field(default_factory=list)
    interrupted: list[int] = field(default_factory=list)
    peak_running: int = 0

    def summary(self) -> str:
        if not (self.done or self.failed or self.cancelled or self.interrupted):
            return ""
        parts = [f"{len(self.done)} done", f"{len(self.failed)} failed"]
        if self.cancelled:
            parts.append(f"{len(self.cancelled)} cancelled")
        if self.interrupted:
            parts.append(f"{len(self.interrupted)} found interrupted")
        return f"workflow jobs: {', '.join(parts)} (at most {self.peak_running} at once)"


def job_list(cfg: SiteConfig) -> JobList:
    return JobList(cfg.paths.workflow_jobs)


def _finish(
    jobs: JobList, job: Job, status: str, exit_code: int | None, reason: str, sent: str = ""
) -> None:
    def change(j: Job) -> None:
        j.status, j.exit_code, j.reason, j.finished = status, exit_code, reason, now_text()
        j.sent, j.runner_pid = sent, 0

    jobs.update(job.job_number, change)


def recover_interrupted(cfg: SiteConfig, jobs: JobList, runner: JobRunner) -> list[int]:
    """Jobs marked running by a runner that is gone: failed, container removed."""
    found = []
    for job in jobs.all():
        if job.status == RUNNING and not (job.runner_pid and process.exists(job.runner_pid)):
            found.append(job.job_number)
            _finish(jobs, job, FAILED, None, "interrupted: its runner ended before the job did")
            if job.image:
                try:
                    runner.runtime().remove(job.container_name)
                except Exception:  # noqa: BLE001 - no runtime: no container to remove
                    pass
    return found


def run_job(cfg: SiteConfig, tracker: Tracker, jobs: JobList, runner: JobRunner, job: Job) -> str:
    """Run one claimed job to its end; its final status."""
    from fionagw.arrival.events import record_event

    stream = cfg.workflows.streams.get(job.stream)
    folder = job_dir(cfg, job)
    log_extra = {"job": job.job_number, "stream": job.stream, "project": job.project}
    LOGGER.info("workflow job started", extra=log_extra)
    status, code, reason, sent = FAILED, None, "", ""
    if stream is None:
        reason = f"stream {job.stream!r} is no longer in config.json"
    else:
        outcome = runner.run_steps(job, stream, folder)
        code, reason = outcome.exit_code, outcome.reason
        if outcome.cancelled:
            status = CANCELLED
        elif outcome.ok:
            try:
                sent = deliver(cfg, tracker, job, stream, folder)
                status = DONE
            except OutputRefused as exc:
                reason = f"output refused: {exc}"
            except (ResultError, TrackerError, OSError) as exc:
                reason = f"results not delivered: {exc}"
    _finish(jobs, job, status, code, reason, sent)
    LOGGER.log(
        logging.INFO if status == DONE else logging.WARNING,
        f"workflow job {status}",
        extra={**log_extra, "exit_code": code, "reason": reason, "sent": sent},
    )
    record_event(
        cfg,
        "workflow-finished",
        job=job.job_number,
        stream=job.stream,
        project=job.project,
        study_uid=job.study_uids[0] if job.study_uids else "",
        status=status,
        reason=reason,
    )
    return status


def run_queue(cfg: SiteConfig) -> QueueReport:
    """Run queued jobs, ``max_concurrent`` at a time, until none is queued (each worker
    thread has its own tracker: the local one's SQLite connection is per thread)."""
    from fionagw.tracking.factory import open_tracker

    jobs = job_list(cfg)
    runner = JobRunner(cfg, jobs)
    report = QueueReport(interrupted=recover_interrupted(cfg, jobs, runner))
    lock = threading.Lock()
    running = [0]

    def worker() -> None:
        tracker: Tracker | None = None
        while (job := jobs.claim(os.getpid())) is not None:
            with lock:
                running[0] += 1
                report.peak_running = max(report.peak_running, running[0])
            try:
                tracker = tracker or open_tracker(cfg)
                status = run_job(cfg, tracker, jobs, runner, job)
            except Exception:  # noqa: BLE001 - one job's bug must not stop the others
                LOGGER.exception("workflow job failed unexpectedly", extra={"job": job.job_number})
                _finish(jobs, job, FAILED, None, "unexpected error (see the runOneJob log)")
                status = FAILED
            with lock:
                running[0] -= 1
                {DONE: report.done, CANCELLED: report.cancelled}.get(status, report.failed).append(
                    job.job_number
                )
        if tracker is not None:
            tracker.close()

    threads = [
        threading.Thread(target=worker, name=f"workflow-{i}", daemon=True)
        for i in range(cfg.workflows.max_concurrent)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return report
