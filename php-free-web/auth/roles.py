"""Role checks for views: a role on a project (assign, review, export, ...) or the global admin
role; a missing role is a 403 naming it, and is logged."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from flask import abort, request

from fionagw.web.users import User

from ..core.context import tracker
from .session import current_user

LOGGER = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])


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
        LOGGER.warning(
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


def has_role_anywhere(user: User, role: str) -> bool:
    """Admin, or ``role`` on at least one project (who sees an application's tab)."""
    return bool(user.is_admin or any(r == role for _, r in user.roles))


def allowed_projects(role: str) -> list[str]:
    """The tracker's projects on which the current user has ``role``, sorted."""
    user = current_user()
    if user is None:
        return []
    return user.projects_with(role, tracker().projects())
