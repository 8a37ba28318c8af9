"""Delivery you can prove, against Orthanc as the research PACS: a sent study is verified by
C-FIND (stored with the transfer), three of its instances are deleted in Orthanc (REST),
bin/whatIsInIDS7 reports them in the tracker, queues only them again (the project's
resend_missing switch), bin/anonymizeAndSend sends those three and the study is verified again.
Every step is a bin/ program as cron runs it."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from fionagw.reconcile.check import RESEND_KEY
from fionagw.tracking.factory import open_tracker
from support.pacs_gateway import job, pacs_gateway
from support.site import storescu, wait_for
from support.synth import standard_mr_study
from support.web import login, serve_site, stop_web, web_config

pytestmark = pytest.mark.slow

PROJECTS = """
projects:
  ALPHA:
    participant_id: '^ALPHA[0-9]{3}$'
    destination: research-pacs
    resend_missing: true
    deid: {mode: keyed}
  BETA:
    participant_id: '^BETA[0-9]{3}$'
    destination: research-pacs
    deid: {mode: keyed}
"""
PATIENT = {"patient_id": "PID-77", "patient_name": "Berg^Kari", "accession": "ACC-77"}


@pytest.fixture
def gateway(tmp_path: Path, orthanc):  # type: ignore[no-untyped-def]
    yield from _gateway(tmp_path, orthanc)


@pytest.fixture
def scripted_orthanc(orthanc_factory):  # type: ignore[no-untyped-def]
    """An Orthanc whose behaviour a test can change with Lua (POST /tools/execute-script)."""
    return orthanc_factory("SCRIPTED", ExecuteLuaEnabled=True)


@pytest.fixture
def scripted_gateway(tmp_path: Path, scripted_orthanc):  # type: ignore[no-untyped-def]
    yield from _gateway(tmp_path, scripted_orthanc)


def _gateway(tmp_path: Path, orthanc):  # type: ignore[no-untyped-def]
    yield from pacs_gateway(tmp_path, orthanc, PROJECTS, max_attempts=2, make_config=web_config)


def send_study(cfg, tmp_path: Path, coupling: str) -> list[Path]:  # type: ignore[no-untyped-def]
    files = standard_mr_study(tmp_path / "mr", "SIEMENS", n_per_series=3, **PATIENT)
    assert storescu(cfg.dicom_port, *files, aet="SCANNER").returncode == 0
    wait_for(
        lambda: sum(1 for p in cfg.paths.raw.glob("*/*/*") if p.is_symlink()) >= len(files),
        what="every image classified",
    )
    time.sleep(2.5)
    job(cfg, "detectStudyArrival")
    csv = tmp_path / "coupling.csv"
    csv.write_text("AccessionNumber,ProjectName,subjectid,eventname\n" + coupling + "\n")
    job(cfg, "fiona", "coupling-list", "import", str(csv))
    old = time.time() - 120
    for j in cfg.paths.raw.glob("*/*.json"):
        os.utime(j, (old, old))
    job(cfg, "populateIncoming")
    job(cfg, "createTransferRequest")
    assert "1 sent" in job(cfg, "anonymizeAndSend")
    return files


def sent_counts(cfg) -> list[int]:  # type: ignore[no-untyped-def]
    """How many files each C-STORE send had, from the gateway's log."""
    import json

    counts = []
    for line in cfg.paths.logfile("anonymizeAndSend").read_text().splitlines():
        rec = json.loads(line)
        if rec.get("message") == "study sent" and rec.get("destination") == "research-pacs":
            counts.append(rec["files"])
    return counts


def delete_three(orthanc) -> list[str]:  # type: ignore[no-untyped-def]
    by_sop = orthanc.sop_uids()
    gone = sorted(by_sop)[:3]
    for sop in gone:
        r = orthanc._session.delete(f"{orthanc.url}/instances/{by_sop[sop]}", timeout=30)
        r.raise_for_status()
    return gone


def test_sent_study_is_verified_then_reconciled_and_resent(
    gateway, orthanc, tmp_path, page
) -> None:  # type: ignore[no-untyped-def]
    cfg = gateway
    site = serve_site(cfg.config_file)
    try:
        _verified_reconciled_resent(cfg, orthanc, tmp_path, page, site.url)
    finally:
        stop_web(site.proc)


