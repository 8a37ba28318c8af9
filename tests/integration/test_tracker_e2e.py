"""storescu -> receiver -> classifier -> populateIncoming / createTransferRequest, for both trackers.

The redcap backend talks HTTP on loopback to the REDCap API double (tests/redcap_double).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from fionagw.config import load_config
from fionagw.ops.log import phi_hash
from fionagw.tracking.factory import open_tracker
from support.redcap_double.fixtures import add_research_project
from support.site import raw_links, run_bin, storescu, wait_for, write_config
from support.synth import standard_mr_study

pytestmark = pytest.mark.slow

PROJECTS_YML = (
    "projects:\n  ALPHA:\n    participant_id: '^ALPHA[0-9]{3}$'\n    events: [baseline]\n"
)


@pytest.fixture(params=["local", "redcap"])
def tracked_site(request, tmp_path: Path):  # type: ignore[no-untyped-def]
    projects = tmp_path / "projects.yml"
    projects.write_text(PROJECTS_YML)
    tracker: dict = {"backend": request.param, "projects_file": str(projects)}
    if request.param == "redcap":
        server = request.getfixturevalue("redcap_server")
        secrets = request.getfixturevalue("redcap_secrets")
        tracker.update(redcap_url=server.url, secrets_file=str(secrets))
        add_research_project(server, "ALPHA", "^ALPHA[0-9]{3}$")
    cfg_path = write_config(tmp_path, tracker=tracker, arrival={"quiet_seconds": 1})
    for program in ("processSingleFile", "storectl"):
        assert run_bin(program, "start", config=cfg_path).returncode == 0
    yield load_config(cfg_path), request.param
    for program in ("storectl", "processSingleFile"):
        run_bin(program, "stop", config=cfg_path)


def settle(cfg) -> None:  # type: ignore[no-untyped-def]
    old = time.time() - 120
    for j in cfg.paths.raw.glob("*/*.json"):
        os.utime(j, (old, old))


def test_two_studies_recorded_and_coupled(tracked_site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg, backend = tracked_site
    a = standard_mr_study(
        tmp_path / "a",
        vendor="SIEMENS",
        n_per_series=2,
        seed=11,
        patient_id="PAT-A",
        accession="ACC-A",
    )
    b = standard_mr_study(
        tmp_path / "b", vendor="GE", n_per_series=2, seed=12, patient_id="PAT-B", accession="ACC-B"
    )
    assert storescu(cfg.dicom_port, tmp_path / "a", tmp_path / "b", aet="SCANNER").returncode == 0
    wait_for(lambda: len(raw_links(cfg.datadir)) == len(a) + len(b), what="classified")
    time.sleep(2.5)  # write-behind flush, then the quiet period
    r = run_bin("detectStudyArrival", config=cfg.config_file)
    assert r.returncode == 0, r.stderr
    incoming = cfg.paths.incoming_list.read_text().splitlines()
    assert len(incoming) == 2 and not list(cfg.paths.arrived.iterdir())
    csv = tmp_path / "coupling.csv"
    csv.write_text(
        "AccessionNumber,ProjectName,subjectid,eventname\nACC-A,ALPHA,ALPHA001,baseline\n"
    )
    r = run_bin("fiona", "coupling-list", "import", str(csv), config=cfg.config_file)
    assert r.returncode == 0, r.stderr
    settle(cfg)
    for _ in range(2):  # a second run changes nothing
        r = run_bin("populateIncoming", config=cfg.config_file)
        assert r.returncode == 0, r.stderr
    tracker = open_tracker(cfg)
    studies = tracker.get_studies([p.name for p in cfg.paths.raw.iterdir()])
    assert len(studies) == 2
    by_acc = {s.study.study_accession_number: s for s in studies.values()}
    sa = by_acc["ACC-A"]
    assert (
        sa.study.study_patient_id == phi_hash("PAT-A")
        and sa.study.study_aetitle_sender == "SCANNER"
    )
    assert sa.study.study_aetitle_addressed == "FIONA"
    series_json = {
        p.stem: json.loads(p.read_text())
        for p in cfg.paths.raw_study_dir(sa.study.study_instance_uid).glob("*.json")
    }
    assert sa.series_uids == set(series_json)
    for s in sa.series:
        rec = series_json[s.series_instance_uid]
        assert s.series_num_files == rec["NumFiles"] and s.classify_types == rec["ClassifyType"]
        assert s.series_description == rec["SeriesDescription"]
    (t,) = tracker.transfers()
    assert (t.study_instance_uid, *t.key) == (
        sa.study.study_instance_uid,
        "ALPHA",
        "ALPHA001",
        "baseline",
    )
    assert not by_acc["ACC-B"].transfers
    r = run_bin("createTransferRequest", config=cfg.config_file)
    assert r.returncode == 0, r.stderr
    files = list(cfg.paths.transfer_requests.glob("*.json"))
    assert [f.name for f in files] == [f"{t.study_instance_uid}_ALPHA_ALPHA001_1.json"]
    assert run_bin("createTransferRequest", config=cfg.config_file).returncode == 0
    assert len(list(cfg.paths.transfer_requests.glob("*.json"))) == 1


def test_redcap_outage_loses_nothing_and_bad_token_is_one_line(
    tmp_path: Path,
    redcap_server,
    redcap_secrets,  # type: ignore[no-untyped-def]
    redcap_double,
) -> None:
    cfg_path = write_config(
        tmp_path,
        tracker={
            "backend": "redcap",
            "redcap_url": redcap_server.url,
            "secrets_file": str(redcap_secrets),
            "retries": 1,
        },
    )
    cfg = load_config(cfg_path)
    cfg.paths.create()
    study = cfg.paths.raw_study_dir("1.2.3")
    (study / "1.2.3.1").mkdir(parents=True)
    cfg.paths.series_json("1.2.3", "1.2.3.1").write_text(
        json.dumps(
            {
                "StudyInstanceUID": "1.2.3",
                "SeriesInstanceUID": "1.2.3.1",
                "PatientID": "X",
                "NumFiles": "1",
                "ClassifyType": [],
                "IncomingConnection": {"AETitleCaller": "A", "AETitleCalled": "B", "CallerIP": "1"},
            }
        )
    )
    settle(cfg)
    redcap_double.fail_next(
        2, 500, "Internal Server Error"
    )  # both attempts (retries=1) of the first call
    r = run_bin("populateIncoming", config=cfg_path)
    assert (
        r.returncode == 1 and "REDCap project Incoming" in r.stderr and "Traceback" not in r.stderr
    )
    r = run_bin("populateIncoming", config=cfg_path)
    assert r.returncode == 0, r.stderr
    assert "1.2.3" in open_tracker(cfg).get_studies(["1.2.3"])
    # a token REDCap does not know
    secrets = json.loads(redcap_secrets.read_text())
    secrets["tokens"]["Incoming"] = "0" * 32
    redcap_secrets.write_text(json.dumps(secrets))
    r = run_bin("populateIncoming", config=cfg_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "REDCap project Incoming" in r.stderr and "permission" in r.stderr.lower()
    assert "0" * 32 not in r.stderr


def test_concurrent_jobs_make_exactly_one_request_per_source(tmp_path: Path) -> None:
    projects = tmp_path / "projects.yml"
    projects.write_text(
        "projects:\n"
        "  ALPHA:\n    participant_id: '^ALPHA[0-9]{3}$'\n"
        "    routing:\n      - {called_aetitle: ROUTE, patient_id: '^R[0-9]+$', event: baseline}\n"
        "  AUTO:\n    participant_id: '^AUTO[0-9]{4}$'\n    autoid: {enabled: true, aetitle: AUTOAE}\n"
    )
    cfg_path = write_config(tmp_path, tracker={"projects_file": str(projects)})
    cfg = load_config(cfg_path)
    cfg.paths.create()
    for uid, called, pid, acc in (
        ("7.1", "ROUTE", "R1", "X1"),
        ("7.2", "FIONA", "P2", "ACC72"),
        ("7.3", "AUTOAE", "P3", "X3"),
    ):
        (cfg.paths.raw_study_dir(uid) / f"{uid}.1").mkdir(parents=True)
        cfg.paths.series_json(uid, f"{uid}.1").write_text(
            json.dumps(
                {
                    "StudyInstanceUID": uid,
                    "SeriesInstanceUID": f"{uid}.1",
                    "PatientID": pid,
                    "PatientName": "N",
                    "AccessionNumber": acc,
                    "NumFiles": "1",
                    "ClassifyType": [],
                    "IncomingConnection": {
                        "AETitleCaller": "MOD",
                        "AETitleCalled": called,
                        "CallerIP": "127.0.0.1",
                    },
                }
            )
        )
    csv = tmp_path / "c.csv"
    csv.write_text("ACC72,ALPHA,ALPHA072,\n")
    assert run_bin("fiona", "coupling-list", "import", str(csv), config=cfg_path).returncode == 0
    settle(cfg)
    import subprocess

    from support.site import BIN

    procs = [
        subprocess.Popen(
            [str(BIN / "populateIncoming"), "--config", str(cfg_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(4)
    ]
    assert all(p.wait(120) == 0 for p in procs)
    assert run_bin("populateIncoming", config=cfg_path).returncode == 0
    got = sorted(
        (t.study_instance_uid, t.transfer_project_name, t.transfer_event_name)
        for t in open_tracker(cfg).transfers()
    )
    assert got == [("7.1", "ALPHA", "baseline"), ("7.2", "ALPHA", ""), ("7.3", "AUTO", "")]


def test_redcap_unreachable_is_one_line(tmp_path: Path, redcap_secrets) -> None:  # type: ignore[no-untyped-def]
    from support.site import free_port

    cfg_path = write_config(
        tmp_path,
        tracker={
            "backend": "redcap",
            "secrets_file": str(redcap_secrets),
            "redcap_url": f"http://127.0.0.1:{free_port()}/api/",
            "retries": 1,
        },
    )
    cfg = load_config(cfg_path)
    cfg.paths.create()
    (cfg.paths.raw_study_dir("1.5") / "1.5.1").mkdir(parents=True)
    cfg.paths.series_json("1.5", "1.5.1").write_text(
        json.dumps({"StudyInstanceUID": "1.5", "SeriesInstanceUID": "1.5.1"})
    )
    settle(cfg)
    r = run_bin("populateIncoming", config=cfg_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "REDCap project Incoming" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_secrets_file_readable_by_others_is_refused(
    tmp_path: Path, redcap_secrets, redcap_server
) -> None:  # type: ignore[no-untyped-def]
    os.chmod(redcap_secrets, 0o644)
    cfg_path = write_config(
        tmp_path,
        tracker={
            "backend": "redcap",
            "secrets_file": str(redcap_secrets),
            "redcap_url": redcap_server.url,
        },
    )
    r = run_bin("populateIncoming", config=cfg_path)
    assert r.returncode == 1 and str(redcap_secrets) in r.stderr and "Traceback" not in r.stderr
