"""Assign in Chromium against `fiona web`: a study sent by storescu is listed, assigned (with the
inline participant-ID error on the way), requested in the tracker, queued by createTransferRequest
and sent (or failed) by anonymizeAndSend; a release-check failure shows its tag paths and is
retried, reassigned or cancelled; coupling lists; who sees what; the list at 900 px; 1,000
studies in < 1 s."""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
import requests

from fionagw.config import SiteConfig
from fionagw.ops.log import phi_hash
from fionagw.tracking.factory import open_tracker
from fionagw.tracking.records import COMPLETE_ERROR, COMPLETE_OK
from fionagw.web.assign_queries import ensure_recorded
from support import synth
from support.assign_seed import PROJECTS, seed
from support.site import run_bin, storescu, wait_for
from support.web import ARTIFACTS, WebSite, login, screenshot, serve_site, stop_web, web_config

pytestmark = pytest.mark.slow

PATIENT = {"patient_id": "PAT-WEB-0042", "patient_name": "Hansen^Ingrid"}


@pytest.fixture
def site(tmp_path: Path) -> Iterator[WebSite]:
    """`fiona web` plus the receiver and processSingleFile of one site (quiet period 1 s)."""
    (tmp_path / "projects.yml").write_text(PROJECTS)
    config = web_config(
        tmp_path,
        arrival={"quiet_seconds": 1},
        destinations={"research-folder": {"type": "folder", "path": str(tmp_path / "outbox")}},
    )
    started = []
    try:
        for program in ("processSingleFile", "storectl"):
            r = run_bin(program, "start", config=config)
            assert r.returncode == 0, r.stderr
            started.append(program)
        web = serve_site(config)
        try:
            yield web
        finally:
            stop_web(web.proc)
    finally:
        for program in reversed(started):
            run_bin(program, "stop", config=config)


def arrive(cfg: SiteConfig, study_dir: Path, **study: Any) -> str:
    """storescu a synthetic study; wait until processSingleFile filed it and it is quiet; run
    detectStudyArrival (as cron would); return the StudyInstanceUID."""
    files = synth.standard_mr_study(study_dir, n_per_series=2, rows=64, cols=64, **study)
    n_files = len(files)
    uid = str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
    r = storescu(cfg.dicom_port, study_dir, aet="MRSCANNER")
    assert r.returncode == 0, r.stderr
    study = cfg.paths.raw_study_dir(uid)
    wait_for(
        lambda: sum(1 for p in study.glob("*/*") if p.is_symlink()) == n_files,
        what="images filed in raw/",
    )
    wait_for(
        lambda: all(time.time() - p.stat().st_mtime > 1.3 for p in cfg.paths.arrived.iterdir()),
        what="study quiet",
    )
    r = run_bin("detectStudyArrival", config=cfg.config_file)
    assert r.returncode == 0, r.stderr
    return uid


def no_phi(page: Any, *texts: str) -> None:
    html = page.content()
    for text in texts:
        assert text not in html and text not in page.url


