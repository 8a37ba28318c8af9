"""Settings: the effective configuration with secrets masked, and a test button per destination
(runs its check(): C-ECHO, folder write, SFTP login, HTTPS reachability). Admins only."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from app import site_config  # type: ignore[import-not-found]
from auth import require_role  # type: ignore[import-not-found]
from flask import Blueprint, abort, flash, redirect, render_template, url_for

from fionagw.config import ConfigError
from fionagw.web.masking import effective_settings, masked, secret_values
from fionagw.web.users import User

log = logging.getLogger("fionagw.web.settings")
bp = Blueprint("settings", __name__, url_prefix="/settings")


def nav_visible(user: User) -> bool:
    return user.is_admin


def _destinations() -> tuple[dict[str, Any], str]:
    from fionagw.send import load_destinations

    try:
        return load_destinations(site_config()), ""
    except ConfigError as exc:
        return {}, str(exc)


def _describe(dest: Any) -> str:
    try:
        return dest.describe()
    except Exception as exc:  # noqa: BLE001 - a broken destination must not break the page
        return f"(cannot describe: {exc})"


@bp.route("/")
@require_role("admin", None)
def index() -> Any:
    cfg = site_config()
    secrets, secrets_problem = secret_values(cfg)
    destinations, dest_error = _destinations()
    dests = [
        {"name": n, "type": getattr(d, "type", ""), "describe": masked(_describe(d), secrets)}
        for n, d in sorted(destinations.items())
    ]
    return render_template(
        "settings_index.html",
        effective=json.dumps(
            masked(effective_settings(cfg), secrets), indent=2, ensure_ascii=False
        ),
        raw=json.dumps(masked(cfg.source, secrets), indent=2, ensure_ascii=False),
        config_file=cfg.config_file,
        secrets_file=cfg.tracker.secrets_file,
        secrets_problem=secrets_problem,
        destinations=dests,
        dest_error=dest_error,
    )


@bp.route("/check/<name>", methods=["POST"])
@require_role("admin", None)
def check(name: str) -> Any:
    destinations, dest_error = _destinations()
    if dest_error:
        abort(400, f"The destinations cannot be loaded: {dest_error}")
    dest = destinations.get(name)
    if dest is None:
        abort(404, f"No destination named {name!r}.")
    secrets, _ = secret_values(site_config())
    started = time.monotonic()
    try:
        text = dest.check()
        ok = True
    except Exception as exc:  # noqa: BLE001 - SendError and any failure of a peer's client library
        text, ok = f"{type(exc).__name__}: {exc}" if not str(exc) else str(exc), False
    seconds = time.monotonic() - started
    text = masked(text, secrets)
    log.info(
        "destination checked",
        extra={"destination": name, "ok": ok, "seconds": round(seconds, 3), "result": text},
    )
    flash(f"{name}: {'OK' if ok else 'FAILED'}: {text}", "ok" if ok else "error")
    return redirect(url_for("settings.index"))
