"""Groups' pages: list, details, send report, download report, add a study."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, send_file, url_for

from fionagw.notify.groups import GroupError
from fionagw.web import groups_page as page

from ...auth.roles import check_role
from ...auth.session import current_user
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
    return render_template("groups/index.html", groups=groups)


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
    except GroupError as exc:
        flash(str(exc), "error")
    return redirect(url_for("groups.detail", name=name))


@bp.route("/<name>/add", methods=["POST"])
def add(name: str) -> Any:
    _project(name)
    try:
        flash(page.add_study(site_config(), name, request.form.get("study", "")), "ok")
    except GroupError as exc:
        flash(str(exc), "error")
    return redirect(url_for("groups.detail", name=name))


@bp.route("/<name>/reports/<file>")
def download(name: str, file: str) -> Any:
    _project(name)
    path = page.report_file(site_config(), name, file)
    if path is None:
        abort(404, "No such report.")
    return send_file(path, mimetype="text/csv", as_attachment=True, download_name=path.name)
