"""The tabs of the top bar and the start page: each application shows its tab to the users its
``role`` admits, in the order of :data:`fionaweb.applications.APPLICATIONS`; ``/`` opens the
first tab the user has (else the account page)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from flask import Blueprint, Flask, Response, redirect, url_for

from fionagw.web.users import User

from .auth.roles import has_role_anywhere
from .auth.session import current_user


@dataclass(frozen=True)
class Application:
    """One of FIONA's applications/<App>/: its blueprint (with an ``index`` endpoint), the tab's
    label, and who sees the tab: every user (None), admins ("admin"), or users holding the
    role on some project."""

    blueprint: Blueprint
    label: str
    role: str | None = None

    @property
    def endpoint(self) -> str:
        return f"{self.blueprint.name}.index"

    def visible_to(self, user: User) -> bool:
        if self.role is None:
            return True
        if self.role == "admin":
            return user.is_admin
        return has_role_anywhere(user, self.role)


def install_navigation(app: Flask, applications: Sequence[Application], site_label: str) -> None:
    def nav_items() -> list[tuple[str, str]]:
        """(endpoint, label) of the tabs the current user sees."""
        user = current_user()
        if user is None:
            return []
        return [
            (a.endpoint, a.label)
            for a in applications
            if a.endpoint in app.view_functions and a.visible_to(user)
        ]

    @app.route("/")
    def index() -> Response:
        items = nav_items()
        return redirect(url_for(items[0][0]) if items else url_for("auth.account"))

    @app.context_processor
    def _layout() -> dict:
        return {"nav_items": nav_items, "site_label": site_label}
