"""Users and Audit pages in-process, and the admin-only rule over every administration route
of the app's url_map."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

from fionagw.admin import audit
from support.web import ADMIN, client_login, csrf_from


def _token(client: Any, path: str = "/account") -> str:
    return csrf_from(client.get(path).get_data(as_text=True))


def test_every_administration_route_is_403_for_a_non_admin(app_client: tuple[Any, Any]) -> None:
    from fionaweb.applications import APPLICATIONS

    app, client = app_client
    store = app.extensions["fiona_users"]
    store.add_user("pia", "pia-password-1")
    for role in ("assign", "review", "export"):
        store.grant("pia", role, "*")
    store.grant("pia", "admin", "DEMO")  # a project's admin is not the site's
    client_login(client, "pia", "pia-password-1")
    token = _token(client)
    admin_blueprints = {a.blueprint.name for a in APPLICATIONS if a.role == "admin"}
    assert {"settings", "users", "audit", "logs"} <= admin_blueprints
    checked = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.split(".")[0] not in admin_blueprints:
            continue
        path = rule.rule
        for arg in rule.arguments:
            path = re.sub(rf"<(?:[^:<>]+:)?{arg}>", "x", path)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            r = client.open(path, method=method, data={"csrf_token": token})
            assert r.status_code == 403, (method, path, r.status_code)
            checked.append((method, path))
    assert len(checked) >= 14, checked
    assert ("POST", "/settings/") in checked and ("GET", "/audit/export.csv") in checked


def test_an_account_made_on_the_users_page_must_change_its_password(
    app_client: tuple[Any, Any],
) -> None:
    app, client = app_client
    cfg = app.config["FIONA_CFG"]
    client_login(client)
    token = _token(client, "/users/")
    pw = {"password": "first-password-1", "repeat_password": "first-password-1"}
    r = client.post("/users/add", data={"csrf_token": token, "name": "nora", **pw})
    assert r.status_code == 303
    r = client.post("/users/grant", data={"csrf_token": token, "name": "nora", "role": "assign",
                                          "project": "DEMO"})  # fmt: skip
    page = client.get("/users/").get_data(as_text=True)
    assert "assign@DEMO" in page and "must change" in page
    r = client.post("/users/grant", data={"csrf_token": token, "name": "nora", "role": "assign",
                                          "project": "NOPE"})  # fmt: skip
    assert "unknown project" in client.get("/users/").get_data(as_text=True)

    nora = app.test_client()
    client_login(nora, "nora", "first-password-1")
    r = nora.get("/assign/")
    assert r.status_code == 302 and r.headers["Location"].endswith("/account")
    assert 'id="must-change"' in nora.get("/account").get_data(as_text=True)
    t = _token(nora)
    assert nora.post("/assign/coupling", data={"csrf_token": t}).status_code == 403
    r = nora.post("/account", data={"csrf_token": t, "old_password": "first-password-1",
                                    "new_password": "my-own-password", "repeat_password":
                                    "my-own-password"})  # fmt: skip
    assert r.status_code == 302
    assert nora.get("/assign/").status_code == 200
    actions = [(x["action"], x["object"], x["who"]) for x in audit.search(cfg)][::-1]
    assert actions == [
        ("user-add", "nora", ADMIN),
        ("user-grant", "nora", ADMIN),
        ("user-passwd", "nora", "nora"),
    ]
    assert all("password-1" not in str(x) for x in audit.search(cfg))


def test_audit_page_search_and_csv(app_client: tuple[Any, Any]) -> None:
    app, client = app_client
    cfg = app.config["FIONA_CFG"]
    for i in range(3):
        audit.record(cfg, "retry", f"req-{i}", "queued again", who="bob", origin="10.1.1.1")
    client_login(client)
    page = client.get("/audit/?q=req-1").get_data(as_text=True)
    assert "chain intact" in page and "req-1" in page and "req-2" not in page
    r = client.get("/audit/export.csv?action=retry")
    rows = list(csv.reader(io.StringIO(r.get_data(as_text=True))))
    assert rows[0][:3] == ["seq", "when", "who"] and [x[5] for x in rows[1:]] == [
        "req-2",
        "req-1",
        "req-0",
    ]
    assert audit.search(cfg)[0]["action"] == "export"  # the download itself is recorded
    path = audit.audit_file(cfg)
    path.write_bytes(path.read_bytes().replace(b"req-1", b"req-9", 1))
    page = client.get("/audit/").get_data(as_text=True)
    assert 'id="audit-problems"' in page and "record 2: edited" in page


def test_revoke_remove_and_what_the_users_page_refuses(app_client: tuple[Any, Any]) -> None:
    app, client = app_client
    cfg = app.config["FIONA_CFG"]
    store = app.extensions["fiona_users"]
    store.add_user("olaf", "olaf-password-1")
    store.grant("olaf", "review", "DEMO")
    client_login(client)
    token = _token(client, "/users/")

    def post(action: str, **data: str) -> str:
        client.post(f"/users/{action}", data={"csrf_token": token, **data})
        return client.get("/users/").get_data(as_text=True)

    assert "revoked review@DEMO" in post("revoke", name="olaf", role="review", project="DEMO")
    assert "did not have that role" in post("revoke", name="olaf", role="review", project="DEMO")
    assert "the two passwords differ" in post(
        "passwd", name="olaf", password="new-password-1", repeat_password="other-password"
    )
    assert "cannot remove your own account" in post("remove", name=ADMIN)
    assert "Removed olaf" in post("remove", name="olaf")
    assert store.get_user("olaf") is None and store.get_user(ADMIN) is not None
    acts = [(x["action"], x["object"]) for x in audit.search(cfg)][::-1]
    assert acts == [("user-revoke", "olaf"), ("user-remove", "olaf")]  # refusals change nothing
