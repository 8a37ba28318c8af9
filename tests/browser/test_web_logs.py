"""Logs page in Chromium: filter by level, component, time and text; the live stream."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from support.web import WebSite, screenshot
from support.web_logs import ComponentLogs, fill_logs

pytestmark = pytest.mark.slow


@pytest.fixture
def component_logs(web_site: WebSite) -> Iterator[ComponentLogs]:
    logs = fill_logs(web_site.cfg)
    yield logs
    logs.close()


def _rows(page: Any) -> list[list[str]]:
    return [
        [c.strip() for c in row.locator("td").all_inner_texts()]
        for row in page.locator("#log-rows tr").all()
    ]


def _apply(page: Any, **fields: Any) -> None:
    page.click("button[name=reset]")
    for name, value in fields.items():
        if name == "component":
            page.select_option("select[name=component]", value)
        elif name == "min_level":
            page.select_option("select[name=min_level]", value)
        else:
            page.fill(f"input[name={name}]", value)
    page.click("button[name=apply]")
    page.wait_for_load_state()


def test_logs_page_filters(
    web_site: WebSite, admin_page: Any, component_logs: ComponentLogs
) -> None:
    page = admin_page
    page.goto(web_site.url + "logs/")
    rows = _rows(page)
    messages = [r[3] for r in rows]
    for m in (
        "association accepted",
        "slow write",
        "series classified",
        "not DICOM; moved to broken/",
        "study deleted",
        "Traceback (most recent call last):",
    ):
        assert m in messages, messages
    assert rows[0][3] != "study deleted"  # newest first: the 2024 lines are at the bottom
    assert [r[3] for r in rows[-3:]] == [
        "Traceback (most recent call last):",
        "tracker unreadable; nothing deleted",
        "study deleted",
    ]
    assert any("study_uid=1.2.840.1" in r[4] and "calling=MRI1" in r[4] for r in rows)
    screenshot(page, "logs")

    _apply(page, min_level="WARNING")  # a line that is not JSON (a traceback) has no level: kept
    assert sorted(r[3] for r in _rows(page)) == [
        "Traceback (most recent call last):",
        "not DICOM; moved to broken/",
        "slow write",
        "tracker unreadable; nothing deleted",
    ]
    _apply(page, component=["processSingleFile"])
    assert sorted(r[3] for r in _rows(page)) == ["not DICOM; moved to broken/", "series classified"]
    _apply(page, text="BROKEN")  # case-insensitive, also in the details
    assert [r[3] for r in _rows(page)] == ["not DICOM; moved to broken/"]
    _apply(page, since="2024-03-01T09:00", until="2024-03-02T00:00")
    assert [r[3] for r in _rows(page)] == [
        "Traceback (most recent call last):",
        "tracker unreadable; nothing deleted",
    ]
    screenshot(page, "logs-filtered")
    # the search text stays out of the URL (it may hold anything a user types)
    assert page.url == web_site.url + "logs/"
    page.click("button[name=reset]")
    assert len(_rows(page)) == len(rows)


def test_live_stream_shows_a_new_line(
    web_site: WebSite, admin_page: Any, component_logs: ComponentLogs
) -> None:
    page = admin_page
    page.goto(web_site.url + "logs/")
    page.click("#live-toggle")
    page.wait_for_function(
        "document.getElementById('live-state').textContent.startsWith('live stream on')"
    )
    marker = f"new line {uuid.uuid4().hex}"
    component_logs("heartbeat").warning(
        marker, extra={"peer": "FIONA"}
    )  # a component new to the page
    first = page.locator("#log-rows tr").first
    first.locator("td", has_text=marker).wait_for(timeout=10_000)
    cells = first.locator("td").all_inner_texts()
    assert cells[1:4] == ["WARNING", "heartbeat", marker] and cells[4] == "peer=FIONA"
    screenshot(page, "logs-live")
    page.click("#live-toggle")
    assert page.inner_text("#live-state") == "live stream off"
