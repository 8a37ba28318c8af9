"""Workflows' pages: the project's streams, studies and jobs; launch, log, output, cancel, retry."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for

from fionagw.web import workflows_page as page
from fionagw.workflows.jobs import Job, JobError

from ...auth.roles import allowed_projects, check_role, require_role
from ...auth.session import current_user
from ...core.audit import audited
from ...core.context import signing_key, site_config

bp = Blueprint("workflows", __name__, url_prefix="/workflows", template_folder="templates")


def _job(number: str) -> Job:
    """The job, if the user has the role on its project (a job of no project: admins)."""
    if not number.isdigit():
        abort(404, f"No workflow job {number!r}.")
    job = page.project_job(site_config(), int(number), lambda _p: True)
    if job is None:
        abort(404, f"No workflow job {number}.")
    check_role(job.project or None, page.ROLE)
    return job


@bp.route("/")
def index() -> Any:
    user = current_user()
    assert user is not None  # the app's login check runs first
    projects = allowed_projects(page.ROLE)
    project = request.args.get("project") or (projects[0] if projects else "")
    if project:
        check_role(project, page.ROLE)
    elif not user.is_admin:
        abort(403, f"Your account ({user.name}) has the {page.ROLE} role on no project.")
    view = page.workflows_view(site_config(), signing_key(), project, user.is_admin)
    return render_template("workflows/index.html", view=view, projects=projects)


@bp.route("/launch", methods=["POST"])
@require_role(page.ROLE)
def launch() -> Any:
    project = request.form["project"]
    user = current_user()
    try:
        jobs = page.launch(
            site_config(),
            signing_key(),
            project,
            request.form.get("stream", ""),
            request.form.getlist("study"),
            user.name if user else "",
        )
        numbers = [j.job_number for j in jobs]
        audited("workflow-launch", project, "workflow jobs queued", project=project, jobs=numbers)
        flash(f"Queued job(s) {', '.join(str(j.job_number) for j in jobs)}.", "ok")
    except JobError as exc:
        flash(str(exc), "error")
    return redirect(url_for("workflows.index", project=project))


@bp.route("/job/<number>/log")
def log(number: str) -> Any:
    job = _job(number)
    return render_template("workflows/log.html", job=job, log=page.job_log(site_config(), job))


@bp.route("/job/<number>/output.zip")
def output(number: str) -> Any:
    job = _job(number)
    data = page.output_zip(site_config(), job)
    if data is None:
        abort(404, f"Job {number} has no output.")
    audited("export", f"job{number}", "workflow output downloaded", project=job.project)
    return Response(
        data,
        mimetype="application/zip",
        headers={"Content-Disposition": f'attachment; filename="workflow_job{number}.zip"'},
    )


@bp.route("/job/<number>/<action>", methods=["POST"])
def act(number: str, action: str) -> Any:
    job = _job(number)
    user = current_user()
    do = {"cancel": page.cancel, "retry": page.retry}.get(action)
    if do is None:
        abort(404)
    try:
        done = do(site_config(), job, user.name if user else "")
        audited(f"workflow-{action}", f"job{number}", f"workflow job {action}", project=job.project)
        flash(
            f"Job {number}: {'queued again' if action == 'retry' else 'cancel: ' + done.status}.",
            "ok",
        )
    except JobError as exc:
        flash(str(exc), "error")
    return redirect(url_for("workflows.index", project=job.project or None))
