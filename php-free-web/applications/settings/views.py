"""Settings' pages: the configuration (read-only) and a destination's test button."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, url_for

from fionagw.config import ConfigError
from fionagw.web import notify_settings
from fionagw.web.settings_page import check_destination, settings_view

from ...auth.roles import require_role
from ...core.context import site_config, tracker

bp = Blueprint("settings", __name__, url_prefix="/settings", template_folder="templates")


@bp.route("/")
@require_role("admin", None)
def index() -> Any:
    cfg = site_config()
    view = settings_view(cfg)
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
    )


@bp.route("/check/<name>", methods=["POST"])
@require_role("admin", None)
def check(name: str) -> Any:
    try:
        result = check_destination(site_config(), name)
    except ConfigError as exc:
        abort(400, f"The destinations cannot be loaded: {exc}")
    if result is None:
        abort(404, f"No destination named {name!r}.")
    outcome = "OK" if result.ok else "FAILED"
    flash(f"{name}: {outcome}: {result.text}", "ok" if result.ok else "error")
    return redirect(url_for("settings.index"))


@bp.route("/notify-test/<name>", methods=["POST"])
@require_role("admin", None)
def notify_test(name: str) -> Any:
    result = notify_settings.test_channel(site_config(), tracker(), name)
    if result is None:
        abort(404, f"No notification channel named {name!r}.")
    ok, text = result
    flash(f"{name}: {text}", "ok" if ok else "error")
    return redirect(url_for("settings.index"))
