"""A first start without any web account says how to make one; once there is one, it does not."""

from __future__ import annotations

from pathlib import Path

import pytest

from fionagw.config import load_config
from fionagw.web.users import UserStore
from support.web import web_config

pytestmark = pytest.mark.slow


def test_the_login_page_says_how_to_make_the_first_account(tmp_path: Path) -> None:
    from fionaweb import create_app

    cfg = load_config(web_config(tmp_path))
    app = create_app(cfg)
    html = app.test_client().get("/login").get_data(as_text=True)
    assert "No web accounts yet" in html
    assert "fiona user add NAME" in html and "fiona user grant NAME admin" in html

    UserStore.for_site(cfg).add_user("first", "first-password-1")
    html = app.test_client().get("/login").get_data(as_text=True)
    assert "Log in" in html and "No web accounts yet" not in html
