"""Cancel and retry, for `fiona workflow` and the Workflows page.

A cancel of a queued job ends it at once. A running one is marked ``cancel_requested`` and its
container is killed here and now (the runner, in another process, sees the mark within a
second and ends an exec step too); the runner then records it as cancelled. A retry queues a
failed or cancelled job again: the runner empties its output folder and runs every step anew.
"""

from __future__ import annotations

import logging

from fionagw.config import SiteConfig
from fionagw.workflows.jobs import CANCELLED, FAILED, QUEUED, RUNNING, Job, JobError, now_text
from fionagw.workflows.worker import job_list

LOGGER = logging.getLogger(__name__)


def cancel(cfg: SiteConfig, number: int, user: str = "") -> Job:
    """Cancel job ``number``; JobError when it has already ended."""

    def change(job: Job) -> None:
        if job.status == QUEUED:
            job.status, job.reason, job.finished = (
                CANCELLED,
                f"cancelled by {user or 'a user'}",
                now_text(),
            )
        elif job.status == RUNNING:
            job.cancel_requested = True
        else:
            raise JobError(f"job {number} has already ended ({job.status})")

    job = job_list(cfg).update(number, change)
    if job.status == RUNNING and job.image:
        from fionagw.workflows.runtime import RuntimeMissing, find_runtime

        try:
            find_runtime(cfg.workflows.runtime).kill(job.container_name)
        except RuntimeMissing:
            pass  # no runtime: no container; the runner ends the step
    LOGGER.info("workflow job cancel", extra={"job": number, "user": user, "was": job.status})
    return job


def retry(cfg: SiteConfig, number: int, user: str = "") -> Job:
    """Queue a failed or cancelled job again; JobError otherwise."""

    def change(job: Job) -> None:
        if job.status not in (FAILED, CANCELLED):
            raise JobError(
                f"job {number} is {job.status}: only failed or cancelled jobs are retried"
            )
        job.status, job.cancel_requested, job.reason, job.exit_code = QUEUED, False, "", None
        job.finished = job.started = ""

    job = job_list(cfg).update(number, change)
    LOGGER.info("workflow job retried", extra={"job": number, "user": user})
    return job
