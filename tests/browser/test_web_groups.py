"""Groups page in Chromium: the tab, a group's rows, "Send report", the report downloaded;
the Create group form shows a bad schedule at its field, then creates the group."""

from __future__ import annotations

from typing import Any

import pytest

from fionagw.notify.groups import add_studies, create_group
from support.web import WebSite, screenshot

pytestmark = pytest.mark.slow


def test_groups_page_sends_and_downloads_a_report(web_site: WebSite, admin_page: Any) -> None:
    cfg, page = web_site.cfg, admin_page
    create_group(cfg, "COHORT1", "DEMO", schedule="0 6 * * 1")
    add_studies(cfg, "COHORT1", ["1.2.826.0.1.3680043.99.7"])
    page.goto(web_site.url + "status/")
    page.click("nav >> text=Groups")
    page.click("#groups >> text=COHORT1")
    assert "0 6 * * 1" in page.inner_text("#group-state")
    assert page.locator("#group-rows tbody tr").count() == 1
    page.click("#send-report")
    page.wait_for_load_state()
    assert "sendNotifications delivers it" in page.inner_text("main")
    link = page.locator("#reports a").first
    with page.expect_download() as info:
        link.click()
    path = info.value.path()
    assert path is not None
    with open(path, "rb") as f:
        assert f.read().startswith(b"pseudonym,event,study_uid,study_date,series,qc,transfer")
    screenshot(page, "groups-detail")
    page.click("nav >> text=Groups")
    page.fill("#create-group input[name=name]", "COHORT2")
    page.select_option("#create-group select[name=project]", "DEMO")
    page.fill("#create-group input[name=schedule]", "every monday")
    page.click("#create")
    assert "bad schedule" in page.inner_text("#error-schedule")
    assert page.input_value("#create-group input[name=name]") == "COHORT2"
    page.fill("#create-group input[name=schedule]", "0 7 * * 1")
    page.click("#create")
    page.wait_for_load_state()
    assert "Group COHORT2 created" in page.inner_text("main")
    assert "0 7 * * 1" in page.inner_text("#group-state")
