"""`fiona user add|passwd|grant|revoke|remove|list`: the web pages' local accounts and roles.

Roles: assign, export, review on a project (or ``*`` for every project); admin (global, or
on a project: that project's admin, who may bypass a failed QC check).
Passwords are asked twice on a terminal, or read from the first line of stdin with
``--password-stdin`` (for scripts).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from fionagw.admin import accounts
from fionagw.cli.common import config_errors, load_site
from fionagw.config import ConfigError, SiteConfig
from fionagw.web.users import ALL_PROJECTS, ROLES, UserError, UserStore

PROGRAM = "fiona user"
COMMAND = "user"


def register(sub: Any) -> None:
    p = sub.add_parser(
        COMMAND, help="web accounts and roles: add, passwd, grant, revoke, remove, list"
    )
    p.add_argument("--site", default="")
    acts = p.add_subparsers(dest="action", required=True)
    for name, text in (
        ("add", "create an account"),
        ("passwd", "set a new password (logs the user out)"),
    ):
        a = acts.add_parser(name, help=text)
        a.add_argument("name")
        a.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    for name, text in (("grant", "give a role"), ("revoke", "take a role away")):
        a = acts.add_parser(name, help=f"{text}: ROLE is one of {', '.join(ROLES)}")
        a.add_argument("name")
        a.add_argument("role", choices=ROLES)
        a.add_argument(
            "project",
            nargs="?",
            default="",
            help=f"the project (admin without one: the site's admin); {ALL_PROJECTS!r} for every project",
        )
    a = acts.add_parser("remove", help="delete an account")
    a.add_argument("name")
    acts.add_parser("list", help="accounts and their roles")


def _password(from_stdin: bool, action: str, name: str) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        if not line.strip("\r\n"):
            raise UserError("no password on stdin (--password-stdin reads its first line)")
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        # a script or cron job: nothing to ask, and reading stdin unasked would take a stray line
        raise UserError(
            "no terminal to ask for the password: give it on stdin with --password-stdin, e.g. "
            f"printf '%s\\n' \"$PASSWORD\" | fiona user {action} {name} --password-stdin"
        )
    first = getpass.getpass("New password: ")
    if first != getpass.getpass("Again: "):
        raise UserError("the two passwords differ")
    return first


def _check_project(cfg: SiteConfig, project: str) -> None:
    """A grant on a project the tracker does not know is refused (a typo would grant nothing)."""
    from fionagw.config.projects import ProjectsError
    from fionagw.tracking.base import TrackerError
    from fionagw.tracking.factory import open_tracker

    if project in ("", ALL_PROJECTS):
        return
    try:
        tracker = open_tracker(cfg)
        try:
            known = tracker.projects()
        finally:
            tracker.close()
    except (TrackerError, ProjectsError, ConfigError) as exc:
        print(
            f"{PROGRAM}: warning: cannot check the project against the tracker: {exc}",
            file=sys.stderr,
        )
        return
    if project not in known:
        raise UserError(
            f"unknown project {project!r} (known: {', '.join(sorted(known)) or 'none'})"
        )


def run(args: argparse.Namespace) -> int:
    with config_errors(PROGRAM):
        cfg = load_site(args)
    try:
        store = UserStore.for_site(cfg)
        if args.action == "list":
            for user in store.users():
                print(f"{user.name}\t{user.describe_roles()}")
            return 0
        if args.action == "add":
            accounts.add(
                cfg, store, None, args.name, _password(args.password_stdin, args.action, args.name)
            )
            print(
                f"{PROGRAM}: added {args.name} (no roles yet: fiona user grant {args.name} ROLE PROJECT)"
            )
        elif args.action == "passwd":
            accounts.set_password(
                cfg, store, None, args.name, _password(args.password_stdin, args.action, args.name)
            )
            print(f"{PROGRAM}: password of {args.name} changed; its sessions were ended")
        elif args.action == "grant":
            _check_project(cfg, args.project)
            accounts.grant(cfg, store, None, args.name, args.role, args.project)
            print(f"{PROGRAM}: {args.name}: {store.get_user(args.name).describe_roles()}")  # type: ignore[union-attr]
        elif args.action == "revoke":
            if not accounts.revoke(cfg, store, None, args.name, args.role, args.project):
                print(f"{PROGRAM}: {args.name} did not have that role", file=sys.stderr)
            print(f"{PROGRAM}: {args.name}: {store.get_user(args.name).describe_roles()}")  # type: ignore[union-attr]
        elif args.action == "remove":
            accounts.remove(cfg, store, None, args.name)
            print(f"{PROGRAM}: removed {args.name}")
    except UserError as exc:
        print(f"{PROGRAM}: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"{PROGRAM}: cannot open the user store: {exc}", file=sys.stderr)
        return 1
    return 0
