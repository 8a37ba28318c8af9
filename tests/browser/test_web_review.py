"""Review in Chromium against `fiona web`: a project's tag inventory (as anonymizeAndSend records
it with record_files), searchable, exported as CSV; only for the review role."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pydicom
import pytest

from fionagw.transfers.review_inventory import record_files
from support import synth
from support.web import WebSite, login, screenshot

pytestmark = pytest.mark.slow


def deidentified_like(tmp_path: Path, participant: str) -> list[Path]:
    """Files as a project would receive them: participant ID as name and ID, a private tag left."""
    files = synth.standard_mr_study(
        tmp_path / participant,
        vendor="SIEMENS",
        n_per_series=2,
        rows=32,
        cols=32,
        patient_id=participant,
        patient_name=participant,
        accession="",
    )
    for f in files:
        ds = pydicom.dcmread(f)
        ds.PatientIdentityRemoved = "YES"
        ds.save_as(f)
    return files


def test_review_lists_tags_values_and_exports_csv(
    web_site: WebSite, page: Any, tmp_path: Path
) -> None:
    cfg = web_site.cfg
    files = deidentified_like(tmp_path, "DEMO001") + deidentified_like(tmp_path, "DEMO002")
    record_files(cfg.paths.review_inventory("DEMO"), files)
    record_files(cfg.paths.review_inventory("OTHER"), deidentified_like(tmp_path, "OTH0001")[:3])
    web_site.add_user("rita", "reviewer-password", [("review", "DEMO")])

    login(page, web_site.url, "rita", "reviewer-password")
    assert page.locator("nav.tabs a", has_text="Review").count() == 1
    page.goto(web_site.url + "review/")
    # her only project is chosen for her
    assert page.locator("select[name=project]").input_value() == "DEMO"
    assert f"DEMO: {len(files)} files recorded" in page.inner_text("#review-summary")
    name_row = page.locator("tr.tag-row", has_text="PatientName")
    assert name_row.locator("td.path").inner_text() == "(0010,0010)"
    values = name_row.locator("td.values").inner_text()
    half = len(files) // 2
    assert f"DEMO001 ×{half}" in values and f"DEMO002 ×{half}" in values
    assert page.locator("tr.tag-row", has_text='(0029,"SIEMENS CSA HEADER",10)').count() == 1
    screenshot(page, "review")

    page.fill("input[name=q]", "patient")
    page.click("button:has-text('Show')")
    paths = page.locator("tr.tag-row td.path").all_inner_texts()
    assert "(0010,0010)" in paths and "(0012,0062)" in paths and "(0008,0060)" not in paths
    assert "patient" not in page.url  # the search stays out of the URL
    screenshot(page, "review-search")
    with page.expect_download() as info:
        page.click("#csv-link")
    download = info.value
    assert download.suggested_filename == "review-DEMO.csv"
    rows = list(csv.reader(io.StringIO(Path(download.path()).read_text())))
    assert rows[0] == ["tag", "keyword", "vr", "value", "count", "files_with_tag"]
    assert ["(0010,0010)", "PatientName", "PN", "DEMO001", str(half), str(len(files))] in rows
    assert {r[0] for r in rows[1:]} == set(paths)  # the CSV holds what the search shows

    # not her project: refused, and not offered
    assert "OTHER" not in page.locator("select[name=project]").inner_text()
    r = page.goto(web_site.url + "review/?project=OTHER")
    assert r is not None and r.status == 403
    r = page.goto(web_site.url + "review/csv?project=OTHER")
    assert r is not None and r.status == 403


def test_review_is_hidden_without_the_role_and_empty_projects_say_so(
    web_site: WebSite, page: Any
) -> None:
    web_site.add_user("ann", "assigner-password", [("assign", "DEMO")])
    login(page, web_site.url, "ann", "assigner-password")
    assert page.locator("nav.tabs a", has_text="Review").count() == 0
    r = page.goto(web_site.url + "review/?project=DEMO")
    assert r is not None and r.status == 403
    page.context.clear_cookies()
    login(page, web_site.url)  # the admin may review every project
    page.goto(web_site.url + "review/?project=OTHER")
    assert "Nothing has been sent for OTHER yet" in page.inner_text("#review-summary")
    screenshot(page, "review-empty")
