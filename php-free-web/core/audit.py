"""The audit trail from a view: :func:`audited` records what the logged-in user did (the
record's "from" is the request's remote address, set before every request by
:func:`set_request_origin`)."""

from __future__ import annotations

from typing import Any

from flask import g, request

from fionagw.admin import audit

from ..auth.session import current_user
from .context import site_config


def set_request_origin() -> None:
    """Before every request: the audit records of this request come from its client."""
    g.audit_origin = audit.set_origin(request.remote_addr or "unknown")


def reset_request_origin(_exc: BaseException | None) -> None:
    """After every request: the thread's later records are not this client's."""
    token = g.pop("audit_origin", None)
    if token is not None:
        audit.reset_origin(token)


def audited(action: str, obj: str, message: str = "", **fields: Any) -> None:
    """One audit record of the current user's act on ``obj`` (no patient value in it)."""
    user = current_user()
    audit.record(
        site_config(), action, obj, message, who=user.name if user else "anonymous", **fields
    )
