"""Login, logout and the user's own account page (roles, password change)."""

from __future__ import annotations

import logging
import unicodedata
from typing import Any
from urllib.parse import unquote

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for

from fionagw.admin import accounts
from fionagw.web.users import FIRST_ADMIN_HINT, MAX_FAILURES_IP, MAX_FAILURES_USER, UserError

from ..core.context import site_config, users
from .session import current_user, end_session, session_user, start_session

LOGGER = logging.getLogger(__name__)
bp = Blueprint("auth", __name__, template_folder="templates")


def _safe_next(target: str | None) -> str:
    """The redirect target after login: a same-origin path, or else the start page.

    Browsers drop tabs and newlines from a URL and read a backslash as a slash, so
    ``/%09/evil.example`` or ``/\\evil.example`` would reach another host; a control character
    would also break the Location header. The target is checked both as given and decoded.
    """
    if target:
        decoded = unquote(target)
        if all(_is_local_path(t) for t in (target, decoded)):
            return target
    return url_for("index")


def _is_local_path(path: str) -> bool:
    if not path.startswith("/") or path.startswith("//") or "\\" in path:
        return False
    return not any(c.isspace() or unicodedata.category(c).startswith("C") for c in path)


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if request.method == "GET":
        if session_user() is not None:
            return redirect(_safe_next(request.args.get("next")))
        return render_template(
            "auth/login.html",
            next=request.args.get("next", ""),
            first_start=None if users().has_users() else FIRST_ADMIN_HINT,
        )
    name = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    ip = request.remote_addr or "unknown"
    store = users()
    keys = (f"user:{name}", f"ip:{ip}")
    wait = store.locked_for(keys)
    if wait > 0:
        LOGGER.warning("login refused: too many failed attempts", extra={"user": name, "ip": ip})
        minutes = max(1, round(wait / 60))
        return render_template(
            "auth/login.html",
            next=request.form.get("next", ""),
            username=name,
            error=f"Too many failed logins. Try again in {minutes} minute"
            f"{'s' if minutes != 1 else ''}.",
        ), 429
    if not name or not password or not store.verify_password(name, password):
        store.record_failure(keys[0], MAX_FAILURES_USER)
        store.record_failure(keys[1], MAX_FAILURES_IP)
        LOGGER.warning("login failed", extra={"user": name, "ip": ip})
        return render_template(
            "auth/login.html",
            next=request.form.get("next", ""),
            username=name,
            error="Wrong user name or password.",
        ), 401
    store.clear_failures(keys[0])
    start_session(name)
    LOGGER.info("login", extra={"user": name, "ip": ip})
    return redirect(_safe_next(request.form.get("next")))


@bp.route("/logout", methods=["POST"])
def logout() -> Response:
    user = current_user()
    end_session()
    LOGGER.info("logout", extra={"user": user.name if user else ""})
    return redirect(url_for("auth.login"))


@bp.route("/account", methods=["GET", "POST"])
def account() -> Any:
    """The user's own roles and a password change."""
    user = current_user()
    assert user is not None
    error = ""
    if request.method == "POST":
        store = users()
        new = request.form.get("new_password", "")
        if not store.verify_password(user.name, request.form.get("old_password", "")):
            error = "The current password is wrong."
        elif new != request.form.get("repeat_password", ""):
            error = "The two new passwords differ."
        else:
            try:
                # ends every session of the user; audited; clears a forced change
                accounts.set_password(site_config(), store, user.name, user.name, new)
            except UserError as exc:
                error = str(exc)
            else:
                LOGGER.info("password changed", extra={"user": user.name})
                start_session(user.name)
                flash("Password changed. Other sessions of your account were logged out.", "ok")
                return redirect(url_for("auth.account"))
    return render_template(
        "auth/account.html", user=user, error=error, must_change=user.must_change
    ), 400 if error else 200
