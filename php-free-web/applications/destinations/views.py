"""Destinations' pages: one form per destination (its type's keys), a new one, the test."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from fionagw.admin import destinations as admin_dest
from fionagw.admin.settings import GENERAL
from fionagw.config import ConfigError
from fionagw.web.settings_page import check_destination

from ...auth.roles import require_role
from ...auth.session import current_user
from ...core.audit import audited
from ...core.context import site_config

bp = Blueprint("destinations", __name__, url_prefix="/destinations", template_folder="templates")


def _page(errors: dict[str, str] | None = None, target: str = "", form: Any = None,
          status: int = 200) -> Any:  # fmt: skip
    cfg = site_config()
    configured = admin_dest.configured(cfg)
    values = {
        name: {k: admin_dest.as_text(v) for k, v in spec.items()}
        for name, spec in configured.items()
    }
    if form is not None and target in values:
        values[target] |= {k: form.get(k, "") for k in form if k not in ("csrf_token", "name")}
    return render_template(
        "destinations/index.html",
        configured=configured,
        values=values,
        types=admin_dest.types(),
        forms={t: admin_dest.form_fields(t) for t in admin_dest.types()},
        errors=errors or {},
        target=target,
        general=GENERAL,
        new_type=(form.get("type", "") if form is not None and target not in values else ""),
        new_name=(form.get("name", "") if form is not None and target not in values else ""),
    ), status


@bp.route("/")
@require_role("admin", None)
def index() -> Any:
    return _page()


@bp.route("/save", methods=["POST"])
@require_role("admin", None)
def save() -> Any:
    form = request.form
    new = form.get("new") == "1"
    name = form.get("name", "").strip()
    try:
        outcome = admin_dest.save_destination(
            site_config(), name, form.get("type", ""), form, current_user().name, new
        )
    except ConfigError as exc:
        return _page({GENERAL: str(exc)}, name, form, 400)
    if not outcome.ok:
        return _page(outcome.errors, name, form, 400)
    if outcome.created:
        flash(f"Destination {name} added.", "ok")
    elif outcome.changed:
        flash(f"Destination {name} saved: {', '.join(outcome.changed)}.", "ok")
    else:
        flash(f"Destination {name}: nothing changed.", "ok")
    return redirect(url_for("destinations.index") + f"#destination-{name}", code=303)


@bp.route("/test/<name>", methods=["POST"])
@require_role("admin", None)
def test(name: str) -> Any:
    try:
        result = check_destination(admin_dest.fresh_config(site_config()), name)
    except ConfigError as exc:
        abort(400, f"The destinations cannot be loaded: {exc}")
    if result is None:
        abort(404, f"No destination named {name!r}.")
    outcome = "OK" if result.ok else "FAILED"
    audited("destination-test", name, f"destination tested: {outcome}", ok=result.ok)
    flash(f"{name}: {outcome}: {result.text}", "ok" if result.ok else "error")
    return redirect(url_for("destinations.index") + f"#destination-{name}", code=303)
