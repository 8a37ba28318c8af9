"""Projects' pages: the list with a form per project, a new project, and the ID example."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for

from fionagw.admin import projects as admin_projects
from fionagw.admin.settings import GENERAL
from fionagw.config import ConfigError
from fionagw.config.qc import CHECKS as QC_CHECKS
from fionagw.web.id_pattern import participant_hint

from ...auth.roles import require_role
from ...auth.session import current_user
from ...core.context import site_config, tracker

bp = Blueprint("projects", __name__, url_prefix="/projects", template_folder="templates")


def _page(errors: dict[str, str] | None = None, target: str = "", form: Any = None,
          status: int = 200) -> Any:  # fmt: skip
    cfg = site_config()
    if not admin_projects.editable(cfg):
        return render_template(
            "projects/redcap.html",
            projects=sorted(tracker().projects().values(), key=lambda p: p.name),
            error=(errors or {}).get(GENERAL, ""),
        ), status
    raw = admin_projects.raw_projects(cfg)
    forms = {name: admin_projects.form_of(spec) for name, spec in sorted(raw.items())}
    new_form = admin_projects.form_of({})
    if form is not None:  # show what was typed by its errors
        typed = {k: form.get(k, "") for k in new_form} | {
            "active": form.get("active") == "true",
            "resend_missing": form.get("resend_missing") == "true",
            "deid.options": form.getlist("deid.options"),
            "qc.gates": form.getlist("qc.gates"),
        }
        if target in forms:
            forms[target] = typed
        else:
            new_form = typed
    return render_template(
        "projects/index.html",
        forms=forms,
        new_form=new_form,
        new_name=form.get("name", "") if form is not None and target not in forms else "",
        hints={n: participant_hint(f["participant_id"]) for n, f in forms.items()},
        errors=errors or {},
        target=target,
        general=GENERAL,
        destinations=sorted(cfg.destinations),
        options=admin_projects.OPTIONS,
        date_modes=admin_projects.DATE_MODES,
        deid_modes=admin_projects.DEID_MODES,
        pixel_modes=admin_projects.PIXEL_MODES,
        qc_checks=QC_CHECKS,
        file=cfg.tracker.projects_file,
    ), status


@bp.route("/")
@require_role("admin", None)
def index() -> Any:
    return _page()


@bp.route("/save", methods=["POST"])
@require_role("admin", None)
def save() -> Any:
    new = request.form.get("new") == "1"
    name = request.form.get("name", "").strip()
    try:
        outcome = admin_projects.save_project(
            site_config(), name, request.form, current_user().name, new
        )
    except ConfigError as exc:
        return _page({GENERAL: str(exc)}, name, request.form, 400)
    if not outcome.ok:
        return _page(outcome.errors, name, request.form, 400)
    if outcome.created:
        flash(f"Project {name} created.", "ok")
    elif outcome.changed:
        flash(f"Project {name} saved: {', '.join(outcome.changed)}.", "ok")
    else:
        flash(f"Project {name}: nothing changed.", "ok")
    return redirect(url_for("projects.index") + f"#project-{name}", code=303)


@bp.route("/example")
@require_role("admin", None)
def example() -> Any:
    """The live example of a participant-ID regex (the form's script asks while typing)."""
    import re

    pattern = request.args.get("pattern", "")[:500]
    try:
        re.compile(pattern)
    except re.error as exc:
        return jsonify(ok=False, text=f"not a valid regular expression: {exc}")
    return jsonify(ok=True, text=participant_hint(pattern) if pattern else "")
