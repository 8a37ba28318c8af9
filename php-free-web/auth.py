"""Login, logout, own password; the session, CSRF and role checks every other page relies on.

``install(app)`` adds the checks that run before every request: a route other than the login
page and static files needs a live session (HTML requests are sent to the login page, others get
401), and every POST/PUT/PATCH/DELETE needs the session's CSRF token (form field ``csrf_token`` or
header ``X-CSRF-Token``), else 400.
"""

from __future__ import annotations

import functools
import hmac
import logging
import secrets
from collections.abc import Callable
from typing import Any, TypeVar

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from markupsafe import Markup

from fionagw.web.users import MAX_FAILURES_IP, MAX_FAILURES_USER, User, UserError

log = logging.getLogger("fionagw.web.auth")
bp = Blueprint("auth", __name__)

PUBLIC_ENDPOINTS = {"auth.login", "static"}
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
CSRF_MISSING = (
    "This form was sent without its security token, or with one from an older session "
    "(CSRF protection). Nothing was changed: reload the page and send it again."
)
F = TypeVar("F", bound=Callable[..., Any])


def current_user() -> User | None:
    return g.get("user")


def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def csrf_field() -> Markup:
    return Markup('<input type="hidden" name="csrf_token" value="{}">').format(csrf_token())


def _users():  # type: ignore[no-untyped-def]
    from app import users  # type: ignore[import-not-found]

    return users()


def _session_user() -> User | None:
    from app import web_config  # type: ignore[import-not-found]

    token = session.get("sid")
    if not isinstance(token, str):
        return None
    return _users().session_user(token, web_config().session_minutes * 60)


def _refuse_anonymous() -> Response:
    accept = request.headers.get("Accept") or ""
    if (
        request.method == "GET"
        and "text/event-stream" not in accept
        and "application/json" not in accept
    ):
        target = request.path if request.path != "/" else None
        return redirect(url_for("auth.login", next=target))
    abort(401, "Log in first: this page needs a session (it may have expired).")


def _before_request() -> Response | None:
    g.user = None
    if request.endpoint not in PUBLIC_ENDPOINTS:
        g.user = _session_user()
        if g.user is None:
            return _refuse_anonymous()
    if request.method in UNSAFE_METHODS:
        expected = session.get("csrf")
        sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token", "")
        if not expected or not isinstance(sent, str) or not hmac.compare_digest(sent, expected):
            log.warning(
                "request refused: missing or wrong CSRF token",
                extra={"path": request.path, "ip": request.remote_addr},
            )
            abort(400, CSRF_MISSING)
    return None


def install(app: Flask) -> None:
    app.before_request(_before_request)
    app.jinja_env.globals.update(
        csrf_field=csrf_field, csrf_token=csrf_token, current_user=current_user
    )


# -- decorators for views -------------------------------------------------------------------


def login_required(view: F) -> F:
    """The view needs a logged-in user (the global check already ensures it; this re-checks)."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if current_user() is None:
            abort(401, "Log in first.")
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def check_role(project: str | None, role: str) -> User:
    """Abort with 403 unless the user has ``role`` on ``project`` (None: the global admin role)."""
    user = current_user()
    if user is None:
        abort(401, "Log in first.")
    allowed = user.is_admin if project is None or role == "admin" else user.has_role(project, role)
    if not allowed:
        where = f" on project {project}" if project else ""
        log.warning(
            "request refused: role missing",
            extra={"user": user.name, "role": role, "project": project or "", "path": request.path},
        )
        abort(403, f"Your account ({user.name}) does not have the {role} role{where}.")
    return user


def require_role(role: str, project_arg: str | None = "project") -> Callable[[F], F]:
    """Decorator: the user needs ``role`` on the project named by ``project_arg`` (a view
    argument, form field or query argument); ``project_arg=None`` or role "admin": global admin."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            project = None
            if project_arg is not None and role != "admin":
                project = kwargs.get(project_arg) or request.values.get(project_arg) or ""
                if not project:
                    abort(400, f"No project given (field {project_arg!r}).")
            check_role(project, role)
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def allowed_projects(role: str) -> list[str]:
    """The tracker's projects on which the current user has ``role``, sorted."""
    from app import tracker  # type: ignore[import-not-found]

    user = current_user()
    if user is None:
        return []
    return user.projects_with(role, tracker().projects())


# -- pages --------------------------------------------------------------------------------------


def _safe_next(target: str | None) -> str:
    """Only a local path (never //host or a scheme) may be a redirect target after login."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("index")


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if request.method == "GET":
        if _session_user() is not None:
            return redirect(_safe_next(request.args.get("next")))
        return render_template("login.html", next=request.args.get("next", ""))
    name = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    ip = request.remote_addr or "unknown"
    store = _users()
    keys = (f"user:{name}", f"ip:{ip}")
    wait = store.locked_for(keys)
    if wait > 0:
        log.warning("login refused: too many failed attempts", extra={"user": name, "ip": ip})
        minutes = max(1, round(wait / 60))
        return render_template(
            "login.html",
            next=request.form.get("next", ""),
            username=name,
            error=f"Too many failed logins. Try again in {minutes} minute"
            f"{'s' if minutes != 1 else ''}.",
        ), 429
    if not name or not password or not store.verify_password(name, password):
        store.record_failure(keys[0], MAX_FAILURES_USER)
        store.record_failure(keys[1], MAX_FAILURES_IP)
        log.warning("login failed", extra={"user": name, "ip": ip})
        return render_template(
            "login.html",
            next=request.form.get("next", ""),
            username=name,
            error="Wrong user name or password.",
        ), 401
    store.clear_failures(keys[0])
    session.clear()  # a new session: nothing from before the login survives (fixation)
    session.permanent = True
    session["sid"] = store.create_session(name)
    csrf_token()
    log.info("login", extra={"user": name, "ip": ip})
    return redirect(_safe_next(request.form.get("next")))


@bp.route("/logout", methods=["POST"])
def logout() -> Response:
    token = session.get("sid")
    if isinstance(token, str):
        _users().end_session(token)
    user = current_user()
    log.info("logout", extra={"user": user.name if user else ""})
    session.clear()
    return redirect(url_for("auth.login"))


@bp.route("/account", methods=["GET", "POST"])
def account() -> Any:
    """The user's own roles and a password change."""
    user = current_user()
    assert user is not None
    error = ""
    if request.method == "POST":
        store = _users()
        new = request.form.get("new_password", "")
        if not store.verify_password(user.name, request.form.get("old_password", "")):
            error = "The current password is wrong."
        elif new != request.form.get("repeat_password", ""):
            error = "The two new passwords differ."
        else:
            try:
                store.set_password(user.name, new)  # ends every session of the user
            except UserError as exc:
                error = str(exc)
            else:
                log.info("password changed", extra={"user": user.name})
                session.clear()
                session.permanent = True
                session["sid"] = store.create_session(user.name)
                csrf_token()
                flash("Password changed. Other sessions of your account were logged out.", "ok")
                return redirect(url_for("auth.account"))
    return render_template("login_account.html", user=user, error=error), 400 if error else 200
