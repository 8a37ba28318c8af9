"""Web accounts, roles, sessions and failed-login counters in DATADIR/web/users.db (SQLite).

Passwords are hashed with scrypt (Werkzeug's generate_password_hash, salted). Roles are
per project: assign, export, review; ``admin`` without a project is the site's admin and
implies every role, ``admin`` on a project is that project's admin (it may bypass a failed
quality-control check, qc/bypass.py). A grant
on project ``*`` applies to every project. Sessions live here (not only in the cookie) so
logout, a password change or a revoked account ends them at once, in every worker process.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from werkzeug.security import check_password_hash, generate_password_hash

from fionagw.config import SiteConfig
from fionagw.ops.perms import KEY_DIR_MODE, SECRET_MODE

ROLES = ("assign", "export", "review", "admin")
PROJECT_ROLES = ("assign", "export", "review")
ALL_PROJECTS = "*"
MIN_PASSWORD = 10
_NAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
PASSWORD_METHOD = "scrypt:32768:8:1"
# Verified for unknown users too, so the answer time does not tell which names exist.
_DUMMY_HASH = generate_password_hash("not-a-password", method=PASSWORD_METHOD)

# Failed logins: this many within WINDOW_S locks the account (or address) for LOCK_S.
MAX_FAILURES_USER = 5
MAX_FAILURES_IP = 20
WINDOW_S = 15 * 60
LOCK_S = 5 * 60

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY, pw_hash TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS roles (
    name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE, project TEXT NOT NULL,
    role TEXT NOT NULL, PRIMARY KEY (name, project, role));
CREATE TABLE IF NOT EXISTS sessions (
    token_hash TEXT PRIMARY KEY, name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    created REAL NOT NULL, last_seen REAL NOT NULL);
CREATE TABLE IF NOT EXISTS failures (
    key TEXT PRIMARY KEY, count INTEGER NOT NULL, first REAL NOT NULL, locked_until REAL NOT NULL);
"""


class UserError(Exception):
    """A bad user-store request (unknown user, weak password, bad role); one line."""


@dataclass(frozen=True)
class User:
    name: str
    roles: frozenset[tuple[str, str]]  # (project, role); admin is ("", "admin")
    must_change: bool = False  # made (or reset) by an admin: a new password comes first

    @property
    def is_admin(self) -> bool:
        return ("", "admin") in self.roles

    def has_role(self, project: str, role: str) -> bool:
        """May this user act as ``role`` on ``project``? (admin may do everything)"""
        return self.is_admin or (project, role) in self.roles or (ALL_PROJECTS, role) in self.roles

    def projects_with(self, role: str, known: Iterable[str]) -> list[str]:
        """The projects among ``known`` where the user has ``role``, sorted."""
        return sorted(p for p in known if self.has_role(p, role))

    def describe_roles(self) -> str:
        return ", ".join(sorted(r if not p else f"{r}@{p}" for p, r in self.roles)) or "(no roles)"


# What a first start says (fiona run's banner, the login page) while there is no account yet
FIRST_ADMIN_HINT = (
    "no web accounts yet: make the first admin with "
    "`fiona user add NAME` and `fiona user grant NAME admin`"
)


def users_db(cfg: SiteConfig) -> Path:
    return cfg.paths.web_users


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise UserError(f"invalid user name {name!r}: 1-64 letters, digits, '.', '_', '@' or '-'")
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"password too short: at least {MIN_PASSWORD} characters")
    return password


