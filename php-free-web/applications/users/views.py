"""Users' pages: the accounts with their roles, and one POST per change."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for

from fionagw.admin import accounts
from fionagw.web.users import ALL_PROJECTS, PROJECT_ROLES, ROLES, UserError

from ...auth.roles import require_role
from ...auth.session import current_user
from ...core.context import site_config, tracker, users

bp = Blueprint("users", __name__, url_prefix="/users", template_folder="templates")


def _projects() -> list[str]:
    try:
        return sorted(tracker().projects())
    except Exception:  # noqa: BLE001 - the tracker's trouble must not hide the accounts
        return []


@bp.route("/")
@require_role("admin", None)
def index() -> Any:
    return render_template(
        "users/index.html",
        accounts=users().users(),
        roles=ROLES,
        project_roles=PROJECT_ROLES,
        projects=_projects(),
        all_projects=ALL_PROJECTS,
    )


@bp.route("/<action>", methods=["POST"])
@require_role("admin", None)
def act(action: str) -> Any:
    form, cfg, store = request.form, site_config(), users()
    actor = current_user().name
    name = form.get("name", "").strip()
    try:
        if action == "add":
            _same(form)
            accounts.add(cfg, store, actor, name, form["password"], must_change=True)
            message = f"Added {name}; the first login must choose a new password."
        elif action == "passwd":
            _same(form)
            accounts.set_password(cfg, store, actor, name, form["password"], must_change=True)
            message = f"Password of {name} set; its sessions ended, the next login must change it."
        elif action in ("grant", "revoke"):
            role, project = form.get("role", ""), form.get("project", "").strip()
            if role == "admin" and project == "(site)":
                project = ""
            if project not in ("", ALL_PROJECTS, *_projects()):
                raise UserError(f"unknown project {project!r}")
            if action == "grant":
                accounts.grant(cfg, store, actor, name, role, project)
                message = f"{name}: granted {role}{'@' + project if project else ''}."
            elif accounts.revoke(cfg, store, actor, name, role, project):
                message = f"{name}: revoked {role}{'@' + project if project else ''}."
            else:
                raise UserError(f"{name} did not have that role")
        elif action == "remove":
            if name == actor:
                raise UserError("you cannot remove your own account")
            accounts.remove(cfg, store, actor, name)
            message = f"Removed {name}."
        else:
            flash(f"Unknown action {action!r}.", "error")
            return redirect(url_for("users.index"), code=303)
    except (UserError, KeyError) as exc:
        flash(f"Nothing changed: {exc}", "error")
    else:
        flash(message, "ok")
    return redirect(url_for("users.index"), code=303)


def _same(form: Any) -> None:
    if form.get("password", "") != form.get("repeat_password", ""):
        raise UserError("the two passwords differ")
