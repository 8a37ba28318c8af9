"""The Resend from PACS button in Chromium against `fiona web`: an assigned study whose images
were cleared shows it, a click queues the retrieve (active-scans/ entry for moveFromScanner)
and the page says so. The retrieve itself is tested against Orthanc in
tests/integration/test_pacs_qr.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.assign_seed import PROJECTS, seed
from support.web import WebSite, login, screenshot, serve_site, stop_web, web_config

pytestmark = pytest.mark.slow

PACS = {"sources": {"clinical": {"host": "127.0.0.1", "port": 11112, "called_aetitle": "PACS"}}}


@pytest.fixture
def site(tmp_path: Path) -> Iterator[WebSite]:
    (tmp_path / "projects.yml").write_text(PROJECTS)
    config = web_config(
        tmp_path,
        pacs=PACS,
        destinations={"research-folder": {"type": "folder", "path": str(tmp_path / "outbox")}},
    )
    web = serve_site(config)
    try:
        yield web
    finally:
        stop_web(web.proc)


def test_resend_from_pacs_button(site: WebSite, page: Any) -> None:
    (uid,) = seed(site.cfg, 1, {0: "DEMO"})
    login(page, site.url)
    page.goto(site.url + "assign/")
    page.click("tr.study a")
    button = page.locator("button.resend")
    assert button.inner_text() == "Resend from PACS"
    screenshot(page, "assign-resend-from-pacs")
    button.click()
    page.wait_for_load_state()
    assert "Resend from PACS queued" in page.inner_text("main")
    entry = json.loads((site.cfg.paths.active_scans / uid).read_text())
    assert entry["resend"] is True and entry["by"] == "admin"
