"""Review's pages: a project's tag inventory (searched, a page of values per tag) and its CSV."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, redirect, render_template, request, session, url_for

from fionagw.transfers import review_inventory as ri

from ...auth.roles import check_role, login_required
from ...auth.session import current_user
from ...core.audit import audited
from ...core.context import site_config, tracker

bp = Blueprint("review", __name__, url_prefix="/review", template_folder="templates")
VALUES_SHOWN = 25  # per tag on the page; the CSV has them all


def _inventory(project: str) -> dict[str, Any]:
    if project not in tracker().projects():
        abort(404, f"No project {project!r}.")
    try:
        return ri.load_inventory(ri.inventory_path(site_config(), project))
    except ri.ReviewInventoryError as exc:
        abort(500, str(exc))


@bp.route("/", methods=["GET", "POST"])
@login_required
def index() -> Any:
    """A search is POSTed and kept in the session: a reviewer checking that a name is gone
    types that name, and it must not end up in a URL."""
    if request.method == "POST":
        session["review_q"] = request.form.get("q", "").strip()[:200]
        project = request.form.get("project", "").strip()
        return redirect(url_for("review.index", project=project or None), code=303)
    user = current_user()
    projects = user.projects_with("review", tracker().projects())
    project = request.args.get("project", "").strip()
    if not project and len(projects) == 1:
        project = projects[0]
    query = session.get("review_q", "")
    inventory, rows = None, []
    if project:
        check_role(project, "review")
        inventory = _inventory(project)
        rows = ri.inventory_rows(inventory, query)
    return render_template(
        "review/index.html",
        projects=projects,
        project=project,
        query=query,
        inventory=inventory,
        rows=rows,
        shown=VALUES_SHOWN,
    )


@bp.route("/csv")
@login_required
def csv() -> Response:
    project = request.args.get("project", "").strip()
    if not project:
        abort(400, "Choose a project first.")
    check_role(project, "review")
    rows = ri.inventory_rows(_inventory(project), session.get("review_q", ""))
    audited("export", project, "review inventory exported (CSV)", project=project)
    return Response(
        ri.rows_csv(rows),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="review-{project}.csv"'},
    )
