"""CSRF protection: every POST/PUT/PATCH/DELETE carries the session's token (form field
``csrf_token`` or header ``X-CSRF-Token``), else it is refused with 400."""

from __future__ import annotations

import hmac
import logging
import secrets

from flask import abort, request, session
from markupsafe import Markup

LOGGER = logging.getLogger(__name__)

UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
CSRF_MISSING = (
    "This form was sent without its security token, or with one from an older session "
    "(CSRF protection). Nothing was changed: reload the page and send it again."
)


def csrf_token() -> str:
    """The session's token (made on first use)."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def csrf_field() -> Markup:
    """The hidden form field every POST form contains."""
    return Markup('<input type="hidden" name="csrf_token" value="{}">').format(csrf_token())


def check_csrf() -> None:
    """Before every request: abort with 400 unless an unsafe request carries the token."""
    if request.method not in UNSAFE_METHODS:
        return
    expected = session.get("csrf")
    sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token", "")
    if not expected or not isinstance(sent, str) or not hmac.compare_digest(sent, expected):
        LOGGER.warning(
            "request refused: missing or wrong CSRF token",
            extra={"path": request.path, "ip": request.remote_addr},
        )
        abort(400, CSRF_MISSING)
