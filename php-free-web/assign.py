"""Assign: the incoming studies of the last days; assign one to project + participant + event.

Pages: the list (search, pages), a study (series, ClassifyType, the state of each assignment,
the assignment form), the confirmation step, and the coupling-list upload. The logic is in
``fionagw.web.assign_queries``; studies are addressed by an opaque key, never by UID.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from typing import Any

from app import site_config, tracker  # type: ignore[import-not-found]
from auth import check_role, current_user, login_required  # type: ignore[import-not-found]
from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from fionagw.routing.coupling import CouplingListError, RowError
from fionagw.web import assign_queries as q
from fionagw.web.upload import upload_projects

log = logging.getLogger("fionagw.web.assign")
bp = Blueprint("assign", __name__, url_prefix="/assign")


def _secret() -> bytes:
    key = current_app.secret_key
    return key if isinstance(key, bytes) else str(key).encode()


def _uploads() -> dict[str, str]:
    cfg = site_config()
    return upload_projects(cfg, time.time() - cfg.arrival.incoming_days * 86400)


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
    rows = q.incoming_studies(
        site_config(), tracker(), _secret(), q.may_see_for(user), query=query, uploads=_uploads()
    )
    page = q.paginate(rows, _int_arg("page", 1), _int_arg("per", q.PER_PAGE))
    return render_template(
        "assign_list.html",
        page=page,
        query=query,
        days=site_config().arrival.incoming_days,
        can_assign=bool(q.assignable_projects(tracker(), user)),
    )


def _study_or_404(key: str) -> q.StudyRow:
    row = q.find_study(
        site_config(),
        tracker(),
        _secret(),
        key[:64],
        q.may_see_for(current_user()),
        uploads=_uploads(),
    )
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


def _render_study(row: q.StudyRow, choice: q.Choice, status: int = 200) -> tuple[str, int]:
    projects = q.assignable_projects(tracker(), current_user())
    if not choice.project and row.uploaded_for in projects:
        choice.project = row.uploaded_for
    project = projects.get(choice.project)
    existing = q.participants(tracker(), project.name) if project else []
    return render_template(
        "assign_study.html",
        study=row,
        choice=choice,
        projects=projects,
        project=project,
        existing=existing,
    ), status


@bp.route("/study/<key>")
@login_required
def study(key: str) -> tuple[str, int]:
    row = _study_or_404(key)
    return _render_study(row, q.Choice(project=request.args.get("project", "").strip()))


def _checked() -> tuple[q.Choice, bool]:
    """The POSTed assignment form, validated against what the user may assign."""
    choice = _choice_from(request.form)
    projects = q.assignable_projects(tracker(), current_user())
    existing = q.participants(tracker(), choice.project) if choice.project in projects else []
    q.check_choice(choice, projects, existing)
    return choice, choice.ok


@bp.route("/study/<key>/confirm", methods=["POST"])
@login_required
def confirm(key: str) -> tuple[str, int]:
    row = _study_or_404(key)
    choice, ok = _checked()
    if not ok:
        return _render_study(row, choice, 400)
    return render_template("assign_confirm.html", study=row, choice=choice), 200


@bp.route("/study/<key>/assign", methods=["POST"])
@login_required
def create(key: str) -> Any:
    row = _study_or_404(key)
    choice, ok = _checked()
    if not ok:
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
        log.info(
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


# --- coupling lists ---------------------------------------------------------------------------


def _role_errors(text: str, user: Any, projects: set[str]) -> list[RowError]:
    """Rows naming an existing project on which the user lacks the assign role."""
    errors = []
    for lineno, row in enumerate(csv.reader(io.StringIO(text.lstrip("\ufeff"))), start=1):
        if (
            len(row) == 4
            and row[1].strip() in projects
            and not user.has_role(row[1].strip(), "assign")
        ):
            errors.append(
                RowError(
                    lineno,
                    f"you ({user.name}) do not have the assign role on project {row[1].strip()}",
                )
            )
    return errors


@bp.route("/coupling", methods=["GET", "POST"])
@login_required
def coupling() -> tuple[str, int]:
    user = current_user()
    if request.method == "GET":
        return render_template("assign_coupling.html", errors=[], imported=None), 200
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return render_template(
            "assign_coupling.html", errors=[RowError(0, "choose a CSV file")], imported=None
        ), 400
    data = upload.read(q.COUPLING_MAX_BYTES + 1)
    text = data.decode("utf-8", errors="replace")
    errors = _role_errors(text, user, set(tracker().projects()))
    if not errors:
        try:
            count = q.import_coupling_upload(tracker(), data, site_config().paths.temp)
        except CouplingListError as exc:
            errors = exc.errors
        else:
            log.info("coupling list imported", extra={"user": user.name, "entries": count})
            return render_template("assign_coupling.html", errors=[], imported=count), 200
    log.warning("coupling list refused", extra={"user": user.name, "bad_lines": len(errors)})
    return render_template(
        "assign_coupling.html", errors=errors, imported=None, filename=upload.filename
    ), 400
