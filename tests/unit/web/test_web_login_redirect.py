"""The target after login: same-origin paths only; anything else goes to the start page."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from support.web import ADMIN, ADMIN_PASSWORD, csrf_from

pytestmark = pytest.mark.slow

HOSTILE = [
    "/\t/evil.example",  # the issue's /%09/evil.example once the query string is decoded
    "/%09/evil.example",  # the same, encoded twice
    "/\n/evil.example",
    "/%0a/evil.example",
    "\n",
    "%0a",
    "/x\r\nSet-Cookie: a=b",
    "\t",
    "//x",
    "/\\x",
    "\\\\x",
    "/%5Cx",
    "/%2F%2Fx",
    "%2F%2Fx",
    "http://x",
    "https://evil.example/",
    "javascript:alert(1)",
    "evil.example",
    "/ /x",
    "/\u2028/x",
    "/\x00x",
]


def _login(client: Any, next_target: str) -> Any:
    html = client.get("/login?next=" + quote(next_target, safe="")).get_data(as_text=True)
    return client.post(
        "/login",
        data={
            "username": ADMIN,
            "password": ADMIN_PASSWORD,
            "csrf_token": csrf_from(html),
            "next": next_target,
        },
    )


@pytest.mark.parametrize("target", HOSTILE)
def test_a_hostile_next_goes_to_the_start_page(app_client: tuple[Any, Any], target: str) -> None:
    app, _ = app_client
    client = app.test_client()
    r = _login(client, target)
    assert r.status_code == 302 and r.headers["Location"] == "/", r.headers.get("Location")
    # logged in already: the GET of the login page redirects the same way
    r = client.get("/login?next=" + quote(target, safe=""))
    assert r.status_code == 302 and r.headers["Location"] == "/", r.headers.get("Location")


@pytest.mark.parametrize("target", ["/status/", "/logs/?level=error", "/assign/#top"])
def test_a_local_next_is_kept(app_client: tuple[Any, Any], target: str) -> None:
    app, _ = app_client
    client = app.test_client()
    r = _login(client, target)
    assert r.status_code == 302 and r.headers["Location"] == target
    assert client.get(target.split("#")[0]).status_code == 200
