"""Attach's pages: the upload form with the list of uploads, the upload itself (a progress bar
in static/attach.js; JSON answers for it), and one upload's result."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, jsonify, redirect, render_template, request, url_for
from werkzeug.exceptions import RequestEntityTooLarge

from fionagw.upload.accept import accept_upload
from fionagw.upload.errors import UploadError
from fionagw.upload.limits import UploadLimits
from fionagw.upload.metadata import LABELS
from fionagw.upload.records import skipped_text
from fionagw.web.assign_queries import assignable_projects
from fionagw.web.attach_queries import user_upload, visible_uploads

from ...auth.roles import check_role, has_role_anywhere, login_required
from ...auth.session import current_user
from ...core.audit import audited
from ...core.context import site_config, tracker, web_config

bp = Blueprint("attach", __name__, url_prefix="/attach", template_folder="templates")
FORM_SLACK = 16 * 1024 * 1024  # multipart overhead on top of the data limit


def _limits() -> UploadLimits:
    return UploadLimits.from_mb(web_config().max_upload_mb)


@bp.url_value_preprocessor
def _upload_limits(endpoint: str | None, _values: dict[str, Any] | None) -> None:
    """Before any hook reads the form: a folder upload has one part per file."""
    if endpoint == "attach.upload":
        limits = _limits()
        request.max_content_length = limits.max_bytes + FORM_SLACK
        request.max_form_parts = limits.max_entries + 100


def _index_page(status: int = 200, **extra: Any) -> tuple[str, int]:
    user = current_user()
    return render_template(
        "attach/index.html",
        projects=list(assignable_projects(tracker(), user)),
        uploads=visible_uploads(site_config(), user),
        max_mb=web_config().max_upload_mb,
        fields=LABELS,
        **extra,
    ), status


@bp.route("/")
@login_required
def index() -> tuple[str, int]:
    return _index_page()


def _fail(message: str, status: int = 400) -> Any:
    if request.headers.get("X-Requested-With") == "XMLHttpRequest":
        return jsonify(ok=False, error=message), status
    return _index_page(status, error=message, form=request.form)


@bp.route("/upload", methods=["POST"])
@login_required
def upload() -> Any:
    user = current_user()
    try:
        form = request.form
        folder = [f for f in request.files.getlist("files") if f and f.filename]
        archive = request.files.get("zipfile")
    except RequestEntityTooLarge:
        return _fail(
            f"The upload is larger than the limit of {web_config().max_upload_mb} MB "
            f"(or has more than {_limits().max_entries} files): split it.",
            413,
        )
    if archive is not None and not archive.filename:
        archive = None
    project = form.get("project", "").strip()
    if project:
        check_role(project, "assign")
        if project not in assignable_projects(tracker(), user):
            return _fail(f"Project {project} does not exist or is not active.")
    elif not has_role_anywhere(user, "assign"):
        abort(403, f"Your account ({user.name}) does not have the assign role on any project.")
    try:
        record = accept_upload(
            site_config(),
            _limits(),
            archive=archive,
            folder=folder,
            form=form,
            user=user.name,
            project=project,
        )
    except UploadError as exc:
        return _fail(str(exc))
    audited("upload", record.upload_id, "files attached", project=project)
    target = url_for("attach.result", upload_id=record.upload_id)
    if request.headers.get("X-Requested-With") == "XMLHttpRequest":
        return jsonify(ok=True, redirect=target)
    return redirect(target, code=303)


@bp.route("/upload/<upload_id>")
@login_required
def result(upload_id: str) -> str:
    record = user_upload(site_config(), current_user(), upload_id)
    if record is None:
        abort(404, "No such upload, or you may not see it.")
    return render_template(
        "attach/result.html",
        record=record,
        fields=LABELS,
        skipped=skipped_text(record.skipped, 200),
    )
