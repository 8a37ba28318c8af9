"""Web security in-process: every route needs a session, every POST a CSRF token, headers,
clean errors, no identifiers in URLs."""

from __future__ import annotations

import re
from typing import Any

from support.web import ADMIN, ADMIN_PASSWORD, client_login, csrf_from

PUBLIC = {"auth.login", "static"}


SAMPLE_VALUES = {
    "int": "1",
    "float": "1.0",
    "path": "x",
    "uuid": "00000000-0000-0000-0000-000000000000",
}


def _routes(app: Any) -> list[tuple[str, str, str]]:
    """(endpoint, method, url) for every rule of the app, arguments filled with sample values."""
    out = []
    for rule in app.url_map.iter_rules():
        values = {}
        for arg in rule.arguments:
            converter = type(rule._converters[arg]).__name__.replace("Converter", "").lower()
            values[arg] = SAMPLE_VALUES.get(converter, "x")
        if rule.endpoint == "static":
            values["filename"] = "style.css"
        with app.test_request_context():
            from flask import url_for

            url = url_for(rule.endpoint, **values)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            out.append((rule.endpoint, method, url))
    return out


def test_every_route_but_login_and_static_needs_a_session(app_client: tuple[Any, Any]) -> None:
    app, client = app_client
    routes = _routes(app)
    endpoints = {e for e, _m, _u in routes}
    assert {
        "auth.logout",
        "logs.index",
        "logs.stream",
        "status.index",
        "settings.index",
        "index",
    } <= endpoints
    checked = 0
    for endpoint, method, url in routes:
        r = client.open(url, method=method)
        if endpoint in PUBLIC:
            assert r.status_code in (200, 400), (endpoint, method, r.status_code)
            continue
        checked += 1
        if method == "GET":
            assert r.status_code == 302 and r.headers["Location"].startswith("/login"), (
                endpoint,
                url,
                r.status_code,
            )
        else:
            assert r.status_code == 401, (endpoint, method, url, r.status_code)
    assert checked >= 10
    # a stream client (EventSource) is refused with 401, not sent to an HTML page
    assert client.get("/logs/stream", headers={"Accept": "text/event-stream"}).status_code == 401


def test_every_post_needs_the_csrf_token(app_client: tuple[Any, Any]) -> None:
    app, client = app_client
    client_login(client)
    posts = [(e, u) for e, m, u in _routes(app) if m in ("POST", "PUT", "PATCH", "DELETE")]
    assert ("auth.logout", "/logout") in posts and len(posts) >= 3
    for endpoint, url in posts:
        for data in ({}, {"csrf_token": "forged"}):
            r = client.post(url, data=data)
            body = r.get_data(as_text=True)
            assert r.status_code == 400, (endpoint, url, r.status_code)
            assert "security token" in body and "CSRF" in body and "Traceback" not in body
    assert client.get("/status/").status_code == 200  # still logged in: no POST got through
    # login itself: a POST without the token is refused too (no login CSRF)
    fresh = app.test_client()
    r = fresh.post("/login", data={"username": ADMIN, "password": ADMIN_PASSWORD})
    assert r.status_code == 400
    # the token works from the header as well (JavaScript requests)
    token = csrf_from(client.get("/status/").get_data(as_text=True))
    r = client.post("/logout", headers={"X-CSRF-Token": token})
    assert r.status_code == 302 and client.get("/status/").status_code == 302


def test_security_headers(app_client: tuple[Any, Any]) -> None:
    _app, client = app_client
    for r in (client.get("/login"), client.get("/static/style.css")):
        h = r.headers
        csp = h["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert h["X-Frame-Options"] == "DENY"
        assert h["X-Content-Type-Options"] == "nosniff"
        assert h["Referrer-Policy"] == "no-referrer"
        assert "Strict-Transport-Security" not in h  # only under TLS
    client_login(client)
    assert client.get("/status/").headers["Cache-Control"] == "no-store"


def test_pages_have_no_inline_script_or_style(app_client: tuple[Any, Any]) -> None:
    """The CSP blocks inline code; a page that relied on it would silently break."""
    app, client = app_client
    client_login(client)
    pages = [
        u
        for e, m, u in _routes(app)
        if m == "GET"
        and not re.search(r"/x(/|$)|/1(/|$)", u)
        and e not in ("static", "logs.stream", "auth.login")
        and "." not in u.rsplit("/", 1)[-1]
    ]
    assert "/status/" in pages and "/logs/" in pages and "/settings/" in pages
    for url in pages:
        body = client.get(url, follow_redirects=True).get_data(as_text=True)
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", body), url
        assert not re.search(r"\son[a-z]+\s*=", body, re.I), url
        assert not re.search(r"<[a-z][^>]*\sstyle\s*=", body, re.I), url


def test_errors_are_clean_pages(app_client: tuple[Any, Any]) -> None:
    app, client = app_client

    def boom() -> str:
        raise RuntimeError("internal detail /srv/secret/path")

    app.add_url_rule("/test-boom", "test_boom", boom)
    client_login(client)
    r = client.get("/test-boom")
    body = r.get_data(as_text=True)
    assert r.status_code == 500
    assert "500 Internal Server Error" in body and "Reference" in body
    assert "Traceback" not in body and "/srv/secret/path" not in body and "RuntimeError" not in body
    r = client.get("/no-such-page")
    assert r.status_code == 404 and "404 Not Found" in r.get_data(as_text=True)
    r = client.get("/logs/export.exe")
    assert r.status_code == 404 and "Export formats: csv, json." in r.get_data(as_text=True)


def test_no_identifiers_in_route_arguments(app_client: tuple[Any, Any]) -> None:
    """URLs carry opaque ids only: no route takes a patient name, patient ID or accession number."""
    app, _client = app_client
    for rule in app.url_map.iter_rules():
        for arg in rule.arguments:
            assert not re.search(r"patient|accession|birth|person", arg, re.I), (rule.rule, arg)