class UserStore:
    """All account state; safe to use from several threads and processes (one connection a call)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.parent.chmod(KEY_DIR_MODE)
        with self._db() as db:
            db.executescript(SCHEMA)
            columns = {row[1] for row in db.execute("PRAGMA table_info(users)")}
            if "must_change" not in columns:  # a store from before forced password changes
                db.execute("ALTER TABLE users ADD COLUMN must_change INTEGER NOT NULL DEFAULT 0")
        path.chmod(SECRET_MODE)

    @classmethod
    def for_site(cls, cfg: SiteConfig) -> UserStore:
        return cls(users_db(cfg))

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA foreign_keys=ON")
            yield db
        finally:
            db.close()

    # -- accounts --------------------------------------------------------------------------

    def add_user(self, name: str, password: str, must_change: bool = False) -> None:
        """A new account; ``must_change``: its first login must set a new password (an
        account an admin made, with a password the admin knows)."""
        check_name(name)
        pw = generate_password_hash(check_password(password), method=PASSWORD_METHOD)
        with self._db() as db:
            try:
                db.execute(
                    "INSERT INTO users (name, pw_hash, created, must_change) VALUES (?, ?, ?, ?)",
                    (name, pw, time.time(), int(must_change)),
                )
            except sqlite3.IntegrityError:
                raise UserError(
                    f"user {name!r} exists (use passwd to change the password)"
                ) from None

    def set_password(self, name: str, password: str, must_change: bool = False) -> None:
        """A new password (``must_change``: set by someone else, to be changed at next login)."""
        pw = generate_password_hash(check_password(password), method=PASSWORD_METHOD)
        with self._db() as db:
            changed = db.execute(
                "UPDATE users SET pw_hash = ?, must_change = ? WHERE name = ?",
                (pw, int(must_change), name),
            ).rowcount
            if changed == 0:
                raise UserError(f"no user {name!r}")
            db.execute("DELETE FROM sessions WHERE name = ?", (name,))  # log out everywhere

    def remove_user(self, name: str) -> None:
        with self._db() as db:
            if db.execute("DELETE FROM users WHERE name = ?", (name,)).rowcount == 0:
                raise UserError(f"no user {name!r}")

    def grant(self, name: str, role: str, project: str = "") -> None:
        project = self._role_project(role, project)
        with self._db() as db:
            self._require(db, name)
            db.execute("INSERT OR IGNORE INTO roles VALUES (?, ?, ?)", (name, project, role))

    def revoke(self, name: str, role: str, project: str = "") -> bool:
        project = self._role_project(role, project)
        with self._db() as db:
            self._require(db, name)
            return (
                db.execute(
                    "DELETE FROM roles WHERE name = ? AND project = ? AND role = ?",
                    (name, project, role),
                ).rowcount
                > 0
            )

    @staticmethod
    def _role_project(role: str, project: str) -> str:
        if role not in ROLES:
            raise UserError(f"unknown role {role!r} (roles: {', '.join(ROLES)})")
        if role == "admin":
            return project  # "": the site's admin; a project: that project's (QC bypasses)
        if not project:
            raise UserError(f"role {role} needs a project (or '*' for every project)")
        return project

    @staticmethod
    def _require(db: sqlite3.Connection, name: str) -> None:
        if db.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone() is None:
            raise UserError(f"no user {name!r}")

    def get_user(self, name: str) -> User | None:
        with self._db() as db:
            row = db.execute("SELECT must_change FROM users WHERE name = ?", (name,)).fetchone()
            if row is None:
                return None
            rows = db.execute("SELECT project, role FROM roles WHERE name = ?", (name,)).fetchall()
        return User(name, frozenset((p, r) for p, r in rows), bool(row[0]))

    def has_users(self) -> bool:
        with self._db() as db:
            return db.execute("SELECT 1 FROM users LIMIT 1").fetchone() is not None

    def users(self) -> list[User]:
        with self._db() as db:
            names = db.execute("SELECT name, must_change FROM users ORDER BY name").fetchall()
            rows = db.execute("SELECT name, project, role FROM roles").fetchall()
        return [User(n, frozenset((p, r) for u, p, r in rows if u == n), bool(m)) for n, m in names]

    def must_change_password(self, name: str) -> bool:
        """Must this account set a new password before it may do anything else?"""
        with self._db() as db:
            row = db.execute("SELECT must_change FROM users WHERE name = ?", (name,)).fetchone()
        return bool(row and row[0])

    def verify_password(self, name: str, password: str) -> bool:
        with self._db() as db:
            row = db.execute("SELECT pw_hash FROM users WHERE name = ?", (name,)).fetchone()
        if row is None:
            check_password_hash(_DUMMY_HASH, password)
            return False
        return check_password_hash(row[0], password)

    # -- sessions --------------------------------------------------------------------------

    def create_session(self, name: str) -> str:
        """A new session for ``name``; returns the token (only its hash is stored)."""
        token = secrets.token_urlsafe(32)
        now = time.time()
        with self._db() as db:
            db.execute(
                "INSERT INTO sessions VALUES (?, ?, ?, ?)", (_token_hash(token), name, now, now)
            )
            db.execute("DELETE FROM sessions WHERE last_seen < ?", (now - 2 * 86400,))
        return token

    def session_user(self, token: str, idle_s: float) -> User | None:
        """The user of a live session (refreshing its idle clock), or None (unknown/expired)."""
        now = time.time()
        h = _token_hash(token)
        with self._db() as db:
            row = db.execute(
                "SELECT name, last_seen FROM sessions WHERE token_hash = ?", (h,)
            ).fetchone()
            if row is None:
                return None
            if now - row[1] > idle_s:
                db.execute("DELETE FROM sessions WHERE token_hash = ?", (h,))
                return None
            if now - row[1] > 15:  # do not write on every request
                db.execute("UPDATE sessions SET last_seen = ? WHERE token_hash = ?", (now, h))
        return self.get_user(row[0])

    def end_session(self, token: str) -> None:
        with self._db() as db:
            db.execute("DELETE FROM sessions WHERE token_hash = ?", (_token_hash(token),))

    # -- failed-login rate limiting ----------------------------------------------------------

    def locked_for(self, keys: Iterable[str]) -> float:
        """Seconds until every one of ``keys`` ("user:NAME", "ip:ADDR") may try again (0: now)."""
        now = time.time()
        keys = list(keys)
        with self._db() as db:
            rows = db.execute(
                f"SELECT locked_until FROM failures WHERE key IN ({','.join('?' * len(keys))})",
                keys,
            ).fetchall()
        return max([0.0, *(until - now for (until,) in rows)])

    def record_failure(self, key: str, limit: int) -> None:
        now = time.time()
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute("SELECT count, first FROM failures WHERE key = ?", (key,)).fetchone()
            count, first = (0, now) if row is None or now - row[1] > WINDOW_S else row
            count += 1
            locked = now + LOCK_S if count >= limit else 0.0
            if locked:
                count, first = 0, now  # a fresh window after the lock
            db.execute(
                "INSERT OR REPLACE INTO failures VALUES (?, ?, ?, ?)", (key, count, first, locked)
            )
            db.execute("COMMIT")

    def clear_failures(self, key: str) -> None:
        with self._db() as db:
            db.execute("DELETE FROM failures WHERE key = ?", (key,))
