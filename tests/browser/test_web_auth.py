"""Web login in Chromium: the login form, logging out, and changing the password."""

from __future__ import annotations

from typing import Any

import pytest

from support.web import ADMIN, ADMIN_PASSWORD, WebSite, login, screenshot

pytestmark = pytest.mark.slow


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
