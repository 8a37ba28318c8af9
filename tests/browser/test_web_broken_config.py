"""A broken projects.yml in Chromium: the admin's clear error page, one entry in the web log."""

from __future__ import annotations

from typing import Any

import pytest

from support.site import read_log
from support.web import WebSite, screenshot

pytestmark = pytest.mark.slow


def test_admin_sees_what_is_broken_in_projects_yml(web_site: WebSite, admin_page: Any) -> None:
    page, projects = admin_page, web_site.cfg.tracker.projects_file
    projects.write_text("projects:\n  DEMO:\n    participant_id: '^DEMO[0-9'\n")
    for _ in range(2):
        response = page.goto(web_site.url + "assign/")
        assert response is not None and response.status == 503
    section = page.locator('section[data-error="config"]')
    assert "The gateway's configuration is broken" in section.locator("h1").inner_text()
    detail = section.locator("dl.config-error").inner_text()
    assert str(projects) in detail and "projects.DEMO.participant_id" in detail
    assert "not a valid regular expression" in detail
    screenshot(page, "config-error-admin")
    entries = [
        e
        for e in read_log(web_site.cfg.paths.logfile("web"))
        if e["message"].startswith("configuration error")
    ]
    assert len(entries) == 1 and entries[0]["key"] == "projects.DEMO.participant_id", entries
    assert "Traceback" not in web_site.cfg.paths.logfile("web").read_text()
