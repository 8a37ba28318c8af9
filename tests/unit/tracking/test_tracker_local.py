"""The local tracker: FIONA's Incoming/CouplingList/AutoID records in SQLite, safe under concurrency."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from fionagw.config.projects import FEATURES, ProjectsError, load_projects
from fionagw.tracking.local import LocalTracker
from fionagw.tracking.records import CouplingEntry, Series, Study, Transfer
from support.site import ROOT


@pytest.fixture
def tracker(tmp_path: Path) -> LocalTracker:
    return LocalTracker(tmp_path / "db" / "tracker.sqlite", ROOT / "config" / "projects.yml")


def test_study_and_series_instances(tracker: LocalTracker) -> None:
    study = Study("1.2.3", study_patient_id="ab" * 32, study_accession_number="ACC1")
    added = tracker.save_study(study, [Series("1.2.3.1", series_num_files="10"), Series("1.2.3.2")])
    assert [s.instance for s in added] == [1, 2]
    # a second run adds only the new series, never a duplicate
    added = tracker.save_study(
        study, [Series("1.2.3.2"), Series("1.2.3.3", series_classify_types='["T1"]')]
    )
    assert [(s.series_instance_uid, s.instance) for s in added] == [("1.2.3.3", 3)]
    got = tracker.get_studies(["1.2.3", "9.9"])
    assert list(got) == ["1.2.3"]
    assert got["1.2.3"].series_uids == {"1.2.3.1", "1.2.3.2", "1.2.3.3"}
    assert got["1.2.3"].series[2].classify_types == ["T1"]
    assert got["1.2.3"].study.study_accession_number == "ACC1"


def test_identical_transfer_request_is_created_once(tracker: LocalTracker) -> None:
    tracker.save_study(Study("1.2.3"), [])
    first = tracker.request_transfer("1.2.3", "DEMO", "DEMO001", "baseline")
    assert first is not None and first.instance == 1 and first.transfer_requested_date
    assert tracker.request_transfer("1.2.3", "DEMO", "DEMO001", "baseline") is None
    second = tracker.request_transfer("1.2.3", "DEMO", "DEMO001", "followup")
    assert second is not None and second.instance == 2
    assert [t.key for t in tracker.transfers("1.2.3")] == [
        ("DEMO", "DEMO001", "baseline"),
        ("DEMO", "DEMO001", "followup"),
    ]


def test_update_transfer_result(tracker: LocalTracker) -> None:
    t = tracker.request_transfer("1.2.3", "DEMO", "DEMO002", "")
    assert t is not None
    t.transfer_date = "2026-11-22 10:00"
    t.transfer_error = {2}
    t.transfers_complete = "1"
    tracker.update_transfer(t)
    (back,) = tracker.transfers(project="DEMO")
    assert back.transfer_error == {2} and back.transfers_complete == "1"
    assert back.request_row()["transfer_date"] == "2026-11-22 10:00"
    with pytest.raises(Exception, match="no transfer request 9"):
        tracker.update_transfer(Transfer("1.2.3", 9, "DEMO", "X"))


def _request(db: str, n: int) -> int:
    tracker = LocalTracker(Path(db), None)
    made = sum(
        tracker.request_transfer("1.2.3", "DEMO", "DEMO003", "baseline") is not None
        for _ in range(n)
    )
    tracker.close()
    return made


def test_concurrent_processes_create_one_request(tmp_path: Path) -> None:
    db = str(tmp_path / "tracker.sqlite")
    LocalTracker(Path(db), None).close()
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        made = pool.starmap(_request, [(db, 20)] * 4)
    assert sum(made) == 1
    assert len(LocalTracker(Path(db), None).transfers()) == 1


def test_coupling_entries_and_validity(tracker: LocalTracker) -> None:
    n = tracker.add_coupling_entries(
        [
            CouplingEntry("", "DEMO", "DEMO004", "baseline", cl_accessionnumber="A1"),
            CouplingEntry("", "DEMO", "DEMO005", cl_studyinstanceuid="1.2.9"),
        ]
    )
    assert n == 2
    entries = tracker.coupling_entries()
    assert [e.cl_subjectid for e in entries] == ["DEMO004", "DEMO005"]
    assert len({e.record_id for e in entries}) == 2
    tracker.db.execute(
        "UPDATE coupling SET created = created - 15 * 86400 WHERE record_id = ?",
        (entries[0].record_id,),
    )
    assert [e.cl_subjectid for e in tracker.coupling_entries(14)] == ["DEMO005"]


def test_autoid_reuses_and_refuses_duplicates(tracker: LocalTracker) -> None:
    assert tracker.autoid_lookup("DEMO", "k1") is None
    assert tracker.autoid_store("DEMO", "k1", "DEMO100") == "DEMO100"
    assert tracker.autoid_store("DEMO", "k1", "DEMO101") == "DEMO100"  # first one wins
    assert tracker.autoid_lookup("DEMO", "k1") == "DEMO100"
    assert tracker.autoid_values("DEMO") == {"DEMO100"}
    with pytest.raises(Exception, match="already used"):
        tracker.autoid_store("DEMO", "k2", "DEMO100")


def test_shipped_projects_file() -> None:
    projects, rules = load_projects(ROOT / "config" / "projects.yml")
    demo = projects["DEMO"]
    assert demo.valid_participant("DEMO001") and not demo.valid_participant("DEMO01")
    assert demo.events == ["baseline", "followup"]
    assert (
        demo.has_feature("remove_presentation_states")
        and FEATURES["remove_presentation_states"] in demo.features
    )
    assert rules == []


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("projects:\n  P1: {title: x}\n", "projects.P1.participant_id: missing"),
        ("projects:\n  P1: {participant_id: '(['}\n", "not a valid regular expression"),
        ("projects:\n  P1: {participant_id: x, events: baseline}\n", "projects.P1.events"),
        (
            "projects:\n  P1: {participant_id: x, features: {fly: true}}\n",
            "unknown feature(s): fly",
        ),
        ("projects:\n  P1: {participant_id: x\n", "invalid YAML: line"),
        ("projects:\n  'bad name': {participant_id: x}\n", "a project name has"),
    ],
)
def test_projects_file_errors_name_the_key(tmp_path: Path, text: str, words: str) -> None:
    f = tmp_path / "projects.yml"
    f.write_text(text)
    with pytest.raises(ProjectsError) as err:
        load_projects(f)
    assert str(f) in str(err.value) and words in str(err.value)


def test_routing_rules_from_projects_file(tmp_path: Path) -> None:
    f = tmp_path / "projects.yml"
    f.write_text(
        "projects:\n  P1:\n    participant_id: '^P1'\n    routing:\n"
        "      - {called_aetitle: P1AE, patient_id: '^123', event: baseline}\n"
    )
    _, rules = load_projects(f)
    (rule,) = rules
    assert rule.routing_dest_project == "P1" and rule.routing_incoming_aetitle == "P1AE"
    assert rule.routing_allowed_patientid == "^123" and rule.routing_event_name == "baseline"
