"""Account changes, audited: what ``fiona user`` and the Users page do, in one place.

Each function changes the user store (fionagw.web.users) and appends one audit record whose
object is the account's name; passwords are never recorded. ``actor`` is who acts (the admin's
account on the page, ``None`` on the command line: the Unix user).
"""

from __future__ import annotations

from fionagw.config import SiteConfig
from fionagw.web.users import UserStore

from . import audit


def add(
    cfg: SiteConfig,
    store: UserStore,
    actor: str | None,
    name: str,
    password: str,
    must_change: bool = False,
) -> None:
    store.add_user(name, password, must_change=must_change)
    audit.record(
        cfg, "user-add", name, "account created", who=actor, must_change_password=must_change
    )


def set_password(
    cfg: SiteConfig,
    store: UserStore,
    actor: str | None,
    name: str,
    password: str,
    must_change: bool = False,
) -> None:
    store.set_password(name, password, must_change=must_change)
    text = "password set" if actor != name else "own password changed"
    audit.record(cfg, "user-passwd", name, text, who=actor, must_change_password=must_change)


def grant(cfg: SiteConfig, store: UserStore, actor: str | None, name: str, role: str,
          project: str = "") -> None:  # fmt: skip
    store.grant(name, role, project)
    audit.record(cfg, "user-grant", name, "role granted", who=actor, role=role, project=project)


def revoke(cfg: SiteConfig, store: UserStore, actor: str | None, name: str, role: str,
           project: str = "") -> bool:  # fmt: skip
    had = store.revoke(name, role, project)
    if had:
        audit.record(
            cfg, "user-revoke", name, "role revoked", who=actor, role=role, project=project
        )
    return had


def remove(cfg: SiteConfig, store: UserStore, actor: str | None, name: str) -> None:
    store.remove_user(name)
    audit.record(cfg, "user-remove", name, "account removed", who=actor)
