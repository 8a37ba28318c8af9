"""Exports' pages: the project's form and queue, the queue as JSON (progress), a download."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)

from fionagw.export.jobs import ExportError
from fionagw.web import exports_page as page

from ...auth.roles import allowed_projects, check_role, require_role
from ...auth.session import current_user
from ...core.audit import audited
from ...core.context import site_config, tracker

bp = Blueprint("exports", __name__, url_prefix="/exports", template_folder="templates")


@bp.route("/")
def index() -> Any:
    user = current_user()
    assert user is not None  # the app's login check runs first
    projects = allowed_projects(page.ROLE)
    project = request.args.get("project") or (projects[0] if projects else "")
    if not project:
        abort(403, f"Your account ({user.name}) has the {page.ROLE} role on no project.")
    check_role(project, page.ROLE)
    cfg = site_config()
    return render_template(
        "exports/index.html",
        project=project,
        projects=projects,
        jobs=page.project_jobs(cfg, project),
        types=page.TYPES,
        destinations=page.folder_destinations(cfg),
    )


@bp.route("/jobs.json")
@require_role(page.ROLE)
def jobs() -> Any:
    project = request.args["project"]
    return jsonify([row.__dict__ for row in page.project_jobs(site_config(), project)])


@bp.route("/request", methods=["POST"])
@require_role(page.ROLE)
def request_export() -> Any:
    project = request.form["project"]
    user = current_user()
    try:
        job = page.request_export(
            site_config(),
            tracker().projects()[project],
            user.name if user else "",
            request.form.get("participant", ""),
            request.form.get("study", ""),
            request.form.get("event", ""),
            request.form.get("type", "PURE"),
            request.form.get("destination", "download"),
            request.form.get("password", ""),
        )
        audited(
            "export-request",
            job.id,
            "export queued",
            project=project,
            type=job.exportType,
            encrypted=job.encrypted,
        )
        flash(f"Export {job.id} queued.", "ok")
    except ExportError as exc:
        flash(str(exc), "error")
    return redirect(url_for("exports.index", project=project))


@bp.route("/job/<job_id>/download")
def download(job_id: str) -> Any:
    cfg = site_config()
    project = page.job_project(cfg, job_id)
    if not project:
        abort(404, f"No export {job_id!r}.")
    check_role(project, page.ROLE)
    path = page.job_file(cfg, job_id)
    if path is None:
        abort(404, f"Export {job_id} has no file (not finished, or removed by clearExports).")
    audited("export", job_id, "export downloaded", project=project)
    return send_file(path, mimetype="application/zip", as_attachment=True, download_name=path.name)
