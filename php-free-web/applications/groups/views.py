"""Groups' pages: list, create, details, send report, download report, add a study, bulk
upload from the drop folder (each act audited)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, send_file, url_for

from fionagw.notify.groups import GroupError
from fionagw.web import groups_page as page

from ...auth.roles import allowed_projects, check_role
from ...auth.session import current_user
from ...core.audit import audited
from ...core.context import site_config, tracker

bp = Blueprint("groups", __name__, url_prefix="/groups", template_folder="templates")


def _project(name: str) -> str:
    """The group's project, if the user has the role on it."""
    project = page.project_of(site_config(), name)
    if project is None:
        abort(404, f"No group {name!r}.")
    check_role(project, page.ROLE)
    return project


@bp.route("/")
def index() -> Any:
    user = current_user()
    assert user is not None  # the app's login check runs first
    groups = page.groups_list(site_config(), lambda p: user.has_role(p, page.ROLE))
    return render_template(
        "groups/index.html", groups=groups, projects=allowed_projects(page.ROLE), errors={}, form={}
    )


@bp.route("/create", methods=["POST"])
def create() -> Any:
    user = current_user()
    assert user is not None
    projects = allowed_projects(page.ROLE)
    if not projects:
        abort(403, f"You have the {page.ROLE} role on no project.")
    try:
        message = page.create_group(site_config(), request.form, projects)
    except page.FormErrors as exc:
        groups = page.groups_list(site_config(), lambda p: user.has_role(p, page.ROLE))
        html = render_template(
            "groups/index.html",
            groups=groups,
            projects=projects,
            errors=exc.errors,
            form=request.form,
        )
        return html, 400
    name = request.form.get("name", "").strip()
    audited("group-create", name, "group created", project=request.form.get("project", ""))
    flash(message, "ok")
    return redirect(url_for("groups.detail", name=name))


@bp.route("/<name>")
def detail(name: str) -> Any:
    _project(name)
    view = page.group_view(site_config(), tracker(), name)
    return render_template("groups/detail.html", view=view)


@bp.route("/<name>/report", methods=["POST"])
def send_report(name: str) -> Any:
    _project(name)
    try:
        flash(page.send_report(site_config(), tracker(), name), "ok")
        audited("group-report", name, "group report made")
    except GroupError as exc:
        flash(str(exc), "error")
    return redirect(url_for("groups.detail", name=name))


@bp.route("/<name>/add", methods=["POST"])
def add(name: str) -> Any:
    _project(name)
    try:
        flash(page.add_study(site_config(), name, request.form.get("study", "")), "ok")
        audited("group-add", name, "study added to the group")
    except GroupError as exc:
        flash(str(exc), "error")
    return redirect(url_for("groups.detail", name=name))


@bp.route("/<name>/upload", methods=["POST"])
def upload(name: str) -> Any:
    _project(name)
    user = current_user()
    try:
        outcomes = page.bulk_upload(
            site_config(), name, request.form.get("folder", ""), user.name if user else ""
        )
    except GroupError as exc:
        flash(str(exc), "error")
        return redirect(url_for("groups.detail", name=name))
    audited(
        "group-upload",
        name,
        "folder of ZIPs uploaded into the group",
        zips=len(outcomes),
        refused=sum(1 for _, o in outcomes if o.startswith("refused")),
    )
    for zip_name, outcome in outcomes:
        flash(f"{zip_name}: {outcome}", "error" if outcome.startswith("refused") else "ok")
    if not outcomes:
        flash("No ZIP files in that folder.", "error")
    return redirect(url_for("groups.detail", name=name))


@bp.route("/<name>/reports/<file>")
def download(name: str, file: str) -> Any:
    _project(name)
    path = page.report_file(site_config(), name, file)
    if path is None:
        abort(404, "No such report.")
    return send_file(path, mimetype="text/csv", as_attachment=True, download_name=path.name)
