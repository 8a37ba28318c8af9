"""End to end into a real research PACS: dcmtk storescu -> receiver -> classifier -> arrival ->
coupling list -> populateIncoming -> createTransferRequest -> anonymizeAndSend -> Orthanc, every
step a bin/ program as cron runs it. Orthanc's REST API is the judge of what arrived."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pydicom
import pytest

from fionagw.deid.release import collect_identifiers
from fionagw.tracking.factory import open_tracker
from fionagw.tracking.records import COMPLETE_ERROR, COMPLETE_OK
from support.pacs_gateway import job, pacs_gateway
from support.site import run_bin, storescu, wait_for
from support.synth import ct_study, standard_mr_study

pytestmark = pytest.mark.slow

PATIENT = {
    "patient_id": "PID-0042",
    "patient_name": "Hansen^Ola^Magnus",
    "accession": "ACC-31337",
    "study_description": "Research head",
}
PROJECTS = """
projects:
  ALPHA:
    participant_id: '^ALPHA[0-9]{3}$'
    events: [baseline, followup]
    destination: research-pacs
    deid: {mode: keyed}
  LEGACY:
    participant_id: '^L[0-9]{3}$'
    destination: research-pacs
    deid: {mode: fiona}
"""
# keeps a private block that (in the test) hides the patient's name in a sequence item
LEAKY = """  LEAKY:
    participant_id: '^X[0-9]{3}$'
    destination: research-pacs
    deid: {mode: keyed, private_keep: ['0019,ACME LEAKY,10', '0019,ACME LEAKY,11']}
"""


@pytest.fixture
def gateway(tmp_path: Path, orthanc):  # type: ignore[no-untyped-def]
    yield from pacs_gateway(tmp_path, orthanc, PROJECTS)


def receive_and_assign(cfg, tmp_path: Path, files: list[Path], coupling: str) -> None:  # type: ignore[no-untyped-def]
    assert storescu(cfg.dicom_port, *files, aet="SCANNER").returncode == 0
    wait_for(
        lambda: sum(1 for p in cfg.paths.raw.glob("*/*/*") if p.is_symlink()) >= len(files),
        what="every image classified",
    )
    time.sleep(2.5)  # the classifier's write-behind flush, then the quiet period
    job(cfg, "detectStudyArrival")
    csv = tmp_path / "coupling.csv"
    csv.write_text("AccessionNumber,ProjectName,subjectid,eventname\n" + coupling + "\n")
    job(cfg, "fiona", "coupling-list", "import", str(csv))
    old = time.time() - 120  # populateIncoming waits for series JSON untouched for 60 s
    for j in cfg.paths.raw.glob("*/*.json"):
        os.utime(j, (old, old))
    job(cfg, "populateIncoming")
    job(cfg, "createTransferRequest")


def test_study_reaches_orthanc_pseudonymized_and_resend_merges(
    gateway, orthanc, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    cfg = gateway
    files = standard_mr_study(tmp_path / "mr", "SIEMENS", n_per_series=3, **PATIENT)
    originals = [pydicom.dcmread(f) for f in files]
    ids = collect_identifiers(originals)
    receive_and_assign(cfg, tmp_path, files, "ACC-31337,ALPHA,ALPHA007,baseline")

    out = job(cfg, "anonymizeAndSend")
    assert "1 sent" in out

    instances = orthanc.instances()
    assert len(instances) == len(files) and len(orthanc.studies()) == 1
    original_uids = {str(ds.SOPInstanceUID) for ds in originals} | {
        str(originals[0].StudyInstanceUID)
    }
    for instance in instances:
        tags = orthanc.instance_tags(instance)
        flat = json.dumps(tags)
        assert tags["0010,0020"]["Value"] == "ALPHA007" and tags["0010,0010"]["Value"] == "ALPHA007"
        assert tags["0012,0050"]["Value"] == "baseline"  # Clinical Trial Time Point ID
        assert tags["0012,0020"]["Value"] == "ALPHA"  # Clinical Trial Protocol ID
        assert tags["0008,0020"]["Value"] != originals[0].StudyDate  # shifted
        assert not any(uid in flat for uid in original_uids)
        assert not ids.find_text(flat), (
            "an identifying value of the original study reached the PACS"
        )
    for needle in ("Hansen", "Magnus", "PID-0042", "ACC-31337"):
        assert orthanc.find_text(needle) == [], needle

    tracker = open_tracker(cfg)
    [t] = tracker.transfers()
    assert t.transfers_complete == COMPLETE_OK and t.transfer_date
    assert orthanc.study_uids() == [t.transfer_mapped_uid]
    [check] = tracker.pacs_checks(t.study_instance_uid)  # asked by C-FIND after the send
    assert check.verified and (check.ids7_sent, check.ids7_found) == (len(files), len(files))

    # the data manager asks for a resend: the PACS still holds one copy
    job(cfg, "fiona", "coupling-list", "show")
    from fionagw.routing.requests import write_request

    assert write_request(cfg, t)
    assert "1 sent" in job(cfg, "anonymizeAndSend")
    assert len(orthanc.instances()) == len(files) and len(orthanc.studies()) == 1


def test_pacs_down_then_back(gateway, orthanc, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = gateway
    files = ct_study(tmp_path / "ct", "GE", n_images=6, **PATIENT)
    receive_and_assign(cfg, tmp_path, files, "ACC-31337,LEGACY,L001,")
    orthanc.stop()
    try:
        out = job(cfg, "anonymizeAndSend")
        assert "1 to retry" in out
        [t] = open_tracker(cfg).transfers()
        assert (
            t.transfers_complete == COMPLETE_ERROR
            and t.transfer_error == {2}
            and not t.transfer_date
        )
        assert "research-pacs" in json.loads(t.transfer_error_message)["error"]
    finally:
        orthanc.start()
    time.sleep(1.2)  # the retry time (retry_base_seconds 1)
    assert "1 sent" in job(cfg, "anonymizeAndSend")
    [t] = open_tracker(cfg).transfers()
    assert t.transfers_complete == COMPLETE_OK and not t.transfer_error and t.transfer_date
    assert len(orthanc.instances()) == len(files)
    # FIONA mode: DICOMAnonymizer's UIDs, so studies FIONA sent before merge with ours
    assert t.transfer_mapped_uid.startswith("1.3.6.1.4.1.45037.")


def test_phi_in_private_tag_and_nested_item_sends_nothing(gateway, orthanc, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = gateway
    projects = Path(json.loads(cfg.config_file.read_text())["tracker"]["projects_file"])
    projects.write_text(PROJECTS + LEAKY)
    files = ct_study(tmp_path / "ct", "SIEMENS", n_images=3, **PATIENT)
    from support.transfer_site import hide_phi_in_private_sequence

    hide_phi_in_private_sequence(files[1])
    receive_and_assign(cfg, tmp_path, files, "ACC-31337,LEAKY,X001,")
    out = run_bin("anonymizeAndSend", config=cfg.config_file)
    assert out.returncode == 0 and "1 failed" in out.stdout
    assert orthanc.instances() == []
    [t] = open_tracker(cfg).transfers()
    assert t.transfers_complete == COMPLETE_ERROR and 1 in t.transfer_error
    assert "(0019,1010)" in t.transfer_error_message and "Hansen" not in t.transfer_error_message