def test_assign_a_study_storescu_just_sent(site: WebSite, page: Any, tmp_path: Path) -> None:
    cfg = site.cfg
    uid = arrive(
        cfg, tmp_path / "s1", accession="ACC-WEB-1", study_description="Brain research", **PATIENT
    )
    login(page, site.url)
    page.goto(site.url + "assign/")
    row = page.locator("tr.study", has_text="ACC-WEB-1")
    assert row.count() == 1
    assert "Brain research" in row.inner_text() and "unassigned" in row.inner_text()
    assert "MRSCANNER → FIONA" in row.inner_text()
    row.locator("summary").click()  # the series with image counts and ClassifyType
    series = row.locator("ol.series-list li")
    assert series.count() == 7
    assert (
        series.nth(1).inner_text()
        == "t1_mprage_sag_p2_iso (2 images) SIEMENS, MR, original, sagittal, T1"
    )
    screenshot(page, "assign-list")
    no_phi(page, PATIENT["patient_id"], "Hansen", uid)

    row.locator("a", has_text="Open").click()
    page.wait_for_load_state()
    assert re.search(r"/assign/study/[0-9a-f]{24}$", page.url) and uid not in page.url
    assert page.locator("table.series-table tbody tr").count() == 7
    screenshot(page, "assign-study")
    page.select_option("#project-select", "DEMO")
    page.click("button:has-text('Next')")
    page.fill("input[name=new_participant]", "DEMO12")
    page.select_option("select[name=event]", "baseline")
    page.click("button:has-text('Assign')")
    error = page.locator("#participant-error")
    assert error.is_visible()
    assert (
        "'DEMO12' is not a valid participant ID for DEMO: it must match ^DEMO[0-9]{3}$"
        in error.inner_text()
    )
    assert page.get_attribute("input[name=new_participant]", "aria-invalid") == "true"
    screenshot(page, "assign-invalid-participant")
    assert not open_tracker(cfg).transfers(study_uid=uid)

    page.fill("input[name=new_participant]", "DEMO012")
    page.click("button:has-text('Assign')")
    assert "as participant DEMO012" in page.inner_text("main").replace("\n", " ")
    screenshot(page, "assign-confirm")
    assert not open_tracker(cfg).transfers(study_uid=uid)  # nothing before the confirmation
    page.click("#confirm-assign")
    page.wait_for_load_state()
    assert "Requested: transfer to DEMO as DEMO012 for event baseline" in page.inner_text("main")
    assert page.locator("tr.assignment .badge").inner_text() == "requested"
    screenshot(page, "assign-requested")

    (t,) = open_tracker(cfg).transfers(study_uid=uid)
    assert (t.transfer_project_name, t.transfer_name, t.transfer_event_name) == (
        "DEMO",
        "DEMO012",
        "baseline",
    )
    assert t.transfer_requested_date and not t.transfer_date
    tracked = open_tracker(cfg).get_studies([uid])[
        uid
    ]  # recorded at once, as populateIncoming would
    assert tracked.study.study_accession_number == "ACC-WEB-1"
    assert (
        tracked.study.study_patient_id == phi_hash(PATIENT["patient_id"])
        and len(tracked.series) == 7
    )

    r = run_bin("createTransferRequest", config=site.config)
    assert r.returncode == 0, r.stderr
    assert [p.name for p in cfg.paths.transfer_requests.glob("*.json")] == [
        f"{uid}_DEMO_DEMO012_1.json"
    ]
    r = run_bin("anonymizeAndSend", config=site.config, timeout=300)
    assert r.returncode == 0, r.stderr
    (t,) = open_tracker(cfg).transfers(study_uid=uid)
    assert t.transfers_complete == COMPLETE_OK and t.transfer_date
    page.reload()
    assert page.locator("tr.assignment .badge").inner_text() == "sent"
    assert t.transfer_date in page.locator("tr.assignment").inner_text()
    screenshot(page, "assign-sent")
    page.goto(site.url + "assign/")
    assert (
        "sent: DEMO DEMO012 (baseline)"
        in page.locator("tr.study", has_text="ACC-WEB-1").inner_text()
    )

    # a second study whose files are gone before anonymizeAndSend runs: failed, with the reason
    uid2 = arrive(
        cfg,
        tmp_path / "s2",
        accession="ACC-WEB-2",
        study_description="Lost study",
        seed=5,
        **PATIENT,
    )
    page.goto(site.url + "assign/")
    page.locator("tr.study", has_text="ACC-WEB-2").locator("a", has_text="Open").click()
    page.select_option("#project-select", "DEMO")
    page.click("button:has-text('Next')")
    page.select_option("select[name=participant]", "DEMO012")  # now an existing participant
    page.select_option("select[name=event]", "followup")
    page.click("button:has-text('Assign')")
    page.click("#confirm-assign")
    page.wait_for_load_state()
    assert run_bin("createTransferRequest", config=site.config).returncode == 0
    shutil.rmtree(cfg.paths.raw_study_dir(uid2))
    assert run_bin("anonymizeAndSend", config=site.config, timeout=300).returncode == 0
    (t2,) = open_tracker(cfg).transfers(study_uid=uid2)
    assert t2.transfers_complete == COMPLETE_ERROR
    page.reload()
    row = page.locator("tr.assignment")
    assert row.locator(".badge").inner_text() == "failed"
    assert (
        "Study has been deleted from Fiona. Resend from PACS!"
        in row.locator(".reason").inner_text()
    )
    screenshot(page, "assign-failed")
    no_phi(page, PATIENT["patient_id"], "Hansen", uid2)


