"""`fiona user`: accounts and roles from the command line."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import pytest

from fionagw.config import load_config
from fionagw.web.users import UserStore, users_db
from support.site import BIN
from support.web import web_config

pytestmark = pytest.mark.slow


def test_fiona_user_command(tmp_path: Path) -> None:
    config = web_config(tmp_path)

    def user(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(BIN / "fiona"), "--config", str(config), "user", *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )

    r = user("add", "frank", "--password-stdin", stdin="frank-password-1\n")
    assert r.returncode == 0 and "added frank" in r.stdout, r.stderr
    r = user("add", "frank", "--password-stdin", stdin="frank-password-1\n")
    assert r.returncode == 1 and "user 'frank' exists" in r.stderr
    r = user("add", "gina", "--password-stdin", stdin="short\n")
    assert (
        r.returncode == 1
        and r.stderr.strip() == "fiona user: password too short: at least 10 characters"
    )
    r = user("add", "bad name", "--password-stdin", stdin="long-enough-pw\n")
    assert r.returncode == 1 and "invalid user name" in r.stderr

    assert user("grant", "frank", "assign", "DEMO").returncode == 0
    r = user("grant", "frank", "review", "NOPE")
    assert r.returncode == 1 and "unknown project 'NOPE' (known: DEMO, OTHER)" in r.stderr
    r = user("grant", "frank", "export")
    assert r.returncode == 1 and "needs a project" in r.stderr
    r = user("grant", "frank", "admin", "NOPE")  # a project's admin: the project must exist
    assert r.returncode == 1 and "unknown project 'NOPE' (known: DEMO, OTHER)" in r.stderr
    assert user("grant", "frank", "review", "*").returncode == 0
    r = user("list")
    assert r.returncode == 0 and "frank\tassign@DEMO, review@*" in r.stdout

    store = UserStore.for_site(load_config(config))
    assert store.verify_password("frank", "frank-password-1")
    assert store.get_user("frank").has_role("OTHER", "review")  # type: ignore[union-attr]
    assert not store.get_user("frank").has_role("OTHER", "assign")  # type: ignore[union-attr]

    r = user("passwd", "frank", "--password-stdin", stdin="frank-password-2\n")
    assert r.returncode == 0, r.stderr
    assert store.verify_password("frank", "frank-password-2") and not store.verify_password(
        "frank", "frank-password-1"
    )
    assert user("revoke", "frank", "assign", "DEMO").returncode == 0
    assert "frank\treview@*" in user("list").stdout
    assert user("remove", "frank").returncode == 0
    assert store.get_user("frank") is None
    # the password is stored as a salted scrypt hash, never as text
    with sqlite3.connect(users_db(load_config(config))) as db:
        hashes = [h for (h,) in db.execute("SELECT pw_hash FROM users")]
    assert all(h.startswith("scrypt:") for h in hashes)
    assert oct(users_db(load_config(config)).stat().st_mode & 0o777) == "0o600"


def test_no_terminal_and_no_password_says_how_to_give_one(tmp_path: Path) -> None:
    config = web_config(tmp_path)
    base = [str(BIN / "fiona"), "--config", str(config), "user"]
    with open("/dev/null") as devnull:  # no terminal, no --password-stdin: nothing to ask
        r = subprocess.run(
            [*base, "add", "hans"], stdin=devnull, capture_output=True, text=True, timeout=60
        )
    assert r.returncode == 1
    assert "no terminal to ask for the password" in r.stderr, r.stderr
    assert "fiona user add hans --password-stdin" in r.stderr and "too short" not in r.stderr
    r = subprocess.run(
        [*base, "passwd", "hans", "--password-stdin"],
        input="",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 1 and "no password on stdin" in r.stderr, r.stderr
    assert UserStore.for_site(load_config(config)).get_user("hans") is None


def test_help_texts_carry_no_rest_markup() -> None:
    for command in (["deid"], ["user"]):
        r = subprocess.run(
            [str(BIN / "fiona"), *command, "--help"], capture_output=True, text=True, timeout=60
        )
        assert r.returncode == 0 and r.stdout.strip(), r.stderr
        assert "``" not in r.stdout, r.stdout
    r = subprocess.run(
        [str(BIN / "fiona"), "deid", "--help"], capture_output=True, text=True, timeout=60
    )
    assert "anonymize -b -m" in r.stdout
    r = subprocess.run(
        [str(BIN / "anonymizeAndSend"), "--help"], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0 and "``" not in r.stdout, r.stdout
