"""The MPPS receiver (bin/mppsctl) and what it changes for detectStudyArrival: a pynetdicom SCU
plays the scanner (N-CREATE IN PROGRESS, then N-SET COMPLETED with the performed series and
their images); the record under DATADIR/scanner/ is right; a study whose MPPS COMPLETED is
listed within seconds of its last image, another one only after the quiet period."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE

from fionagw.config import load_config
from fionagw.config.pacs import load_pacs
from fionagw.pacs.mpps import MPPS_SOP_CLASS
from support.site import free_port, run_bin, storescu, write_config
from support.synth import standard_mr_study

pytestmark = pytest.mark.slow
QUIET = 8  # seconds: the arrival's quiet period in these tests


@pytest.fixture(scope="module")
def site(tmp_path_factory):  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("mpps-site")
    config = write_config(
        tmp,
        arrival={"quiet_seconds": QUIET},
        MPPSPORT=str(free_port()),
        MPPSMODE="mppson",
        # a completed step lists its study for moveFromScanner (the scanner never answers here)
        pacs={
            "from_mpps": True,
            "sources": {"scanner": {"host": "127.0.0.1", "port": 9, "called_aetitle": "MRC"}},
        },
    )
    for program in ("processSingleFile", "storectl", "mppsctl"):
        r = run_bin(program, "start", config=config)
        assert r.returncode == 0, r.stderr + r.stdout
    yield load_config(config)
    for program in ("mppsctl", "storectl", "processSingleFile"):
        run_bin(program, "stop", config=config)


def _scu(cfg):  # type: ignore[no-untyped-def]
    ae = AE(ae_title="MRSCANNER")
    ae.add_requested_context(MPPS_SOP_CLASS)
    assoc = ae.associate("127.0.0.1", load_pacs(cfg).mpps.port, ae_title=cfg.aetitle)
    assert assoc.is_established
    return assoc


def _create(assoc, pps_uid: str, study_uid: str) -> int:  # type: ignore[no-untyped-def]
    ds = Dataset()
    item = Dataset()
    item.StudyInstanceUID = study_uid
    item.AccessionNumber = ""
    ds.ScheduledStepAttributesSequence = [item]
    ds.PatientName = "Should^Not^Be^Stored"
    ds.PatientID = "MPPS-PID"
    ds.PerformedProcedureStepID = "1"
    ds.PerformedProcedureStepStartDate = "20260101"
    ds.PerformedProcedureStepStartTime = "101500"
    ds.PerformedProcedureStepStatus = "IN PROGRESS"
    ds.Modality = "MR"
    ds.PerformedSeriesSequence = []
    status, _ = assoc.send_n_create(ds, MPPS_SOP_CLASS, pps_uid)
    return int(status.Status)


def _complete(assoc, pps_uid: str, files: list[Path]) -> int:  # type: ignore[no-untyped-def]
    series: dict[str, list[Dataset]] = {}
    for f in files:
        h = pydicom.dcmread(f, stop_before_pixels=True)
        ref = Dataset()
        ref.ReferencedSOPClassUID = h.SOPClassUID
        ref.ReferencedSOPInstanceUID = h.SOPInstanceUID
        series.setdefault(str(h.SeriesInstanceUID), []).append(ref)
    ds = Dataset()
    ds.PerformedProcedureStepStatus = "COMPLETED"
    ds.PerformedProcedureStepEndDate = "20260101"
    ds.PerformedProcedureStepEndTime = "103000"
    items = []
    for uid, refs in series.items():
        item = Dataset()
        item.SeriesInstanceUID = uid
        item.ReferencedImageSequence = refs
        items.append(item)
    ds.PerformedSeriesSequence = items
    status, _ = assoc.send_n_set(ds, MPPS_SOP_CLASS, pps_uid)
    return int(status.Status)


def _listed(cfg, uid: str) -> bool:  # type: ignore[no-untyped-def]
    path = cfg.paths.incoming_list
    return path.exists() and uid in path.read_text()


def _time_to_listed(cfg, uid: str, files: list[Path]) -> float:  # type: ignore[no-untyped-def]
    """Seconds from the end of the push to the study on the incoming list (detectStudyArrival
    run over and over, as cron's 4 runs a minute would, only more often)."""
    assert storescu(cfg.dicom_port, *files, aet="MRSCANNER").returncode == 0
    pushed = time.monotonic()
    while not _listed(cfg, uid):
        assert time.monotonic() - pushed < 60, "the study was never listed"
        r = run_bin("detectStudyArrival", config=cfg.config_file)
        assert r.returncode == 0, r.stderr
        time.sleep(0.2)
    return time.monotonic() - pushed


def test_mpps_record_and_early_completion(site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = site
    r = run_bin("mppsctl", "status", config=cfg.config_file)
    assert r.returncode == 0 and "running" in r.stdout, r.stdout + r.stderr

    files = standard_mr_study(tmp_path / "a", "SIEMENS", n_per_series=2, patient_id="MPPS-A")
    study_uid = str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
    pps = generate_uid()
    assoc = _scu(cfg)
    try:
        assert _create(assoc, pps, study_uid) == 0x0000
        assert _create(assoc, pps, study_uid) == 0x0111  # duplicate instance
        record = json.loads((cfg.paths.scanner / f"{pps}.json").read_text())
        assert record["status"] == "IN PROGRESS" and record["study_uids"] == [study_uid]
        assert record["station"] == "MRSCANNER"
        assert _complete(assoc, pps, files) == 0x0000
        assert _complete(assoc, pps, files) == 0xC310  # a completed step is final
        assert _complete(assoc, generate_uid(), files) == 0x0112  # no such step
    finally:
        assoc.release()
    path = cfg.paths.scanner / f"{pps}.json"
    record = json.loads(path.read_text())
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert record["status"] == "COMPLETED" and record["images"] == len(files)
    assert len(record["series"]) == 7
    assert sum(s["images"] for s in record["series"]) == len(files)
    assert record["ended"] == "20260101 103000"
    scan = json.loads((cfg.paths.active_scans / study_uid).read_text())
    assert scan["by"] == "mpps" and scan["attempts"] == 0  # for moveFromScanner
    text = path.read_text() + (cfg.paths.logs / "mpps.log").read_text()
    assert "Should^Not" not in text and "MPPS-PID" not in text

    with_mpps = _time_to_listed(cfg, study_uid, files)
    files_b = standard_mr_study(tmp_path / "b", "SIEMENS", n_per_series=2, patient_id="MPPS-B")
    uid_b = str(pydicom.dcmread(files_b[0], stop_before_pixels=True).StudyInstanceUID)
    without = _time_to_listed(cfg, uid_b, files_b)
    print(f"listed {with_mpps:.1f} s after the last image with MPPS, {without:.1f} s without")
    assert with_mpps < QUIET / 2 and without >= QUIET


def test_enabled_file_switches_mpps_off(site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = site
    cfg.paths.enabled_file.write_text("10")
    try:
        r = run_bin("mppsctl", "keepalive", config=cfg.config_file)
    finally:
        cfg.paths.enabled_file.unlink()
    assert r.returncode == 0
    assert "MPPS receiver off: disabled by" in r.stdout and "second character 0" in r.stdout
    other = write_config(tmp_path, MPPSMODE="mppsoff", MPPSPORT=str(free_port()))
    r = run_bin("mppsctl", "start", config=other)
    assert r.returncode == 0 and "MPPSMODE is not mppson" in r.stdout
