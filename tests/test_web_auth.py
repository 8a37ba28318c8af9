"""Web login and roles: the login form in Chromium, rate limiting, session expiry, roles, `fiona user`."""

from __future__ import annotations

import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

from web_fixtures import (
    ADMIN,
    ADMIN_PASSWORD,
    WebSite,
    client_login,
    csrf_from,
    login,
    screenshot,
    web_config,
)

from conftest import BIN
from fionagw.config import load_config
from fionagw.web.users import MAX_FAILURES_IP, MAX_FAILURES_USER, UserStore, users_db

pytest_plugins = ["web_fixtures"]


def test_login_and_logout_in_the_browser(web_site: WebSite, page: Any) -> None:
    page.goto(web_site.url + "status/")
    assert "/login" in page.url  # no session: the login page, which returns to the page asked for
    screenshot(page, "login")

    page.fill("input[name=username]", ADMIN)
    page.fill("input[name=password]", "not the password")
    page.click("button[type=submit]")
    assert page.locator("p.error").inner_text() == "Wrong user name or password."
    assert page.input_value("input[name=username]") == ADMIN
    screenshot(page, "login-wrong-password")

    page.fill("input[name=password]", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(web_site.url + "status/")
    assert page.locator("h1").inner_text() == "Status"
    assert page.locator(".who a").inner_text() == ADMIN

    page.click("text=Log out")
    page.wait_for_url("**/login")
    page.goto(web_site.url + "logs/")
    assert "/login" in page.url, "the session must end at logout"


def test_account_page_changes_the_password(web_site: WebSite, page: Any) -> None:
    web_site.add_user("carol", "carol-password-1", [("review", "DEMO")])
    login(page, web_site.url, "carol", "carol-password-1")
    page.goto(web_site.url + "account")
    assert "review@DEMO" in page.inner_text("main")
    page.fill("input[name=old_password]", "carol-password-1")
    page.fill("input[name=new_password]", "carol-password-2")
    page.fill("input[name=repeat_password]", "carol-password-2")
    page.click("main button[type=submit]")
    assert "Password changed" in page.inner_text("p.flash")
    screenshot(page, "account")
    assert web_site.users.verify_password("carol", "carol-password-2")
    assert not web_site.users.verify_password("carol", "carol-password-1")


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
    r = user("grant", "frank", "admin", "DEMO")
    assert r.returncode == 1 and "admin is a global role" in r.stderr
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
