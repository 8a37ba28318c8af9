"""Routing rules, coupling lists and AutoID turn settled studies into transfer requests, once."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

from fionagw.config import load_config
from fionagw.config.projects import load_projects
from fionagw.ops.log import phi_hash
from fionagw.routing.autoid import AutoIDError, generate_id
from fionagw.routing.coupling import CouplingListError, import_coupling_list, parse_coupling_list
from fionagw.routing.populate import Populator
from fionagw.routing.requests import create_transfer_requests, request_path, resend_project
from fionagw.tracking.local import LocalTracker
from fionagw.tracking.records import CouplingEntry
from support.site import write_config

PROJECTS = """
projects:
  ALPHA:
    participant_id: '^ALPHA[0-9]{3}$'
    events: [baseline, followup]
    routing:
      - {called_aetitle: ROUTEME, patient_id: '^R[0-9]+$', event: baseline}
  AUTO:
    participant_id: '^AUTO-[A-F0-9]{4}$'
    autoid: {enabled: true, aetitle: AUTOAE}
  OLD:
    participant_id: '.*'
    active: false
"""


@pytest.fixture
def site(tmp_path: Path):  # type: ignore[no-untyped-def]
    projects = tmp_path / "projects.yml"
    projects.write_text(PROJECTS)
    cfg = load_config(write_config(tmp_path, tracker={"projects_file": str(projects)}))
    cfg.paths.create()
    return cfg, LocalTracker(cfg.paths.tracker_db, projects)


def add_series(
    cfg,
    study: str,
    series: str,
    *,
    called: str = "FIONA",
    calling: str = "MOD",  # type: ignore[no-untyped-def]
    patient_id: str = "P1",
    accession: str = "ACC1",
    age_s: float = 120,
) -> Path:
    folder = cfg.paths.raw_study_dir(study)
    (folder / series).mkdir(parents=True, exist_ok=True)
    path = cfg.paths.series_json(study, series)
    path.write_text(
        json.dumps(
            {
                "StudyInstanceUID": study,
                "SeriesInstanceUID": series,
                "PatientID": patient_id,
                "PatientName": "Doe^Jane",
                "AccessionNumber": accession,
                "StudyDate": "20260101",
                "StudyTime": "101010",
                "SeriesDescription": f"desc {series}",
                "SequenceName": "*tfl3d1",
                "NumFiles": "12",
                "ClassifyType": ["MR", "T1"],
                "SeriesNumber": "1",
                "IncomingConnection": {
                    "AETitleCaller": calling,
                    "AETitleCalled": called,
                    "CallerIP": "127.0.0.1",
                },
            }
        )
    )
    old = time.time() - age_s
    os.utime(path, (old, old))
    return path


def test_study_and_series_recorded_with_hashed_patient(site) -> None:  # type: ignore[no-untyped-def]
    cfg, tracker = site
    add_series(cfg, "1.1", "1.1.1")
    add_series(cfg, "1.1", "1.1.2")
    add_series(cfg, "1.1", "1.1.3", age_s=5)  # not settled yet
    report = Populator(cfg, tracker).run()
    assert report.studies == 1 and report.new_series == 2 and report.requests == []
    st = tracker.get_studies(["1.1"])["1.1"]
    assert st.study.study_patient_id == phi_hash("P1") and st.study.study_patient_name == phi_hash(
        "Doe^Jane"
    )
    assert "Doe" not in json.dumps(st.study.__dict__)
    assert st.study.study_aetitle_sender == "MOD" and st.study.study_accession_number == "ACC1"
    assert {s.series_instance_uid for s in st.series} == {"1.1.1", "1.1.2"}
    assert st.series[0].series_num_files == "12" and st.series[0].classify_types == ["MR", "T1"]
    # the late series settles: only it is added
    os.utime(cfg.paths.series_json("1.1", "1.1.3"), (time.time() - 120,) * 2)
    report = Populator(cfg, tracker).run()
    assert report.new_series == 1
    assert [s.instance for s in tracker.get_studies(["1.1"])["1.1"].series] == [1, 2, 3]


def test_routing_rule_creates_one_request(site) -> None:  # type: ignore[no-untyped-def]
    cfg, tracker = site
    add_series(cfg, "2.1", "2.1.1", called="ROUTEME", patient_id="R123")
    add_series(cfg, "2.2", "2.2.1", called="ROUTEME", patient_id="X999")  # id does not match
    add_series(cfg, "2.3", "2.3.1", called="OTHER", patient_id="R124")  # AE does not match
    for _ in range(2):
        Populator(cfg, tracker).run()
    (t,) = tracker.transfers()
    assert (t.study_instance_uid, *t.key) == ("2.1", "ALPHA", "R123", "baseline")


def test_coupling_list_by_accession_and_uid(site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg, tracker = site
    csv = tmp_path / "list.csv"
    csv.write_bytes(
        b"AccessionNumber,ProjectName,subjectid,eventname\r\nACC7,ALPHA,ALPHA007,baseline\r\n"
        b"3.9.9,ALPHA,ALPHA008,followup\r\n"
    )
    assert import_coupling_list(tracker, csv) == 2
    add_series(cfg, "3.1", "3.1.1", accession="ACC7")
    add_series(cfg, "3.9.9", "3.9.9.1", accession="OTHER")
    Populator(cfg, tracker).run()
    Populator(cfg, tracker).run()
    got = sorted((t.study_instance_uid, *t.key) for t in tracker.transfers())
    assert got == [
        ("3.1", "ALPHA", "ALPHA007", "baseline"),
        ("3.9.9", "ALPHA", "ALPHA008", "followup"),
    ]


def test_coupling_list_bad_lines_import_nothing(site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg, tracker = site
    projects, _ = load_projects(tracker.projects_file)
    text = (
        "ACC1,ALPHA,ALPHA001,baseline\n"
        "ACC2,NOPE,ALPHA002,baseline\n"
        "ACC3,ALPHA,BAD,baseline\n"
        "ACC4,ALPHA,ALPHA004,week9\n"
        "ACC5,ALPHA\n"
        "ACC6,OLD,x,\n"
        "ACC1,ALPHA,ALPHA009,baseline\n"
    )
    with pytest.raises(CouplingListError) as err:
        parse_coupling_list(text, projects, "upload.csv")
    lines = {e.line: e.reason for e in err.value.errors}
    assert set(lines) == {2, 3, 4, 5, 6, 7}
    assert "unknown project 'NOPE'" in lines[2] and "does not match" in lines[3]
    assert "week9" in lines[4] and "expected 4 fields" in lines[5] and "not active" in lines[6]
    assert "already assigned on line 1" in lines[7]
    bad = tmp_path / "bad.csv"
    bad.write_text(text)
    with pytest.raises(CouplingListError):
        import_coupling_list(tracker, bad)
    assert tracker.coupling_entries() == []


def test_autoid_assigns_and_reuses_per_patient(site) -> None:  # type: ignore[no-untyped-def]
    cfg, tracker = site
    add_series(cfg, "4.1", "4.1.1", called="AUTOAE", patient_id="PAT-A")
    add_series(cfg, "4.2", "4.2.1", called="AUTOAE", patient_id="PAT-A")
    add_series(cfg, "4.3", "4.3.1", called="AUTOAE", patient_id="PAT-B")
    Populator(cfg, tracker).run()
    Populator(cfg, tracker).run()
    by_study = {t.study_instance_uid: t for t in tracker.transfers()}
    assert set(by_study) == {"4.1", "4.2", "4.3"}
    assert (
        by_study["4.1"].transfer_name
        == by_study["4.2"].transfer_name
        != by_study["4.3"].transfer_name
    )
    assert all(re.match(r"^AUTO-[A-F0-9]{4}$", t.transfer_name) for t in by_study.values())
    assert all(t.transfer_project_name == "AUTO" for t in by_study.values())


def test_generate_id_space_exhausted() -> None:
    taken = {f"X{i}" for i in range(10)}
    with pytest.raises(AutoIDError, match="exhausted"):
        generate_id(r"^X[0-9]$", taken, attempts=200)


def test_request_files_created_once_and_late_series_retriggers(site) -> None:  # type: ignore[no-untyped-def]
    cfg, tracker = site
    tracker.add_coupling_entries(
        [CouplingEntry("", "ALPHA", "ALPHA010", "baseline", cl_accessionnumber="A10")]
    )
    add_series(cfg, "5.1", "5.1.1", accession="A10", age_s=600)
    Populator(cfg, tracker).run()
    (t,) = tracker.transfers()
    created = create_transfer_requests(cfg, tracker)
    assert created == [request_path(cfg, t)]
    row = json.loads(created[0].read_text())
    assert row == {
        "redcap_repeat_instance": 1,
        "redcap_repeat_instrument": "transfers",
        "study_instance_uid": "5.1",
        "transfer_date": "",
        "transfer_event_name": "baseline",
        "transfer_name": "ALPHA010",
        "transfer_project_name": "ALPHA",
        "transfer_requested_date": t.transfer_requested_date,
    }
    assert created[0].name == "5.1_ALPHA_ALPHA010_1.json"
    assert create_transfer_requests(cfg, tracker) == []  # already queued
    # anonymizeAndSend took it and recorded the transfer a while ago
    created[0].unlink()
    t.transfer_date = time.strftime("%Y-%m-%d %H:%M", time.localtime(time.time() - 300))
    tracker.update_transfer(t)
    assert create_transfer_requests(cfg, tracker) == []
    add_series(cfg, "5.1", "5.1.2", accession="A10", age_s=0)  # a late series
    assert create_transfer_requests(cfg, tracker) == [request_path(cfg, t)]
    assert len(tracker.transfers()) == 1  # the same request, not a new one


def test_resend_project(site) -> None:  # type: ignore[no-untyped-def]
    cfg, tracker = site
    a = tracker.request_transfer("6.1", "ALPHA", "ALPHA011", "baseline", "2026-01-01 10:00")
    b = tracker.request_transfer("6.2", "AUTO", "AUTO-0001", "", "2026-01-01 10:00")
    for t in (a, b):
        t.transfer_date = "2026-01-01 11:00"
        tracker.update_transfer(t)
    assert resend_project(cfg, tracker) == []
    a.transfer_requested_date = b.transfer_requested_date = "2026-01-02 09:00"
    tracker.update_transfer(a)
    tracker.update_transfer(b)
    assert resend_project(cfg, tracker, "ALPHA") == [request_path(cfg, a)]
    assert resend_project(cfg, tracker) == [request_path(cfg, b)]
