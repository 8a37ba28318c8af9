"""What the Studies page shows and does, without HTTP: every study of the incoming list with
whether it is stable, its QC state, its assignments, their transfer state and verification;
a study's QC result and series information; cancel a pending transfer, retry a failed one,
bypass failed QC checks (the project's admin), the study's report.

Built on the Assign page's queries (assign_queries.py: the same list, visibility, opaque keys
and failure details) and the QC package. No patient name or ID is shown.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from fionagw.config import SiteConfig
from fionagw.paths import parse_job_name
from fionagw.qc import report as qc_report
from fionagw.qc import store
from fionagw.qc.bypass import BypassOutcome, bypass, may_bypass
from fionagw.qc.results import StudyQc
from fionagw.qc.run import current
from fionagw.tracking.base import Tracker
from fionagw.transfers import actions
from fionagw.transfers.audit import audit
from fionagw.transfers.failures import read_record
from fionagw.web import assign_queries as q
from fionagw.web.assign_actions import ActionRefused

HELD = "held by QC"


@dataclass
class StudyView:
    row: q.StudyRow
    stable: bool
    qc_state: str  # passed, failed, bypassed, not checked

    @property
    def transfer_state(self) -> str:
        states = [a.state for a in self.row.assignments]
        for s in (HELD, "failed", "retrying", "requested", "sent", "cancelled"):
            if s in states:
                return s
        return "–"

    @property
    def verified(self) -> str:
        return "; ".join(a.verified for a in self.row.assignments if a.verified) or "–"


@dataclass
class QcProject:
    """One evaluation of the study's QC, ready to show."""

    project: str  # "" for the site's defaults
    state: str
    checks: list[Any]
    gates: list[str]
    failed: list[str]
    can_bypass: bool = False


@dataclass
class StudyDetail:
    view: StudyView
    qc: StudyQc
    evaluations: list[QcProject] = field(default_factory=list)


def _receiving(cfg: SiteConfig) -> set[str]:
    """Studies with a job in ``.arrived``: images came within the quiet period (not stable)."""
    found = set()
    try:
        names = os.listdir(cfg.paths.arrived)
    except FileNotFoundError:
        return found
    for name in names:
        parsed = parse_job_name(name)
        if parsed is not None:
            found.add(parsed[3])
    return found


def _mark_held(cfg: SiteConfig, rows: list[q.StudyRow]) -> None:
    for row in rows:
        for a in row.assignments:
            if a.transfer is not None and a.state == "failed":
                record = read_record(cfg.paths, actions.request_name(cfg, a.transfer))
                if record is not None and record.reason == "qc" and not record.cancelled:
                    a.state = HELD


def _view(cfg: SiteConfig, row: q.StudyRow, receiving: set[str]) -> StudyView:
    result = store.load(cfg.paths, row.study_uid)
    return StudyView(
        row, row.study_uid not in receiving, result.state() if result else "not checked"
    )


def study_list(cfg: SiteConfig, tracker: Tracker, secret: bytes, user: Any) -> list[StudyView]:
    """The studies of the incoming list the user may see, newest first."""
    rows = q.incoming_studies(
        cfg, tracker, secret, q.may_see_for(user), uploads=q.attach_uploads(cfg)
    )
    q.add_failure_details(cfg, rows, q.may_act_for(user))
    q.add_verifications(tracker, rows)
    _mark_held(cfg, rows)
    receiving = _receiving(cfg)
    return [_view(cfg, r, receiving) for r in rows]


def study_detail(
    cfg: SiteConfig, tracker: Tracker, secret: bytes, user: Any, key: str
) -> StudyDetail | None:
    """The study behind ``key`` with its QC made current for each project it is assigned to."""
    row = q.user_study(cfg, tracker, secret, user, key)
    if row is None:
        return None
    _mark_held(cfg, [row])
    projects = tracker.projects()
    result = current(cfg, row.study_uid)
    for name in sorted({a.project for a in row.assignments if a.project in projects}):
        result = current(cfg, row.study_uid, projects[name])
    detail = StudyDetail(_view(cfg, row, _receiving(cfg)), result)
    for name, e in result.evaluations.items():
        failed = [c for c in e.failed() if c not in result.bypassed(name)]
        detail.evaluations.append(
            QcProject(
                name,
                result.state(name),
                e.checks,
                e.gates,
                failed,
                bool(name) and bool(failed) and may_bypass(user, name),
            )
        )
    return detail


def bypass_checks(
    cfg: SiteConfig,
    tracker: Tracker,
    user: Any,
    detail: StudyDetail,
    project: str,
    reason: str,
    checks: list[str],
) -> BypassOutcome:
    """The web form's bypass (qc/bypass.py checks the role and records it)."""
    if project not in {e.project for e in detail.evaluations if e.project}:
        raise ActionRefused(f"This study has no QC result for project {project!r}.", 404)
    return bypass(cfg, tracker, user, detail.view.row.study_uid, project, reason, checks or None)


def _assignment(detail: StudyDetail, instance: int, user: Any) -> q.Assignment:
    for a in detail.view.row.assignments:
        if a.instance == instance and a.transfer is not None:
            if not q.may_act_for(user)(a.project):
                raise ActionRefused(
                    f"You ({user.name}) do not have the assign role on project {a.project}.", 403
                )
            return a
    raise ActionRefused("No such transfer of this study.", 404)


def cancel_transfer(
    cfg: SiteConfig, tracker: Tracker, user: Any, detail: StudyDetail, instance: int
) -> str:
    """Cancel a transfer that has not been sent (requested, retrying, failed or held)."""
    a = _assignment(detail, instance, user)
    if a.state in ("sent", "cancelled"):
        raise ActionRefused(f"This transfer is {a.state}: nothing to cancel.")
    assert a.transfer is not None
    actions.cancel(cfg, tracker, a.transfer, user.name, "on the Studies page")
    _audit(cfg, user, "cancel", a, "transfer request cancelled")
    return f"Cancelled the transfer to {a.project} {a.participant}."


def retry_transfer(
    cfg: SiteConfig, tracker: Tracker, user: Any, detail: StudyDetail, instance: int
) -> str:
    """Queue a failed transfer again (a held one goes through its QC gate again)."""
    a = _assignment(detail, instance, user)
    if a.state not in ("failed", "retrying", HELD):
        raise ActionRefused(f"This transfer is {a.state}, not failed: nothing to retry.")
    assert a.transfer is not None
    actions.retry(cfg, tracker, a.transfer)
    _audit(cfg, user, "retry", a, "failed transfer request queued again")
    return f"Queued again: {a.project} {a.participant}. The next anonymizeAndSend run tries it."


def _audit(cfg: SiteConfig, user: Any, action: str, a: q.Assignment, message: str) -> None:
    assert a.transfer is not None
    audit(
        cfg,
        user.name,
        action,
        message,
        request=actions.request_name(cfg, a.transfer),
        study_uid=a.transfer.study_instance_uid,
        project=a.project,
        participant=a.participant,
        instance=a.instance,
    )


def report_bytes(cfg: SiteConfig, tracker: Tracker, detail: StudyDetail, fmt: str) -> bytes:
    """The study's report in ``fmt`` (qc/report.py FORMATS)."""
    if fmt not in qc_report.FORMATS:
        raise ActionRefused(f"No report format {fmt!r}.", 404)
    from fionagw.notify.events import emit_report

    data = qc_report.render(qc_report.build_report(cfg, tracker, detail.view.row.study_uid), fmt)
    emit_report(cfg, "study", ref=detail.view.row.study_uid, format=fmt)
    return data
