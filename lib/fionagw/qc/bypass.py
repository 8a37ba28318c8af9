"""An audited bypass of failed QC checks: who may, what it records, what it releases.

Only the project's admin (``fiona user grant NAME admin PROJECT``, or the site's admin) may
bypass, and only checks that failed, with a reason. The bypass goes into the study's QC
result (and so into its report) and one line of the audit log (transfers/audit.py); every
request of the study for the project that QC held is queued again (transfers/actions.py),
and the next anonymizeAndSend run sends it. No HTTP here: the web page and ``fiona qc
bypass`` both call :func:`bypass`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from fionagw import notify
from fionagw.config import SiteConfig
from fionagw.qc import events, store
from fionagw.qc.gate import REASON
from fionagw.qc.results import Bypass
from fionagw.qc.run import current
from fionagw.tracking.base import Tracker
from fionagw.transfers import actions
from fionagw.transfers.audit import audit
from fionagw.transfers.failures import read_record

MAX_REASON = 500


class BypassRefused(Exception):
    """Why a bypass is not done (one line for the user); ``status``: the HTTP status."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class BypassOutcome:
    checks: list[str]
    released: list[str]  # request files queued again

    def message(self, project: str) -> str:
        sent = (
            f"; {len(self.released)} held request(s) queued again"
            if self.released
            else "; no request was held"
        )
        return f"Bypassed {', '.join(self.checks)} for {project}{sent}."


def may_bypass(user: Any, project: str) -> bool:
    """The project's admin role (the site's admin has every role)."""
    return bool(user.has_role(project, "admin"))


def bypass(
    cfg: SiteConfig,
    tracker: Tracker,
    user: Any,
    study_uid: str,
    project_name: str,
    reason: str,
    checks: list[str] | None = None,
) -> BypassOutcome:
    """Let ``checks`` (default: every failed one) of ``project_name`` pass for this study."""
    if not may_bypass(user, project_name):
        raise BypassRefused(
            f"You ({user.name}) do not have the admin role on project {project_name}: "
            "only a project admin may bypass a QC check.",
            403,
        )
    reason = " ".join((reason or "").split())
    if not reason:
        raise BypassRefused("Give a reason for the bypass.")
    if len(reason) > MAX_REASON:
        raise BypassRefused(f"The reason is too long: at most {MAX_REASON} characters.")
    project = tracker.projects().get(project_name)
    if project is None:
        raise BypassRefused(f"No project {project_name!r}.", 404)
    result = current(cfg, study_uid, project)
    failed = result.evaluations[project_name].failed()
    chosen = list(dict.fromkeys(checks or failed))
    not_failed = [c for c in chosen if c not in failed]
    if not chosen:
        raise BypassRefused(f"No QC check failed for {project_name}: nothing to bypass.")
    if not_failed:
        raise BypassRefused(
            f"Not failed for {project_name}, so not bypassed: {', '.join(not_failed)} "
            f"(failed: {', '.join(failed) or 'none'})."
        )
    entry = Bypass(project_name, chosen, user.name, time.time(), reason)
    result.bypasses.append(entry)
    store.save(cfg.paths, result)  # first: the request queued below must find it
    released = []
    for t in tracker.transfers(study_uid=study_uid, project=project_name):
        name = actions.request_name(cfg, t)
        record = read_record(cfg.paths, name)
        if record is not None and record.reason == REASON and not record.cancelled:
            if not result.held_by(project_name):
                actions.retry(cfg, tracker, t)
                released.append(name)
    audit(
        cfg,
        user.name,
        "qc-bypass",
        "failed QC checks bypassed",
        study_uid=study_uid,
        project=project_name,
        checks=chosen,
        reason=reason,
        released=released,
    )
    events.emit(
        "qc-bypassed", study_uid=study_uid, project=project_name, checks=chosen, user=user.name
    )
    notify.emit(cfg, "qc-bypassed", ref=study_uid, project=project_name, checks=chosen)
    return BypassOutcome(chosen, released)
