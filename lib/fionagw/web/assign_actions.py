"""What the Assign page does to a failed assignment, without HTTP: retry, cancel, reassign;
and to a study no longer on the gateway: resend from PACS.

Each checks that the user has the assign role on the request's project (a reassignment also on
the new one, through the validation of a first assignment: :func:`assign_queries.check_choice`),
does it with transfers/actions.py and writes one line to the audit log (transfers/audit.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fionagw.config import ConfigError, SiteConfig
from fionagw.tracking.base import Tracker
from fionagw.tracking.records import Transfer
from fionagw.transfers import actions
from fionagw.transfers.audit import audit
from fionagw.web import assign_queries as q


class ActionRefused(Exception):
    """The action is not possible; str() says why, for the user. ``status``: the HTTP status."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Outcome:
    message: str  # what to tell the user
    choice: q.Choice | None = None  # a reassignment form with errors (nothing was done)


def _failed_assignment(row: q.StudyRow, instance: int, user: Any) -> q.Assignment:
    for a in row.assignments:
        if a.instance == instance and a.transfer is not None:
            if not q.may_act_for(user)(a.project):
                raise ActionRefused(
                    f"You ({user.name}) do not have the assign role on project {a.project}.", 403
                )
            if a.state not in ("failed", "retrying"):
                raise ActionRefused(f"This assignment is {a.state}, not failed: nothing to do.")
            return a
    raise ActionRefused("No such assignment of this study.", 404)


def _audit(cfg: SiteConfig, user: Any, action: str, t: Transfer, message: str, **more: Any) -> None:
    audit(
        cfg,
        user.name,
        action,
        message,
        request=actions.request_name(cfg, t),
        study_uid=t.study_instance_uid,
        project=t.transfer_project_name,
        participant=t.transfer_name,
        event=t.transfer_event_name,
        instance=t.instance,
        **more,
    )


def _label(t: Transfer) -> str:
    event = f" ({t.transfer_event_name})" if t.transfer_event_name else ""
    return f"{t.transfer_project_name} {t.transfer_name}{event}"


def retry_assignment(
    cfg: SiteConfig, tracker: Tracker, user: Any, row: q.StudyRow, instance: int
) -> Outcome:
    """Queue the failed request again; the next anonymizeAndSend run tries it."""
    a = _failed_assignment(row, instance, user)
    assert a.transfer is not None
    actions.retry(cfg, tracker, a.transfer)
    _audit(cfg, user, "retry", a.transfer, "failed transfer request queued again")
    return Outcome(f"Queued again: {_label(a.transfer)}. The next anonymizeAndSend run tries it.")


def cancel_assignment(
    cfg: SiteConfig, tracker: Tracker, user: Any, row: q.StudyRow, instance: int
) -> Outcome:
    """Take the failed request out of the queue for good."""
    a = _failed_assignment(row, instance, user)
    assert a.transfer is not None
    actions.cancel(cfg, tracker, a.transfer, user.name)
    _audit(cfg, user, "cancel", a.transfer, "failed transfer request cancelled")
    return Outcome(f"Cancelled: {_label(a.transfer)}. It will not be sent.")


def reassign_assignment(
    cfg: SiteConfig,
    tracker: Tracker,
    user: Any,
    row: q.StudyRow,
    instance: int,
    choice: q.Choice,
) -> Outcome:
    """Cancel the failed request and queue one for ``choice`` (validated as a first
    assignment); a choice with errors comes back in the outcome and nothing is done."""
    a = _failed_assignment(row, instance, user)
    assert a.transfer is not None
    choice = q.check_user_choice(tracker, user, choice)
    if not choice.ok:
        return Outcome("The new assignment has errors; nothing was changed.", choice)
    q.ensure_recorded(cfg, tracker, row.study_uid)
    new = actions.reassign(
        cfg, tracker, a.transfer, choice.project, choice.name, choice.event, user.name
    )
    if new is None:
        raise ActionRefused(
            f"This study is already assigned to {choice.project} as {choice.name}"
            + (f" for event {choice.event}" if choice.event else "")
            + "; nothing was changed."
        )
    _audit(
        cfg,
        user,
        "reassign",
        a.transfer,
        "failed transfer request reassigned",
        to_project=new.transfer_project_name,
        to_participant=new.transfer_name,
        to_event=new.transfer_event_name,
        to_instance=new.instance,
    )
    return Outcome(f"Reassigned: {_label(a.transfer)} cancelled, {_label(new)} queued.")


def resend_possible(cfg: SiteConfig, user: Any, row: q.StudyRow) -> bool:
    """The Resend from PACS button: the study's images are no longer on the gateway (cleared,
    or never filed), a PACS source is configured, and the user may assign for a project of
    one of its assignments."""
    from fionagw.config.pacs import load_pacs

    if cfg.paths.raw_study_dir(row.study_uid).is_dir() or not row.assignments:
        return False
    may_act = q.may_act_for(user)
    if not any(may_act(a.project) for a in row.assignments):
        return False
    try:
        return bool(load_pacs(cfg).sources)
    except ConfigError:
        return False


def resend_from_pacs(cfg: SiteConfig, user: Any, row: q.StudyRow) -> Outcome:
    """List the study for moveFromScanner: it retrieves the study from the PACS, then queues
    its earlier assignments again (same pseudonym and UIDs)."""
    from fionagw.pacs.resend import queue_resend

    if not resend_possible(cfg, user, row):
        raise ActionRefused("This study cannot be resent from the PACS (see the page).", 403)
    if not queue_resend(cfg, row.study_uid, user.name):
        return Outcome("A retrieve of this study from the PACS is already queued.")
    for a in row.assignments:
        if a.transfer is not None:
            _audit(cfg, user, "resend", a.transfer, "resend from PACS queued")
    return Outcome(
        "Resend from PACS queued: the next moveFromScanner run retrieves the study and sends "
        "it again as assigned."
    )
