"""Attach: manual upload of a DICOM folder or a ZIP (DICOM, or a NIfTI set) with optional
study name, accession number, age, sex and project; a progress bar (static/attach.js).

DICOM enters the pipeline as a network arrival would (calling AE WEBUPLOAD); the study then
shows on Assign once processSingleFile and detectStudyArrival have seen it. The logic,
including every ZIP safety check, is in ``fionagw.web.upload``.
"""

from __future__ import annotations

import logging
from typing import Any

from app import site_config, tracker, web_config  # type: ignore[import-not-found]
from auth import check_role, current_user, login_required  # type: ignore[import-not-found]
from flask import Blueprint, abort, jsonify, redirect, render_template, request, url_for
from werkzeug.exceptions import RequestEntityTooLarge

from fionagw.web import upload as up

log = logging.getLogger("fionagw.web.attach")
bp = Blueprint("attach", __name__, url_prefix="/attach")
FORM_SLACK = 16 * 1024 * 1024  # multipart overhead on top of the data limit


def _limits() -> up.UploadLimits:
    return up.UploadLimits.from_mb(web_config().max_upload_mb)


@bp.url_value_preprocessor
def _upload_limits(endpoint: str | None, _values: dict[str, Any] | None) -> None:
    """Before any hook reads the form: a folder upload has one part per file."""
    if endpoint == "attach.upload":
        limits = _limits()
        request.max_content_length = limits.max_bytes + FORM_SLACK
        request.max_form_parts = limits.max_entries + 100


def _assign_projects() -> list[str]:
    user = current_user()
    return [
        name
        for name, p in sorted(tracker().projects().items())
        if p.active and user.has_role(name, "assign")
    ]


def _may_view(record: up.UploadRecord) -> bool:
    user = current_user()
    if user.is_admin or record.user == user.name:
        return True
    return bool(record.project) and any(
        user.has_role(record.project, r) for r in ("assign", "review")
    )


def nav_visible(user: Any) -> bool:
    return bool(user.is_admin or any(role == "assign" for _, role in user.roles))


@bp.route("/")
@login_required
def index() -> str:
    uploads = [r for r in up.list_uploads(site_config()) if _may_view(r)]
    return render_template(
        "attach_index.html",
        projects=_assign_projects(),
        uploads=uploads,
        max_mb=web_config().max_upload_mb,
        fields=up.LABELS,
    )


def _fail(message: str, status: int = 400) -> Any:
    if request.headers.get("X-Requested-With") == "XMLHttpRequest":
        return jsonify(ok=False, error=message), status
    return render_template(
        "attach_index.html",
        projects=_assign_projects(),
        error=message,
        uploads=[r for r in up.list_uploads(site_config()) if _may_view(r)],
        max_mb=web_config().max_upload_mb,
        fields=up.LABELS,
        form=request.form,
    ), status


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
        if project not in _assign_projects():
            return _fail(f"Project {project} does not exist or is not active.")
    elif not nav_visible(user):
        abort(403, f"Your account ({user.name}) does not have the assign role on any project.")
    if bool(folder) == bool(archive):
        return _fail("Choose either a folder or a ZIP file to upload (one of the two).")
    cfg = site_config()
    up.remove_stale(cfg)
    upload_id = up.new_upload_id()
    files_dir = cfg.paths.upload_staging_files(upload_id)
    try:
        files_dir.mkdir(parents=True)
        limits = _limits()
        budget = up.Budget(limits)
        if archive is not None:
            if not archive.filename.lower().endswith(".zip"):
                raise up.UploadError(
                    f"{archive.filename}: not a .zip file (upload a ZIP, or "
                    f"choose the folder instead)",
                    "not a ZIP",
                )
            size = archive.stream.seek(0, 2)
            archive.stream.seek(0)
            budget.add_bytes(size, archive.filename)
            up.extract_zip(archive.stream, files_dir, limits)  # from Werkzeug's spooled copy
            source = "zip"
        else:
            for f in folder:
                up.save_file(files_dir, f.filename, f.stream, budget)
            source = "folder"
        record = up.ingest(
            cfg, upload_id, files_dir, dict(form), user=user.name, project=project, source=source
        )
    except up.UploadError as exc:
        # the message may name files after the patient: the log gets the kind of problem only
        log.warning(
            "upload refused", extra={"user": user.name, "upload_id": upload_id, "problem": exc.kind}
        )
        return _fail(str(exc))
    finally:
        up.remove_staging(cfg, upload_id)
    target = url_for("attach.result", upload_id=record.upload_id)
    if request.headers.get("X-Requested-With") == "XMLHttpRequest":
        return jsonify(ok=True, redirect=target)
    return redirect(target, code=303)


@bp.route("/upload/<upload_id>")
@login_required
def result(upload_id: str) -> str:
    try:
        record = up.load_record(site_config(), upload_id)
    except ValueError:
        record = None
    if record is None or not _may_view(record):
        abort(404, "No such upload, or you may not see it.")
    return render_template(
        "attach_result.html",
        record=record,
        fields=up.LABELS,
        skipped=up.skipped_text(record.skipped, 200),
    )
