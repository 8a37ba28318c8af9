"""Assign's pages: the list (search, pages), a study (series, ClassifyType, the state of each
assignment with a failure's reason and tag paths, the assignment form), the confirmation step,
retry / cancel / reassign of a failed assignment, resend from PACS of a study no longer on the
gateway, and the coupling-list upload."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for

from fionagw.routing.coupling import CouplingListError, RowError
from fionagw.tracking.base import TrackerError
from fionagw.web import assign_actions as actions
from fionagw.web import assign_queries as q
from fionagw.web.id_pattern import example_id, participant_hint

from ...auth.roles import check_role, login_required
from ...auth.session import current_user
from ...core.audit import audited
from ...core.context import signing_key, site_config, tracker

LOGGER = logging.getLogger(__name__)
bp = Blueprint("assign", __name__, url_prefix="/assign", template_folder="templates")


def _int_arg(name: str, default: int) -> int:
    try:
        return int(request.args.get(name, default))
    except ValueError:
        return default


@bp.route("/", methods=["GET", "POST"])
@login_required
def index() -> Any:
    """The list. A search is POSTed and kept in the session: an accession number typed into
    the search box must not end up in a URL (history, proxy and server logs)."""
    if request.method == "POST":
        session["assign_q"] = (
            "" if request.form.get("clear") else request.form.get("q", "").strip()[:200]
        )
        return redirect(url_for("assign.index"), code=303)
    user = current_user()
    query = session.get("assign_q", "")
    page = q.study_list(
        site_config(),
        tracker(),
        signing_key(),
        user,
        query=query,
        number=_int_arg("page", 1),
        per_page=_int_arg("per", q.PER_PAGE),
    )
    return render_template(
        "assign/list.html",
        page=page,
        query=query,
        days=site_config().arrival.incoming_days,
        can_assign=bool(q.assignable_projects(tracker(), user)),
    )


def _study_or_404(key: str) -> q.StudyRow:
    row = q.user_study(site_config(), tracker(), signing_key(), current_user(), key[:64])
    if row is None:
        abort(
            404,
            "No such study on the incoming list (it may have been removed after "
            f"{site_config().arrival.incoming_days} days), or you may not see it.",
        )
    return row


def _choice_from(values: Any) -> q.Choice:
    return q.Choice(
        project=values.get("project", "").strip(),
        participant=values.get("participant", "").strip(),
        new_participant=values.get("new_participant", "").strip()[:64],
        event=values.get("event", "").strip(),
    )


def _render_study(
    row: q.StudyRow,
    choice: q.Choice,
    status: int = 200,
    reassign: q.Choice | None = None,
    reassign_instance: int = 0,
) -> tuple[str, int]:
    form = q.study_form(tracker(), current_user(), row, choice)
    return render_template(
        "assign/study.html",
        study=row,
        reassign=reassign or q.Choice(),
        reassign_instance=reassign_instance,
        choice=form.choice,
        projects=form.projects,
        project=form.project,
        existing=form.existing,
        participant_example=example_id(form.project.participant_id) if form.project else None,
        participant_rule=participant_hint(form.project.participant_id) if form.project else "",
        resendable=actions.resend_possible(site_config(), current_user(), row),
    ), status


@bp.route("/study/<key>")
@login_required
def study(key: str) -> tuple[str, int]:
    row = _study_or_404(key)
    return _render_study(row, q.Choice(project=request.args.get("project", "").strip()))


def _checked() -> q.Choice:
    """The POSTed assignment form, validated against what the user may assign."""
    return q.check_user_choice(tracker(), current_user(), _choice_from(request.form))


@bp.route("/study/<key>/confirm", methods=["POST"])
@login_required
def confirm(key: str) -> tuple[str, int]:
    row = _study_or_404(key)
    choice = _checked()
    if not choice.ok:
        return _render_study(row, choice, 400)
    return render_template("assign/confirm.html", study=row, choice=choice), 200


@bp.route("/study/<key>/assign", methods=["POST"])
@login_required
def create(key: str) -> Any:
    row = _study_or_404(key)
    choice = _checked()
    if not choice.ok:
        return _render_study(row, choice, 400)
    user = check_role(choice.project, "assign")
    transfer = q.assign(site_config(), tracker(), row.study_uid, choice)
    event = f" for event {choice.event}" if choice.event else ""
    if transfer is None:
        flash(
            f"This study was already requested for {choice.project} as {choice.name}{event}; "
            f"nothing new was created.",
            "error",
        )
    else:
        audited(
            "assign",
            row.study_uid,
            "transfer requested",
            study_uid=row.study_uid,
            project=choice.project,
            participant=choice.name,
            event=choice.event,
            instance=transfer.instance,
        )
        LOGGER.info(
            "transfer requested",
            extra={
                "user": user.name,
                "study_uid": row.study_uid,
                "project": choice.project,
                "instance": transfer.instance,
            },
        )
        flash(
            f"Requested: transfer to {choice.project} as {choice.name}{event}. The transfer "
            f"request is written on the next createTransferRequest run.",
            "ok",
        )
    return redirect(url_for("assign.study", key=key))


@bp.route("/study/<key>/transfer/<instance>/<action>", methods=["POST"])
@login_required
def act(key: str, instance: str, action: str) -> Any:
    """Retry, cancel or reassign a failed assignment (a POST with the CSRF token); ``instance``
    is the tracker's repeat instance of the request."""
    row = _study_or_404(key)
    if not instance.isdigit():
        abort(404)
    cfg, user, number = site_config(), current_user(), int(instance)
    try:
        if action == "retry":
            outcome = actions.retry_assignment(cfg, tracker(), user, row, number)
        elif action == "cancel":
            outcome = actions.cancel_assignment(cfg, tracker(), user, row, number)
        elif action == "reassign":
            outcome = actions.reassign_assignment(
                cfg, tracker(), user, row, number, _choice_from(request.form)
            )
        else:
            abort(404)
    except actions.ActionRefused as exc:
        if exc.status != 400:
            abort(exc.status, str(exc))
        flash(str(exc), "error")
        return redirect(url_for("assign.study", key=key), code=303)
    except TrackerError as exc:
        LOGGER.error("assignment action failed", extra={"action": action, "error": str(exc)})
        flash(f"The tracker could not be updated, nothing was changed: {exc}", "error")
        return redirect(url_for("assign.study", key=key), code=303)
    if outcome.choice is not None:  # the new assignment has errors: show them by the form
        return _render_study(row, q.Choice(), 400, outcome.choice, number)
    flash(outcome.message, "ok")
    return redirect(url_for("assign.study", key=key), code=303)


