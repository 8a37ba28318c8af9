"""Web login and roles in-process: rate limiting, session cookie and expiry, roles."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import pytest

from fionagw.web.users import MAX_FAILURES_IP, MAX_FAILURES_USER, UserStore, users_db
from support.web import ADMIN, ADMIN_PASSWORD, client_login, csrf_from

pytestmark = pytest.mark.slow


def _post_login(app: Any, name: str, password: str, ip: str = "127.0.0.1") -> Any:
    client = app.test_client()  # a browser of its own each time
    token = csrf_from(client.get("/login", environ_base={"REMOTE_ADDR": ip}).get_data(as_text=True))
    return client.post(
        "/login",
        data={"username": name, "password": password, "csrf_token": token},
        environ_base={"REMOTE_ADDR": ip},
    )


def test_failed_logins_lock_the_account_then_the_address(app_client: tuple[Any, Any]) -> None:
    app, _client = app_client
    store: UserStore = app.extensions["fiona_users"]
    store.add_user("dave", "dave-password-1")

    for _ in range(MAX_FAILURES_USER):
        r = _post_login(app, "dave", "wrong-password")
        assert r.status_code == 401 and "Wrong user name or password." in r.get_data(as_text=True)
    r = _post_login(app, "dave", "dave-password-1")  # the right password, but locked now
    assert r.status_code == 429 and "Too many failed logins. Try again in 5 minutes." in r.get_data(
        as_text=True
    )
    # another account from the same address is not locked by dave's failures
    assert _post_login(app, ADMIN, ADMIN_PASSWORD).status_code == 302

    # the lock ends: dave logs in again
    with sqlite3.connect(users_db(app.config["FIONA_CFG"])) as db:
        db.execute("UPDATE failures SET locked_until = 0")
    assert _post_login(app, "dave", "dave-password-1").status_code == 302

    # many names tried from one address: the address is locked, for every account
    for i in range(MAX_FAILURES_IP):
        assert _post_login(app, f"guess{i}", "x", ip="10.9.8.7").status_code == 401
    assert _post_login(app, ADMIN, ADMIN_PASSWORD, ip="10.9.8.7").status_code == 429
    assert _post_login(app, ADMIN, ADMIN_PASSWORD, ip="10.9.8.8").status_code == 302


def test_session_cookie_flags_and_expiry(app_client: tuple[Any, Any]) -> None:
    app, client = app_client
    r = client_login(client)
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Secure" not in cookie  # plain HTTP here; the TLS test checks Secure
    assert client.get("/status/").status_code == 200

    minutes = app.config["FIONA_WEB"].session_minutes
    with sqlite3.connect(users_db(app.config["FIONA_CFG"])) as db:
        db.execute("UPDATE sessions SET last_seen = ?", (time.time() - minutes * 60 - 1,))
    r = client.get("/status/")
    assert r.status_code == 302 and r.headers["Location"].startswith("/login")
    with sqlite3.connect(users_db(app.config["FIONA_CFG"])) as db:
        assert db.execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 0


def test_roles_decide_pages_and_projects(app_client: tuple[Any, Any]) -> None:
    from fionaweb.auth import roles

    app, client = app_client
    app.add_url_rule(
        "/test-role/<project>",
        "test_role",
        roles.require_role("assign")(lambda project: f"assign ok {project}"),
    )
    app.add_url_rule(
        "/test-projects", "test_projects", lambda: ",".join(roles.allowed_projects("review"))
    )
    store: UserStore = app.extensions["fiona_users"]
    store.add_user("erin", "erin-password-1")
    store.grant("erin", "assign", "DEMO")
    store.grant("erin", "review", "*")
    client_login(client, "erin", "erin-password-1")

    assert client.get("/test-role/DEMO").get_data(as_text=True) == "assign ok DEMO"
    r = client.get("/test-role/OTHER")
    assert r.status_code == 403 and "does not have the assign role on project OTHER" in r.get_data(
        as_text=True
    )
    assert client.get("/test-projects").get_data(as_text=True) == "DEMO,OTHER"  # review on "*"
    for admin_only in ("/logs/", "/settings/"):
        assert client.get(admin_only).status_code == 403
    page = client.get("/status/").get_data(as_text=True)
    assert (
        'href="/status/"' in page
        and 'href="/logs/"' not in page
        and 'href="/settings/"' not in page
    )

    client.post("/logout", data={"csrf_token": csrf_from(page)})
    client_login(client)  # the admin may do everything
    assert client.get("/test-role/OTHER").status_code == 200
    assert client.get("/logs/").status_code == 200