def _verified_reconciled_resent(cfg, orthanc, tmp_path, page, url: str) -> None:  # type: ignore[no-untyped-def]
    files = send_study(cfg, tmp_path, "ACC-77,ALPHA,ALPHA001,")
    n = len(files)
    tracker = open_tracker(cfg)
    [t] = tracker.transfers()
    [check] = tracker.pacs_checks(t.study_instance_uid)
    assert (check.ids7_status, check.ids7_sent, check.ids7_found) == ("verified", n, n)
    assert check.ids7_method == "instances" and check.ids7_mapped_uid == t.transfer_mapped_uid
    assert check.summary() == f"sent {n}, verified {n}"
    login(page, url)
    page.goto(url + "assign/")
    assert page.locator(".verification.verified").inner_text() == f"sent {n}, verified {n}"

    gone = delete_three(orthanc)
    assert len(orthanc.instances()) == n - 3
    out = job(cfg, "whatIsInIDS7")
    assert "1 transfer(s) checked" in out and "1 incomplete" in out and "1 queued again" in out
    [check] = open_tracker(cfg).pacs_checks()
    assert (check.ids7_status, check.ids7_found, check.ids7_missing) == ("incomplete", n - 3, 3)
    assert check.ids7_resend_date
    [request] = cfg.paths.transfer_requests.glob("*.json")
    import json

    assert sorted(json.loads(request.read_text())[RESEND_KEY]) == gone
    page.goto(url + "status/")
    row = page.locator("#pacs-problems tr.pacs-incomplete")
    assert row.count() == 1
    cells = row.locator("td").all_inner_texts()
    assert cells[:3] == ["ALPHA", "ALPHA001", "–"]
    assert cells[3] == f"sent {n}, verified {n - 3}, 3 missing"
    assert "3 instance(s) queued to be sent again" in cells[5]

    # the resend sends only the three, and the study is verified again
    assert "1 sent" in job(cfg, "anonymizeAndSend")
    assert set(gone) <= set(orthanc.sop_uids()) and len(orthanc.instances()) == n
    assert sent_counts(cfg) == [n, 3]  # the first send, then only the missing three
    [check] = open_tracker(cfg).pacs_checks()
    assert (check.ids7_status, check.ids7_found, check.ids7_missing) == ("verified", n, 0)
    page.goto(url + "status/")
    assert page.locator("#pacs-problems").count() == 0 and page.locator("#pacs-ok").count() == 1
    page.goto(url + "assign/")
    page.locator("a.button", has_text="Open").first.click()  # the study page
    page.wait_for_load_state()
    assert page.locator("tr.assignment .verification").inner_text() == f"sent {n}, verified {n}"

    # the nightly run checks everything again: nothing to do now
    out = job(cfg, "whatIsNotInIDS7")
    assert "1 verified" in out and "queued again" not in out
    assert list(cfg.paths.transfer_requests.glob("*.json")) == []


def test_missing_study_is_reported_not_resent_when_the_switch_is_off(
    gateway, orthanc, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    cfg = gateway
    send_study(cfg, tmp_path, "ACC-77,BETA,BETA001,")
    orthanc.clear()
    out = job(cfg, "whatIsNotInIDS7")
    assert "1 missing" in out and "queued again" not in out
    [check] = open_tracker(cfg).pacs_checks()
    assert check.ids7_status == "missing" and check.ids7_found == 0
    assert "resend_missing is off" in check.ids7_message
    assert list(cfg.paths.transfer_requests.glob("*.json")) == []
    assert orthanc.instances() == []


def test_pacs_down_is_unverifiable_and_changes_nothing(gateway, orthanc, tmp_path) -> None:  # type: ignore[no-untyped-def]
    cfg = gateway
    send_study(cfg, tmp_path, "ACC-77,ALPHA,ALPHA002,")
    orthanc.stop()
    try:
        out = job(cfg, "whatIsInIDS7")
    finally:
        orthanc.start()
    assert "1 unverifiable" in out
    [check] = open_tracker(cfg).pacs_checks()
    assert check.ids7_status == "unverifiable" and "connection refused" in check.ids7_message
    assert list(cfg.paths.transfer_requests.glob("*.json")) == []


# Orthanc answers Success, then throws the instance away: a PACS that loses what it is sent
DROP_EVERYTHING = """
function OnStoredInstance(instanceId, tags, metadata, origin)
  RestApiDelete('/instances/' .. instanceId)
end
"""


def test_a_pacs_that_keeps_dropping_gets_one_automatic_resend_then_a_person(
    scripted_gateway, scripted_orthanc, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    cfg, orthanc = scripted_gateway, scripted_orthanc
    n = len(send_study(cfg, tmp_path, "ACC-77,ALPHA,ALPHA003,"))
    delete_three(orthanc)
    assert "1 queued again" in job(cfg, "whatIsInIDS7")
    r = orthanc._session.post(f"{orthanc.url}/tools/execute-script", data=DROP_EVERYTHING)
    r.raise_for_status()

    assert "1 sent" in job(cfg, "anonymizeAndSend")  # every C-STORE answered Success ...
    [check] = open_tracker(cfg).pacs_checks()
    assert (check.ids7_status, check.ids7_found) == ("incomplete", n - 3)  # ... yet not kept
    assert check.ids7_resend_date

    out = job(cfg, "whatIsInIDS7")
    assert "1 incomplete" in out and "queued again" not in out
    [check] = open_tracker(cfg).pacs_checks()
    assert "still not complete after the resend queued" in check.ids7_message
    assert list(cfg.paths.transfer_requests.glob("*.json")) == []
    assert sent_counts(cfg) == [n, 3]  # the one automatic resend, no loop
