"""Who is logged in: the session cookie names a server-side session (fionagw.web.users), checked
before every request. A route other than the login page and static files needs a live session:
HTML requests are sent to the login page, others (EventSource, JSON) get 401."""

from __future__ import annotations

from flask import Response, abort, g, redirect, request, session, url_for

from fionagw.web.users import User

from ..core.context import users, web_config
from ..core.csrf import csrf_token

PUBLIC_ENDPOINTS = {"auth.login", "static"}
# all an account that must change its password may reach
PASSWORD_CHANGE_ENDPOINTS = {"auth.account", "auth.logout", "static"}


def current_user() -> User | None:
    return g.get("user")


def session_user() -> User | None:
    """The user of the request's session cookie, if the session is alive."""
    token = session.get("sid")
    if not isinstance(token, str):
        return None
    return users().session_user(token, web_config().session_minutes * 60)


def start_session(name: str) -> None:
    """A new session for ``name``: nothing from before survives it (no session fixation)."""
    session.clear()
    session.permanent = True
    session["sid"] = users().create_session(name)
    csrf_token()


def end_session() -> None:
    token = session.get("sid")
    if isinstance(token, str):
        users().end_session(token)
    session.clear()


def require_session() -> Response | None:
    """Before every request: ``g.user``, or the login page / 401 for a protected route."""
    g.user = None
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    g.user = session_user()
    if g.user is not None:
        if g.user.must_change and request.endpoint not in PASSWORD_CHANGE_ENDPOINTS:
            # an account an admin made (or reset): its own password first, nothing else
            if request.method == "GET":
                return redirect(url_for("auth.account"))
            abort(403, "Choose a new password first (Account page).")
        return None
    accept = request.headers.get("Accept") or ""
    if (
        request.method == "GET"
        and "text/event-stream" not in accept
        and "application/json" not in accept
    ):
        target = request.path if request.path != "/" else None
        return redirect(url_for("auth.login", next=target))
    abort(401, "Log in first: this page needs a session (it may have expired).")