# a project that keeps the institution's name: the release check stops every study of it
LEAKY = """\
  LEAKY:
    title: Keeps the institution
    participant_id: '^L[0-9]{3}$'
    destination: research-folder
    deid: {mode: keyed, options: [retain_institution_identity]}
"""


def cron_minute(site: WebSite) -> None:
    for program in ("createTransferRequest", "anonymizeAndSend"):
        r = run_bin(program, config=site.config, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr


def attempted(cfg: SiteConfig, name: str) -> list[str]:
    """The outcomes of anonymizeAndSend's attempts at request ``name``, oldest first."""
    events = [json.loads(p.read_text()) for p in sorted(cfg.paths.events.glob("*-transfer-*"))]
    return [e["outcome"] for e in events if e.get("request") == name]


def test_a_release_check_failure_is_shown_retried_reassigned_and_cancelled(
    site: WebSite, page: Any, tmp_path: Path
) -> None:
    cfg = site.cfg
    (tmp_path / "projects.yml").write_text(PROJECTS + LEAKY)
    uid = arrive(cfg, tmp_path / "s1", accession="ACC-LEAK-1", study_description="Leaky", **PATIENT)
    tracker = open_tracker(cfg)
    ensure_recorded(cfg, tracker, uid)
    for participant in ("L001", "L002"):
        assert tracker.request_transfer(uid, "LEAKY", participant) is not None
    tracker.close()
    first, second = f"{uid}_LEAKY_L001_1.json", f"{uid}_LEAKY_L002_2.json"
    cron_minute(site)
    assert attempted(cfg, first) == ["failed"] and attempted(cfg, second) == ["failed"]
    cron_minute(site)  # a permanent failure is not tried again by itself
    assert attempted(cfg, first) == ["failed"]
    assert not list(cfg.paths.transfer_requests.glob("*.json"))

    login(page, site.url)
    page.goto(site.url + "assign/")
    row = page.locator("tr.study", has_text="ACC-LEAK-1")
    assert "failed: LEAKY L001" in row.inner_text()
    row.locator("a", has_text="Open").click()
    page.wait_for_load_state()
    detail = page.locator('tr.failure-detail[data-instance="1"]')
    text = detail.inner_text()
    assert "release check found identifying values" in text
    # the tag path and kind (the kept name holds the operator's name part "Synthetic") ...
    assert re.search(
        r"\(0008,0080\) InstitutionName: (institution|person name), in \d+ files", text
    )
    assert "not retried by itself" in text
    no_phi(page, "Synthetic Hospital", PATIENT["patient_id"], "Hansen", uid)  # ... never a value
    screenshot(page, "assign-release-check-failure")
    study_url = page.url

    # CSRF and roles: a POST without the token, and a user who may see but not assign
    r = page.request.post(study_url + "/transfer/1/retry", form={})
    assert r.status == 400
    site.add_user("rita", "rita-password-1", [("review", "LEAKY")])
    other = page.context.browser.new_context(viewport={"width": 1366, "height": 900})
    try:
        rita = other.new_page()
        login(rita, site.url, "rita", "rita-password-1")
        rita.goto(study_url)
        assert rita.locator("tr.failure-detail button").count() == 0  # no buttons for her
        token = rita.locator("meta[name=csrf-token]").get_attribute("content") or ""
        r = rita.request.post(
            study_url + "/transfer/1/retry", form={}, headers={"X-CSRF-Token": token}
        )
        assert r.status == 403 and "assign role on project LEAKY" in r.text()
    finally:
        other.close()
    assert not (cfg.paths.transfer_requests / first).exists()

    # retry: back in the queue, and the next anonymizeAndSend run attempts it
    detail.locator("button.retry").click()
    page.wait_for_load_state()
    assert "Queued again: LEAKY L001" in page.inner_text("p.flash.ok")
    assert (cfg.paths.transfer_requests / first).exists()
    assert page.locator('tr.assignment[data-instance="1"] .badge').inner_text() == "requested"
    assert run_bin("anonymizeAndSend", config=site.config, timeout=300).returncode == 0
    assert attempted(cfg, first) == ["failed", "failed"]

    # reassign: the same validation as a first assignment, then queued at once
    page.reload()
    detail.locator("summary", has_text="Reassign").click()
    form = detail.locator("form.reassign-form")
    form.locator("select[name=project]").select_option("DEMO")
    form.locator("input[name=new_participant]").fill("DEMO12")
    form.locator("input[name=event]").fill("baseline")
    form.locator("button", has_text="Reassign and queue").click()
    page.wait_for_load_state()
    error = page.locator("p.reassign-error")
    assert "'DEMO12' is not a valid participant ID for DEMO" in error.inner_text()
    screenshot(page, "assign-reassign-invalid")
    assert len(open_tracker(cfg).transfers(study_uid=uid)) == 2  # nothing was changed
    form = page.locator('tr.failure-detail[data-instance="1"] form.reassign-form')
    form.locator("input[name=new_participant]").fill("DEMO012")
    form.locator("button", has_text="Reassign and queue").click()
    page.wait_for_load_state()
    assert "LEAKY L001 cancelled, DEMO DEMO012 (baseline) queued" in page.inner_text("p.flash.ok")
    assert [p.name for p in cfg.paths.transfer_requests.glob("*.json")] == [
        f"{uid}_DEMO_DEMO012_3.json"
    ]
    assert page.locator('tr.assignment[data-instance="1"] .badge').inner_text() == "cancelled"
    assert run_bin("anonymizeAndSend", config=site.config, timeout=300).returncode == 0
    page.reload()
    assert page.locator('tr.assignment[data-instance="3"] .badge').inner_text() == "sent"

    # cancel: out of the queue for good
    page.locator('tr.failure-detail[data-instance="2"] button.cancel').click()
    page.wait_for_load_state()
    assert "Cancelled: LEAKY L002" in page.inner_text("p.flash.ok")
    assert page.locator('tr.assignment[data-instance="2"] .badge').inner_text() == "cancelled"
    cron_minute(site)
    assert (
        attempted(cfg, second) == ["failed"] and not (cfg.paths.transfer_requests / second).exists()
    )
    screenshot(page, "assign-after-actions")

    lines = [json.loads(x) for x in cfg.paths.logfile("audit").read_text().splitlines()]
    assert [(e["user"], e["action"], e["request"]) for e in lines] == [
        ("admin", "retry", first),
        ("admin", "reassign", first),
        ("admin", "cancel", second),
    ]
    assert lines[1]["to_project"] == "DEMO" and lines[1]["to_participant"] == "DEMO012"
    assert all(e["time"] and e["study_uid"] == uid for e in lines)


def test_the_list_at_900_px_keeps_every_column_readable(web_site: WebSite, page: Any) -> None:
    """At 900 px the table scrolls sideways inside its container rather than squeezing a column
    to a character a line; an accession number stays on one line."""
    seed(web_site.cfg, 6, {0: "DEMO", 1: "OTHER"})
    incoming = web_site.cfg.paths.incoming_list
    longest = "WWW-2025-0012345"  # an AccessionNumber (SH) has at most 16 characters
    incoming.write_text(incoming.read_text().replace("SEED00003", longest))
    page.set_viewport_size({"width": 900, "height": 800})
    login(page, web_site.url)
    page.goto(web_site.url + "assign/")
    assert page.locator("tr.study").count() == 6
    widths = page.locator("tr.study td").evaluate_all(
        "tds => tds.map(td => td.getBoundingClientRect().width)"
    )
    char = page.evaluate(
        """() => { const s = document.createElement('span'); s.textContent = '0000000000';
                   document.querySelector('table.studies td').appendChild(s);
                   const w = s.getBoundingClientRect().width / 10; s.remove(); return w; }"""
    )
    assert min(widths) >= 5 * char, (min(widths), char)  # no cell narrower than 5 characters
    lines = page.locator("tr.study td.accession").evaluate_all(
        """tds => tds.map(td => { const r = document.createRange(); r.selectNodeContents(td);
                                  return new Set([...r.getClientRects()].map(b => b.top)).size; })"""
    )
    assert lines == [1] * 6, lines
    cell = page.locator("tr.study td.accession", has_text=longest)
    assert cell.evaluate("td => td.scrollWidth <= td.clientWidth")  # whole, not cut
    scroll = page.locator(".table-scroll").first
    assert scroll.evaluate("e => e.scrollWidth > e.clientWidth")  # it scrolls, it does not squeeze
    assert page.evaluate("document.documentElement.scrollWidth") <= 900  # the page itself does not
    screenshot(page, "assign-list-900px")


def test_coupling_list_upload_shows_every_bad_line(
    site: WebSite, page: Any, tmp_path: Path
) -> None:
    login(page, site.url)
    page.goto(site.url + "assign/")
    page.click("text=Upload a coupling list")
    bad = tmp_path / "coupling.csv"
    bad.write_text(
        "AccessionNumber,ProjectName,subjectid,eventname\r\n"
        "ACC-1,DEMO,DEMO001,baseline\r\nACC-2,DEMO,DEMO-2,baseline\r\nACC-3,OTHER,OTH0003,visit1\r\n"
    )
    page.set_input_files("input[name=file]", str(bad))
    page.click("button:has-text('Upload')")
    errors = page.locator("#coupling-errors li")
    assert errors.count() == 1
    assert errors.inner_text() == (
        "line 3: participant ID 'DEMO-2' does not match project DEMO's pattern ^DEMO[0-9]{3}$"
    )
    assert "nothing was imported" in page.inner_text("#coupling-errors")
    screenshot(page, "assign-coupling-errors")
    assert open_tracker(site.cfg).coupling_entries() == []  # all or nothing

    bad.write_text(bad.read_text().replace("DEMO-2", "DEMO002"))
    page.set_input_files("input[name=file]", str(bad))
    page.click("button:has-text('Upload')")
    assert page.inner_text("#coupling-result") == "Imported 3 entries."
    screenshot(page, "assign-coupling-imported")
    got = sorted(
        (e.cl_accessionnumber, e.cl_projectname, e.cl_subjectid, e.cl_eventname)
        for e in open_tracker(site.cfg).coupling_entries()
    )
    assert got == [
        ("ACC-1", "DEMO", "DEMO001", "baseline"),
        ("ACC-2", "DEMO", "DEMO002", "baseline"),
        ("ACC-3", "OTHER", "OTH0003", "visit1"),
    ]


# --- seeded lists: visibility and speed --------------------------------------------------------


def search(session: requests.Session, base: str, query: str) -> str:
    """Search the Assign list (a POST kept in the session, never in the URL); the list's HTML."""
    token = re.search(
        r'name="csrf_token" value="([^"]+)"', session.get(base + "assign/").text
    ).group(1)  # type: ignore[union-attr]
    r = session.post(base + "assign/", data={"q": query, "csrf_token": token})
    assert r.ok and r.url == base + "assign/"  # no query string
    return r.text


def requests_login(base: str, name: str, password: str) -> requests.Session:
    s = requests.Session()
    html = s.get(base + "login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]
    r = s.post(base + "login", data={"username": name, "password": password, "csrf_token": token})
    assert r.ok and "/login" not in r.url
    return s


def test_a_user_without_the_project_role_does_not_see_its_studies(
    web_site: WebSite, page: Any, tmp_path: Path
) -> None:
    uids = seed(web_site.cfg, 3, {0: "DEMO", 1: "OTHER"})
    web_site.add_user("dora", "dora-password-1", [("assign", "DEMO")])
    login(page, web_site.url, "dora", "dora-password-1")
    page.goto(web_site.url + "assign/")
    shown = page.locator("tr.study").all_inner_texts()
    assert len(shown) == 2
    assert any("SEED00000" in t and "requested: DEMO DEMO001" in t for t in shown)  # her project
    assert any("SEED00002" in t and "unassigned" in t for t in shown)  # nobody's yet
    assert not any("SEED00001" in t for t in shown)  # OTHER's study
    page.fill("input[name=q]", "SEED00001")
    page.click("button:has-text('Search')")
    assert page.locator("tr.study").count() == 0
    assert "SEED" not in page.url and page.input_value("input[name=q]") == "SEED00001"
    page.click("button:has-text('Clear')")
    assert page.locator("tr.study").count() == 2
    screenshot(page, "assign-list-restricted")

    # the opaque key of OTHER's study (the admin sees it) is no way in for dora
    admin = requests_login(web_site.url, "admin", "admin-password-1")
    (key,) = re.findall(r"/assign/study/([0-9a-f]{24})", search(admin, web_site.url, "SEED00001"))
    r = page.goto(web_site.url + f"assign/study/{key}")
    assert r is not None and r.status == 404
    # nor may she assign an unassigned study to a project where she has no role
    (free_key,) = re.findall(
        r"/assign/study/([0-9a-f]{24})", search(admin, web_site.url, "SEED00002")
    )
    page.goto(web_site.url + "assign/")
    token = page.locator("meta[name=csrf-token]").get_attribute("content")
    r = page.request.post(
        web_site.url + f"assign/study/{free_key}/assign",
        form={"project": "OTHER", "new_participant": "OTH0009", "event": "visit1"},
        headers={"X-CSRF-Token": token or ""},
    )
    assert r.status == 400 and "is not one you may assign to" in r.text()
    assert not open_tracker(web_site.cfg).transfers(study_uid=uids[2])
    # her coupling lists may only name her projects
    csv_file = tmp_path / "dora.csv"
    csv_file.write_text("ACC-9,DEMO,DEMO009,baseline\nACC-10,OTHER,OTH0010,visit1\n")
    page.goto(web_site.url + "assign/coupling")
    page.set_input_files("input[name=file]", str(csv_file))
    page.click("button:has-text('Upload')")
    assert page.locator("#coupling-errors li").all_inner_texts() == [
        "line 2: you (dora) do not have the assign role on project OTHER"
    ]
    assert open_tracker(web_site.cfg).coupling_entries() == []
    # the study list never carries a UID or accession number in a link
    page.goto(web_site.url + "assign/")
    for href in page.locator("a").evaluate_all("els => els.map(e => e.getAttribute('href'))"):
        assert "SEED" not in (href or "") and "1.2.826" not in (href or "")


def test_thousand_studies_render_in_under_a_second(web_site: WebSite, page: Any) -> None:
    """1,000 studies on the incoming list: the Assign page (first page, a search, and all 1,000
    rows on one page) is rendered by the server in under 1 s, and the page a user opens is
    loaded and drawn by Chromium in under 1 s. Best of three: the test machine is shared."""
    seed(web_site.cfg, 1000, {i: "DEMO" for i in range(0, 1000, 3)})
    session = requests_login(web_site.url, "admin", "admin-password-1")
    session.get(web_site.url + "assign/")  # warm up (imports, templates)
    server = {}
    for label, query, per in (
        ("first page", "", ""),
        ("search", "MOD3 seeded", ""),
        ("all 1000 rows", "", "1000"),
    ):
        search(session, web_site.url, query)
        best = 99.0
        for _ in range(3):
            start = time.perf_counter()
            r = session.get(web_site.url + "assign/", params={"per": per} if per else {})
            best = min(best, time.perf_counter() - start)
            assert r.status_code == 200
        server[label] = round(best, 3)
        if label == "search":
            assert (
                "Studies 1–50 of 143" in r.text and r.text.count('class="study ') == 50
            )  # i % 7 == 3
        if label == "all 1000 rows":
            assert r.text.count('class="study ') == 1000
            assert r.text.index("SEED00999") < r.text.index("SEED00000")  # newest first

    login(page, web_site.url)
    browser = {}
    for label, url in (("first page", "assign/"), ("all 1000 rows", "assign/?per=1000")):
        best = 99.0
        for _ in range(3):
            start = time.perf_counter()
            page.goto(web_site.url + url)
            page.wait_for_load_state("load")
            best = min(best, time.perf_counter() - start)
        browser[label] = round(best, 3)
        if label == "first page":
            assert page.locator("tr.study").count() == 50
            assert "Studies 1–50 of 1000" in page.inner_text("#study-count")
            screenshot(page, "assign-list-1000-first-page")
    assert page.locator("tr.study").count() == 1000
    page.screenshot(
        path=str(ARTIFACTS / "assign-list-1000-all.png")
    )  # first screen: the page is long
    print(
        f"\n1,000 studies, best of 3: server {json.dumps(server)}, Chromium load {json.dumps(browser)}"
    )
    assert max(server.values()) < 1.0, server
    assert browser["first page"] < 1.0, browser
