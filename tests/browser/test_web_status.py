"""Status page in Chromium: services up/down, cron freshness, queues, disk, and the week's plots."""

from __future__ import annotations

import os
import re
import time
from typing import Any

import pytest

from fionagw.ops.jobstate import record_run
from fionagw.tracking.factory import open_tracker
from fionagw.tracking.records import COMPLETE_ERROR, COMPLETE_OK
from support.site import pydicom_test_file, run_bin, storescu, wait_for
from support.web import WebSite, screenshot

pytestmark = pytest.mark.slow


def _service_state(page: Any, name: str) -> str:
    return page.locator(f'#services tr[data-service="{name}"] td').nth(1).inner_text()


def _today(offset_days: int = 0) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(time.time() - offset_days * 86400))


def test_status_page_shows_services_jobs_and_plots(web_site: WebSite, admin_page: Any) -> None:
    cfg, config, page = web_site.cfg, web_site.config, admin_page
    r = run_bin("storectl", "start", config=config)
    assert r.returncode == 0, r.stdout + r.stderr
    try:
        files = [pydicom_test_file("CT_small.dcm"), pydicom_test_file("MR_small.dcm")]
        sent = storescu(cfg.dicom_port, *files)
        assert sent.returncode == 0, sent.stderr
        wait_for(
            lambda: sum(len(os.listdir(d)) for d in cfg.paths.archive.iterdir()) == 2,
            30,
            "2 archived files",
        )

        tracker = open_tracker(cfg)
        for i, (days, complete) in enumerate(
            [(0, COMPLETE_OK), (0, COMPLETE_OK), (2, COMPLETE_ERROR), (9, COMPLETE_OK)]
        ):  # the last one is older than the week
            t = tracker.request_transfer(f"1.2.3.{i}", "DEMO", f"DEMO00{i}", "baseline")
            assert t is not None
            t.transfer_date, t.transfers_complete = _today(days), complete
            tracker.update_transfer(t)
        tracker.request_transfer("1.2.3.9", "DEMO", "DEMO009", "baseline")  # pending, not sent yet
        tracker.close()
        record_run(cfg, "detectStudyArrival", True, 0.2, "1 study complete")
        record_run(
            cfg, "clearOldFiles", False, 3.0, "tracker unreadable", started=time.time() - 5 * 3600
        )

        page.goto(web_site.url + "status/")
        assert _service_state(page, "storectl") == "up"
        assert _service_state(page, "processSingleFile") == "down"
        assert page.inner_text("p.error[role=alert]") == "Down: processSingleFile"
        job = page.locator('#jobs tr[data-job="detectStudyArrival"] td').all_inner_texts()
        assert job[3] == "ok" and job[5].strip() == "1 study complete" and job[6] == "fresh"
        job = page.locator('#jobs tr[data-job="clearOldFiles"] td').all_inner_texts()
        assert job[3] == "FAILED" and job[6] == "stale"  # hourly job, last run 5 h ago
        assert page.locator('#jobs tr[data-job="heartbeat"] td').all_inner_texts()[6] == "never"
        assert "incoming list" in page.inner_text("#queues")
        assert re.search(r"free of .* % free", page.inner_text("#disk"))

        images = page.locator("#plot-images svg title").first.inner_html()
        assert images == "Images received per hour, last 7 days (2 in all)"
        transfers = page.locator("#plot-transfers svg title").first.inner_html()
        assert transfers == "Transfers per day, last 7 days (2 sent, 1 failed)"
        assert (
            page.locator("#plot-images svg rect[fill='#3b7dd8']").count() == 1 + 1
        )  # 1 bar + legend
        screenshot(page, "status")

        r = run_bin("storectl", "stop", config=config)
        assert r.returncode == 0, r.stdout + r.stderr
        page.reload()
        # an operator's stop is no failure: shown as such, and not in the "Down" alert
        assert _service_state(page, "storectl") == "stopped by operator"
        assert page.inner_text("p.error[role=alert]") == "Down: processSingleFile"
        screenshot(page, "status-down")
    finally:
        run_bin("storectl", "stop", config=config)


def test_transfer_counts_and_integer_ticks(web_site: WebSite, admin_page: Any) -> None:
    """A request that fails for good (its study is gone) is tried once however often cron runs,
    and the Status page counts it once (not its two files); a week with one transfer a day at
    most gets the y axis 0, 1 (it read 1 / 0 / 0)."""
    cfg, config, page = web_site.cfg, web_site.config, admin_page
    tracker = open_tracker(cfg)
    t = tracker.request_transfer("1.2.3.1", "DEMO", "DEMO001", "baseline")
    assert t is not None
    t.transfer_date, t.transfers_complete = _today(), COMPLETE_OK
    tracker.update_transfer(t)
    assert tracker.request_transfer("1.2.3.77", "DEMO", "DEMO077", "baseline") is not None
    tracker.close()
    for _ in range(3):  # three cron minutes
        for program in ("createTransferRequest", "anonymizeAndSend"):
            r = run_bin(program, config=config)
            assert r.returncode == 0, r.stdout + r.stderr
    assert len(list(cfg.paths.transfers_fail.iterdir())) == 2  # FIONA's pair of files

    page.goto(web_site.url + "status/")
    counts = {
        row.get_attribute("data-count"): row.locator("td").all_inner_texts()
        for row in page.locator("#transfer-counts tr").all()
    }
    assert counts["failed-requests"][1:] == ["1", "study_deleted 1"]
    assert counts["attempts"][1:] == ["1", "failed 1"]
    assert counts["send-failures"][1:] == ["1", "study_deleted 1"]
    queue = page.locator("#queues tr", has_text="failed transfers").locator("td")
    assert queue.nth(1).inner_text() == "1"
    ticks = page.locator("#plot-transfers svg text.tick").all_text_contents()
    assert ticks == ["0", "1"], ticks
    images = page.locator("#plot-images svg text.tick").all_text_contents()
    assert len(set(images)) == len(images) and all(x.isdigit() for x in images), images
    screenshot(page, "status-transfer-counts")

    r = run_bin("fiona", "status", config=config)
    assert "requests failed 1 (study_deleted 1); cancelled 0" in r.stdout, r.stdout
    assert "attempts 1 (failed 1)" in r.stdout and "send failures 1 (study_deleted 1)" in r.stdout