@bp.route("/study/<key>/resend", methods=["POST"])
@login_required
def resend(key: str) -> Any:
    """Resend from PACS: the study was cleared from the gateway (FIONA: "Study has been
    deleted from Fiona. Resend from PACS!"); moveFromScanner retrieves it and sends it again."""
    row = _study_or_404(key)
    try:
        outcome = actions.resend_from_pacs(site_config(), current_user(), row)
    except actions.ActionRefused as exc:
        abort(exc.status, str(exc))
    except OSError as exc:
        LOGGER.error("resend from PACS not queued", extra={"error": exc.strerror or "OSError"})
        flash("The resend could not be queued (the gateway could not write its list).", "error")
        return redirect(url_for("assign.study", key=key), code=303)
    flash(outcome.message, "ok")
    return redirect(url_for("assign.study", key=key), code=303)


@bp.route("/coupling", methods=["GET", "POST"])
@login_required
def coupling() -> tuple[str, int]:
    user = current_user()
    if request.method == "GET":
        return render_template("assign/coupling.html", errors=[], imported=None), 200
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return render_template(
            "assign/coupling.html", errors=[RowError(0, "choose a CSV file")], imported=None
        ), 400
    data = upload.read(q.COUPLING_MAX_BYTES + 1)
    try:
        count = q.import_user_coupling(tracker(), user, data, site_config().paths.temp)
    except CouplingListError as exc:
        LOGGER.warning(
            "coupling list refused", extra={"user": user.name, "bad_lines": len(exc.errors)}
        )
        return render_template(
            "assign/coupling.html", errors=exc.errors, imported=None, filename=upload.filename
        ), 400
    LOGGER.info("coupling list imported", extra={"user": user.name, "entries": count})
    audited("coupling-upload", "coupling-list", "coupling list imported", entries=count)
    return render_template("assign/coupling.html", errors=[], imported=count), 200
