"""The Studies page in Chromium against `fiona web`: a JPEG-baseline study assigned to a project
that gates on lossless is held by QC; the list shows it (stable, QC failed, held); a user with
only the assign role sees no bypass form and a forged bypass is refused (403); the project's
admin bypasses with a reason; the report opens as HTML, and its PDF is downloaded and rendered
by poppler's pdftoppm. Screenshots go to tests/artifacts/."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from fionagw.arrival import incoming
from fionagw.qc.run import check_study
from fionagw.routing.requests import create_transfer_requests
from fionagw.tracking.factory import open_tracker
from fionagw.transfers.anonymize_and_send import AnonymizeAndSend
from fionagw.web.assign_queries import ensure_recorded
from support.synth import standard_mr_series, write_study
from support.transfer_site import ingest
from support.web import login, screenshot, serve_site, stop_web, web_config

pytestmark = pytest.mark.slow

PROJECTS = """\
projects:
  DEMO:
    title: Demo project
    participant_id: '^DEMO[0-9]{3}$'
    events: [baseline]
    qc: {gates: [lossless]}
  OTHER:
    participant_id: '^OTH[0-9]{4}$'
"""


@pytest.fixture
def held_site(tmp_path: Path):  # type: ignore[no-untyped-def]
    (tmp_path / "projects.yml").write_text(PROJECTS)
    site = serve_site(web_config(tmp_path))
    cfg = site.cfg
    plain = write_study(
        tmp_path / "plain",
        vendor="SIEMENS",
        series=standard_mr_series("SIEMENS", 3)[1:3],
        study_description="Research brain",
        rows=64,
        cols=64,
    )
    files = []
    for f in plain:
        target = tmp_path / "jpeg" / f.relative_to(tmp_path / "plain")
        target.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["dcmcjpeg", "+eb", str(f), str(target)], check=True, capture_output=True)
        files.append(target)
    study = ingest(cfg, files)
    incoming.upsert(cfg, study, incoming.study_summary(cfg, study, "SCANNER", "FIONA", "127.0.0.1"))
    check_study(cfg, study)  # as detectStudyArrival does when the study becomes stable
    tracker = open_tracker(cfg)
    ensure_recorded(cfg, tracker, study)  # as populateIncoming records it
    tracker.request_transfer(study, "DEMO", "DEMO001", "baseline")
    create_transfer_requests(cfg, tracker)
    report = AnonymizeAndSend(cfg, tracker, processes=1).run()
    assert len(report.failed) == 1  # held by QC
    tracker.close()
    site.add_user("ada", "ada-password-1", [("assign", "DEMO")])
    site.add_user("bob", "bob-password-1", [("admin", "DEMO"), ("assign", "DEMO")])
    try:
        yield site, study
    finally:
        stop_web(site.proc)


def test_studies_page_bypass_and_report(held_site, page: Any, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    site, study = held_site
    cfg = site.cfg
    login(page, site.url, "ada", "ada-password-1")
    page.click("nav.tabs a:has-text('Studies')")
    row = page.locator("#studies tr.study")
    assert row.count() == 1
    assert row.locator("td.stable").inner_text() == "yes"
    assert row.locator("td.qc").inner_text() == "failed"
    assert row.locator("td.assigned").inner_text() == "DEMO DEMO001"
    assert row.locator("td.transfer").inner_text() == "held by QC"
    assert "Synthetic" not in page.inner_text("main") and "SYN0001" not in page.inner_text("main")
    screenshot(page, "studies-list")
    row.locator("a.button").click()
    demo = page.locator("section.qc-evaluation[data-project=DEMO]")
    assert demo.locator("tr.check-lossless td.status").inner_text() == "fail"
    assert "JPEG Baseline" in demo.locator("tr.check-lossless").inner_text()
    assert demo.locator("form.bypass-form").count() == 0  # not her role
    study_url = page.url
    # a forged bypass (the form she is not shown) is refused
    status = page.evaluate(
        """async (url) => {
            const token = document.querySelector('input[name=csrf_token]').value;
            const body = new URLSearchParams({csrf_token: token, project: 'DEMO', reason: 'x'});
            const r = await fetch(url + '/bypass', {method: 'POST', body});
            return r.status; }""",
        study_url,
    )
    assert status == 403
    assert "qc-bypass" not in (
        cfg.paths.logfile("audit").read_text() if cfg.paths.logfile("audit").exists() else ""
    )

    page.context.clear_cookies()
    login(page, site.url, "bob", "bob-password-1")
    page.goto(study_url)
    form = page.locator("section.qc-evaluation[data-project=DEMO] form.bypass-form")
    form.locator("input[name=reason]").fill("archive copy, the original is gone")
    screenshot(page, "studies-qc-result")
    form.locator("button.bypass").click()
    assert "Bypassed lossless for DEMO; 1 held request(s) queued again" in page.inner_text(".flash")
    assert page.inner_text("#qc-state") == "bypassed"
    assert "bob – archive copy, the original is gone" in page.inner_text("#bypasses")
    assert list(cfg.paths.transfer_requests.glob("*.json"))  # queued again
    screenshot(page, "studies-bypassed")
    # queued again: still pending, so it can be cancelled here (audited, never sent)
    transfer = page.locator("table.assignments tr.assignment")
    assert transfer.locator("td.state .badge").inner_text() == "requested"
    transfer.locator("button.cancel").click()
    assert "Cancelled the transfer to DEMO DEMO001" in page.inner_text(".flash")
    assert page.locator("table.assignments td.state .badge").inner_text() == "cancelled"
    assert not list(cfg.paths.transfer_requests.glob("*.json"))
    audit = [json.loads(x) for x in cfg.paths.logfile("audit").read_text().splitlines()]
    assert [(a["user"], a["action"]) for a in audit] == [("bob", "qc-bypass"), ("bob", "cancel")]

    page.click("#report-html")
    assert "Study report" in page.inner_text("h1")
    assert "archive copy, the original is gone" in page.inner_text("body")
    screenshot(page, "studies-report-html")
    page.go_back()
    with page.expect_download() as info:
        page.click("#report-pdf-download")
    download = info.value
    assert download.suggested_filename == "study-report.pdf"
    pdf = tmp_path / "report.pdf"
    download.save_as(pdf)
    assert pdf.read_bytes().startswith(b"%PDF")
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True)
    assert "Bypasses" in text.stdout and "bob" in text.stdout and "lossless" in text.stdout
    out = tmp_path / "page"
    subprocess.run(
        ["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", str(pdf), str(out)], check=True
    )
    [png] = list(tmp_path.glob("page*.png"))
    assert png.stat().st_size > 5000
    screenshot(page, "studies-study")  # the page the PDF was taken from
    shutil.copy(png, Path(screenshot(page, "studies-report-pdf")))  # the rendered PDF page
