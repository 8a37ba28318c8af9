"""The REDCap double over HTTP: PyCap (unmodified) against it, faults on a real socket, and the
`python -m tests.support.redcap_double` server."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time

import pytest
import redcap
import requests

from support.redcap_double.fixtures import SUID, study_rows
from support.site import ROOT

# -- PyCap over HTTP on loopback ------------------------------------------------------------


def test_pycap_metadata_and_structure_over_http(redcap_server):
    double = redcap_server.double
    incoming = redcap.Project(redcap_server.url, double.token("Incoming"))
    names = [m["field_name"] for m in incoming.export_metadata()]
    assert names[0] == incoming.def_field == "study_instance_uid"
    assert {"study_arrival_date", "transfer_active_proc_time", "transfer_error"} <= set(names)
    assert incoming.is_longitudinal is False
    assert {r["form_name"] for r in incoming.export_repeating_instruments_events()} == {
        "series",
        "transfers",
    }
    assert [i["instrument_name"] for i in incoming.export_instruments()] == [
        "incoming_studies",
        "series",
        "transfers",
    ]
    assert {
        f["export_field_name"] for f in incoming.export_field_names(field="transfer_error")
    } == {"transfer_error___1", "transfer_error___2", "transfer_error___3"}
    assert str(incoming.export_version()) == double.version
    assert incoming.export_project_info()["has_repeating_instruments_or_events"] == 1

    proj = redcap.Project(redcap_server.url, double.token("PROJ"))
    assert proj.is_longitudinal is True
    assert [e["unique_event_name"] for e in proj.export_events()] == [
        "event_1_arm_1",
        "follow_up_arm_1",
    ]
    assert proj.export_arms() == [{"arm_num": 1, "name": "Arm 1"}]
    assert {
        "arm_num": 1,
        "unique_event_name": "event_1_arm_1",
        "form": "imaging",
    } in proj.export_instrument_event_mappings()


def test_pycap_import_and_export_records_over_http(redcap_server):
    incoming = redcap.Project(redcap_server.url, redcap_server.double.token("Incoming"))
    assert incoming.import_records(study_rows()) == {"count": 1}
    rows = incoming.export_records()
    assert len(rows) == 3
    base, s1, s2 = rows
    assert base["redcap_repeat_instrument"] == "" and base["redcap_repeat_instance"] == ""
    assert base["study_description"] == "MR brain" and base["incoming_studies_complete"] == "2"
    assert s1["redcap_repeat_instrument"] == "series" and s1["redcap_repeat_instance"] == 1
    assert s2["redcap_repeat_instance"] == 2 and s2["series_num_files"] == "20"
    assert s1["study_description"] == ""  # instance rows carry only their form
    assert all(
        isinstance(v, str) for r in rows for k, v in r.items() if k != "redcap_repeat_instance"
    )
    # PyCap backfills the record ID into a field selection
    only = incoming.export_records(records=[SUID], fields=["series_num_files"])
    assert [r["series_num_files"] for r in only] == ["", "10", "20"]
    assert all(r["study_instance_uid"] == SUID for r in only)
    # import errors come back as {"error": ...}, which PyCap raises
    with pytest.raises(
        redcap.RedcapError, match="not found in the project as real data fields: foo"
    ):
        incoming.import_records([{"study_instance_uid": SUID, "foo": "1"}])
    assert incoming.delete_records([SUID]) == 1
    assert incoming.export_records() == []


def test_pycap_longitudinal_and_files_over_http(redcap_server):
    double = redcap_server.double
    proj = redcap.Project(redcap_server.url, double.token("PROJ"))
    rows = [
        {
            "record_id": "P001",
            "redcap_event_name": "event_1_arm_1",
            "first_name": "P001",
            "last_name": "P001",
        },
        {
            "record_id": "P001",
            "redcap_event_name": "event_1_arm_1",
            "redcap_repeat_instrument": "imaging",
            "redcap_repeat_instance": 1,
            "img_study_instance_uid": "2.25.1",
            "img_event_name": "baseline",
        },
    ]
    assert proj.import_records(rows) == {"count": 1}
    out = proj.export_records(events=["event_1_arm_1"])
    assert [
        (r["redcap_event_name"], r["redcap_repeat_instrument"], r["redcap_repeat_instance"])
        for r in out
    ] == [("event_1_arm_1", "", ""), ("event_1_arm_1", "imaging", 1)]

    dtp = redcap.Project(redcap_server.url, double.token("DataTransferProjects"))
    dtp.import_records([{"record_id": "PROJ", "project_name": "PROJ", "project_features___1": "1"}])
    dtp.import_file("PROJ", "leave_alone_current_rek", "approval.pdf", io.BytesIO(b"%PDF-1.4 test"))
    content, headers = dtp.export_file("PROJ", "leave_alone_current_rek")
    assert content == b"%PDF-1.4 test" and headers["name"] == "approval.pdf"
    assert (
        dtp.export_records(fields=["leave_alone_current_rek"])[0]["leave_alone_current_rek"]
        == "approval.pdf"
    )
    dtp.delete_file("PROJ", "leave_alone_current_rek")
    with pytest.raises(redcap.RedcapError, match="no file"):
        dtp.export_file("PROJ", "leave_alone_current_rek")
    autoid = redcap.Project(redcap_server.url, double.token("AutoID"))
    assert autoid.generate_next_record_name() == "1"
    autoid.import_records([{"record_id": "1", "autoid_project_name": "PROJ", "autoid_method": "1"}])
    assert autoid.generate_next_record_name() == "2"


@pytest.mark.slow
def test_faults_over_a_real_socket(redcap_server):
    double = redcap_server.double
    data = {"token": double.token("Incoming"), "content": "version"}
    double.drop_next(1)
    with pytest.raises(requests.ConnectionError):
        requests.post(redcap_server.url, data=data, timeout=5)
    double.fail_next(1, status=503)
    assert requests.post(redcap_server.url, data=data, timeout=5).status_code == 503
    double.slow_next(1, seconds=1.0)
    with pytest.raises(requests.ReadTimeout):
        requests.post(redcap_server.url, data=data, timeout=0.2)
    assert requests.post(redcap_server.url, data=data, timeout=5).text == double.version
    deadline = time.monotonic() + 5
    while len(double.calls) < 4 and time.monotonic() < deadline:  # the slow call ends late
        time.sleep(0.05)
    assert [c.fault for c in double.calls] == ["drop", "error", None, None]


def test_command_line_server(tmp_path):
    token = "0123456789ABCDEF0123456789ABCDEF"
    secrets = tmp_path / "secrets.json"
    secrets.write_text(json.dumps({"tokens": {"Incoming": token, "NEWPROJ": "F" * 32}}))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.redcap_double",
            "--port",
            str(port),
            "--tokens",
            str(secrets),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        url = f"http://127.0.0.1:{port}/api/"
        for _ in range(100):
            try:
                r = requests.post(
                    url, data={"token": "F" * 32, "content": "project", "format": "json"}, timeout=2
                )
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        else:
            pytest.fail("server did not start: " + proc.stderr.read())
        assert r.json()["is_longitudinal"] == 1  # not in projects.json: a research project
        assert (
            requests.post(url, data={"token": token, "content": "version"}, timeout=2).status_code
            == 200
        )
    finally:
        proc.terminate()
        proc.wait(timeout=10)
