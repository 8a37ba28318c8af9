"""Settings' pages: the configuration form (validated like `fiona check-config`, saved with
the previous file kept), the restart of the services a change needs, write-only secrets, the
configuration as loaded, and a destination's test button. The logic is in
``fionagw.admin.settings`` and ``fionagw.web.settings_page``."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from fionagw.admin import settings as admin_settings
from fionagw.admin.destinations import fresh_config
from fionagw.config import ConfigError
from fionagw.web import notify_settings
from fionagw.web.settings_page import check_destination, settings_view

from ...auth.roles import require_role
from ...auth.session import current_user
from ...core.audit import audited
from ...core.context import site_config, tracker

bp = Blueprint("settings", __name__, url_prefix="/settings", template_folder="templates")


def _page(errors: dict[str, str] | None = None, submitted: Any = None, status: int = 200) -> Any:
    cfg = site_config()
    view = settings_view(cfg)
    values = admin_settings.form_values(cfg)
    if submitted is not None:  # show what was typed next to its error, not the file's value
        for key in values:
            if key in submitted:
                values[key]["value"] = submitted.get(key, "")
    return render_template(
        "settings/index.html",
        effective=view.effective,
        raw=view.raw,
        config_file=cfg.config_file,
        secrets_file=cfg.tracker.secrets_file,
        secrets_problem=view.secrets_problem,
        destinations=view.destinations,
        dest_error=view.dest_error,
        channels=notify_settings.channel_rows(cfg),
        sections=admin_settings.SECTIONS,
        values=values,
        errors=errors or {},
        general=admin_settings.GENERAL,
        restart=admin_settings.restart_needed(cfg),
        labels=admin_settings.SERVICE_LABELS,
        restartable=admin_settings.RESTARTABLE,
        supervised=admin_settings.supervised(cfg),
        secret_kinds=admin_settings.SECRET_KINDS,
        secret_names=admin_settings.secret_names(cfg),
    ), status


@bp.route("/")
@require_role("admin", None)
def index() -> Any:
    return _page()


@bp.route("/", methods=["POST"])
@require_role("admin", None)
def save() -> Any:
    try:
        outcome = admin_settings.apply_change(site_config(), request.form, current_user().name)
    except ConfigError as exc:
        return _page({admin_settings.GENERAL: str(exc)}, request.form, 400)
    if not outcome.ok:
        return _page(outcome.errors, request.form, 400)
    if not outcome.changed:
        flash("Nothing changed.", "ok")
    else:
        note = f" (previous version kept as {outcome.backup.name})" if outcome.backup else ""
        flash(f"Saved: {', '.join(outcome.changed)}{note}.", "ok")
    return redirect(url_for("settings.index"), code=303)


@bp.route("/restart", methods=["POST"])
@require_role("admin", None)
def restart() -> Any:
    message = admin_settings.request_restart(
        site_config(), request.form.getlist("service"), current_user().name
    )
    flash(message, "ok" if message.startswith("Restart requested") else "error")
    return redirect(url_for("settings.index"), code=303)


@bp.route("/secret", methods=["POST"])
@require_role("admin", None)
def secret() -> Any:
    try:
        admin_settings.set_secret(
            site_config(),
            request.form.get("kind", ""),
            request.form.get("name", "").strip(),
            request.form.get("value", ""),
            current_user().name,
        )
    except ValueError as exc:
        flash(f"Secret not saved: {exc}", "error")
    else:
        flash(f"Secret {request.form.get('name', '').strip()} saved.", "ok")
    return redirect(url_for("settings.index"), code=303)


@bp.route("/check/<name>", methods=["POST"])
@require_role("admin", None)
def check(name: str) -> Any:
    try:
        # the file as saved (the Destinations page may have changed it since this server started)
        result = check_destination(fresh_config(site_config()), name)
    except ConfigError as exc:
        abort(400, f"The destinations cannot be loaded: {exc}")
    if result is None:
        abort(404, f"No destination named {name!r}.")
    outcome = "OK" if result.ok else "FAILED"
    audited("destination-test", name, f"destination tested: {outcome}", ok=result.ok)
    flash(f"{name}: {outcome}: {result.text}", "ok" if result.ok else "error")
    return redirect(url_for("settings.index"))


@bp.route("/notify-test/<name>", methods=["POST"])
@require_role("admin", None)
def notify_test(name: str) -> Any:
    result = notify_settings.test_channel(site_config(), tracker(), name)
    if result is None:
        abort(404, f"No notification channel named {name!r}.")
    ok, text = result
    audited("notify-test", name, f"notification channel tested: {'OK' if ok else 'FAILED'}", ok=ok)
    flash(f"{name}: {text}", "ok" if ok else "error")
    return redirect(url_for("settings.index"))
