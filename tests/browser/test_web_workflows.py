"""Workflows page in Chromium: a data manager of DEMO picks a study and a stream, launches,
runOneJob runs it, the page shows it done, its log and its results ZIP; a queued job is
cancelled from the page; another project's user is refused; the admin sees the queue and the
resource settings."""

from __future__ import annotations

import io
import json
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fionagw.arrival import incoming
from fionagw.config import load_config
from support.site import run_bin
from support.synth import standard_mr_series, write_study
from support.transfer_site import ingest
from support.web import WebSite, login, screenshot, serve_site, stop_web, web_config

pytestmark = pytest.mark.slow

COUNT = r"""
import json, pathlib, sys
files = [p for p in pathlib.Path(sys.argv[1]).rglob("*") if p.is_file()]
print(f"counted {len(files)} images")
(pathlib.Path(sys.argv[2]) / "output.json").write_text(json.dumps({"images": len(files)}))
"""


@pytest.fixture
def site(tmp_path: Path) -> Iterator[WebSite]:
    script = tmp_path / "count.py"
    script.write_text(COUNT)
    stream = {
        "name": "count",
        "description": "counts images",
        "trigger": {"AETitleCalled": "^NEVER$", "project": "DEMO"},
        "trigger-study": [
            {"type": "exec", "cmd": [sys.executable, str(script), "@PATH@", "@WorkflowsFolder@"]}
        ],
    }
    config = web_config(tmp_path, Streams=[stream], workflows={"max_concurrent": 3})
    cfg = load_config(config)
    cfg.paths.create()
    files = write_study(
        tmp_path / "in", vendor="SIEMENS", series=standard_mr_series("SIEMENS", 2)[:2], seed=3
    )
    study = ingest(cfg, files)
    incoming.upsert(cfg, study, incoming.study_summary(cfg, study, "PACS", "FIONA", "127.0.0.1"))
    web = serve_site(config)
    web.add_user("dm", "dm-password-123", [("assign", "DEMO")])
    web.add_user("other", "other-password-123", [("assign", "OTHER")])
    try:
        yield web
    finally:
        stop_web(web.proc)


def _launch(page: Any, url: str) -> str:
    page.goto(url + "workflows/?project=DEMO")
    page.check("#studies input[name=study]")
    page.select_option("select[name=stream]", "count")
    page.click("#launch button[type=submit]")
    page.wait_for_load_state()
    return page.inner_text("main")


def test_launch_watch_log_results_cancel_retry_and_roles(
    site: WebSite, page: Any, browser: Any
) -> None:
    login(page, site.url, "dm", "dm-password-123")
    assert "Queued job(s) 1." in _launch(page, site.url)
    assert page.get_attribute("#jobs tr[data-job='1']", "data-status") == "queued"
    r = run_bin("runOneJob", config=site.config, timeout=120)
    assert r.returncode == 0 and "1 done" in r.stdout, r
    page.reload()
    assert page.get_attribute("#jobs tr[data-job='1']", "data-status") == "done"
    screenshot(page, "workflows")
    n = sum(1 for p in site.cfg.paths.raw.glob("*/*/*") if p.is_symlink())
    with page.expect_download() as dl:
        page.click("#jobs tr[data-job='1'] a:text('results')")
    with zipfile.ZipFile(io.BytesIO(Path(dl.value.path()).read_bytes())) as z:
        assert json.loads(z.read("output.json")) == {"images": n}
    page.click("#jobs tr[data-job='1'] a:text('log')")
    assert f"counted {n} images" in page.inner_text("#job-log")
    assert page.query_selector("#queue") is None  # the queue is for admins
    # a second launch, cancelled while queued, then retried, from the page
    assert "Queued job(s) 2." in _launch(page, site.url)
    page.click("#jobs tr[data-job='2'] button:text('Cancel')")
    page.wait_for_load_state()
    assert page.get_attribute("#jobs tr[data-job='2']", "data-status") == "cancelled"
    page.click("#jobs tr[data-job='2'] button:text('Retry')")
    page.wait_for_load_state()
    assert page.get_attribute("#jobs tr[data-job='2']", "data-status") == "queued"
    # another project's user is refused; the admin sees the queue and the resources
    other = browser.new_context().new_page()
    login(other, site.url, "other", "other-password-123")
    response = other.goto(site.url + "workflows/?project=DEMO")
    assert response.status == 403
    assert other.goto(site.url + "workflows/job/1/log").status == 403
    admin = browser.new_context().new_page()
    login(admin, site.url)
    admin.goto(site.url + "workflows/?project=DEMO")
    assert admin.get_attribute("#queue tr[data-job='2']", "data-status") == "queued"
    assert "max_concurrent" in admin.inner_text("#resources")
    assert "3" in admin.inner_text("#resources")
