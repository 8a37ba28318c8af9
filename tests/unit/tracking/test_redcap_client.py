"""RedcapClient against the REDCap double (in-process transport), and the secrets file."""

from __future__ import annotations

import json
import os
import shutil
import traceback

import pytest
import requests

from fionagw.config import TrackerSettings
from fionagw.tracking.redcap_api import RedcapClient, RedcapError, error_message
from fionagw.tracking.secrets import SecretsError, load_tokens, token_for
from support.redcap_double import TEST_URL
from support.redcap_double.fixtures import incoming_study as study
from support.site import ROOT

# -- records --------------------------------------------------------------------------------


def test_chunked_export_of_all_records(redcap_double, redcap_client):
    client = redcap_client(chunk_size=3)
    rows = [r for i in range(7) for r in study(f"1.{i}", 2)]
    assert client.import_records(rows) == 7
    redcap_double.calls.clear()
    out = client.export_records()
    assert len(out) == 21 and {r["study_instance_uid"] for r in out} == {f"1.{i}" for i in range(7)}
    exports = redcap_double.calls_for("record")
    # first the record IDs (ID field only), then the rows three records at a time
    assert (
        exports[0].params["fields[0]"] == "study_instance_uid"
        and "records[0]" not in exports[0].params
    )
    sizes = [sum(k.startswith("records[") for k in c.params) for c in exports[1:]]
    assert sizes == [3, 3, 1]
    for c in exports:
        assert (
            c.params["format"],
            c.params["type"],
            c.params["rawOrLabel"],
            c.params["exportCheckboxLabel"],
        ) == ("json", "flat", "raw", "false")


def test_export_selected_records_and_fields(redcap_double, redcap_client):
    client = redcap_client(chunk_size=2)
    client.import_records(study("2.1") + study("2.2") + study("2.3"))
    out = client.export_records(records=["2.3", "2.1", "2.3"], fields=["series_num_files"])
    assert [
        (r["study_instance_uid"], r["redcap_repeat_instance"], r["series_num_files"]) for r in out
    ] == [("2.3", "", ""), ("2.3", 1, "5"), ("2.1", "", ""), ("2.1", 1, "5")]
    assert client.export_records(records=[]) == []
    assert client.export_records(
        forms=["incoming_studies"], filter_logic='[study_instance_uid] = "2.2"'
    ) == [
        {
            "study_instance_uid": "2.2",
            "redcap_repeat_instrument": "",
            "redcap_repeat_instance": "",
            "study_institution_name": "",
            "study_aetitle_sender": "",
            "study_aetitle_addressed": "",
            "study_patient_name": "",
            "study_patient_id": "",
            "study_description": "CT chest",
            "study_date": "",
            "study_time": "",
            "study_accession_number": "",
            "study_arrival_date": "",
            "incoming_studies_complete": "2",
        }
    ]


def test_import_counts_records_and_chunks_by_record(redcap_double, redcap_client):
    client = redcap_client(chunk_size=2)
    rows = study("3.1", 3) + study("3.2", 1) + study("3.3", 2)
    rows = [dict(sorted(r.items())) for r in rows]  # the record ID need not come first
    assert client.import_records(rows) == 3
    imports = redcap_double.writes("Incoming")
    assert [sorted({r["study_instance_uid"] for r in c.data}) for c in imports] == [
        ["3.1", "3.2"],
        ["3.3"],
    ]
    assert all(
        c.params["returnContent"] == "count" and c.params["overwriteBehavior"] == "normal"
        for c in imports
    )
    assert client.import_records([]) == 0


def test_repeating_instances_series_and_transfers(redcap_double, redcap_client):
    client = redcap_client()
    client.import_records(study("4.1", 2))
    rows = client.export_records(records=["4.1"], fields=["series_instance_uid"])
    next_series = (
        max(r["redcap_repeat_instance"] for r in rows if r["redcap_repeat_instrument"] == "series")
        + 1
    )
    assert next_series == 3
    assert (
        client.import_records(
            [
                {
                    "study_instance_uid": "4.1",
                    "redcap_repeat_instrument": "series",
                    "redcap_repeat_instance": next_series,
                    "series_instance_uid": "4.1.3",
                    "series_complete": "2",
                },
                {
                    "study_instance_uid": "4.1",
                    "redcap_repeat_instrument": "transfers",
                    "redcap_repeat_instance": 1,
                    "transfer_requested_date": "2024-06-01 12:00",
                    "transfer_project_name": "PROJ",
                    "transfer_name": "PROJ001",
                    "transfer_event_name": "baseline",
                },
            ]
        )
        == 1
    )
    # the send step writes its result into the same instance
    client.import_records(
        [
            {
                "study_instance_uid": "4.1",
                "redcap_repeat_instrument": "transfers",
                "redcap_repeat_instance": 1,
                "transfer_date": "2024-06-01 12:05",
                "transfer_mapped_uid": "2.25.99",
                "transfer_error___1": "0",
                "transfer_error___2": "1",
                "transfer_error___3": "1",
                "transfer_active_proc_time": "12.5",
                "transfers_complete": "1",
            }
        ]
    )
    transfers = client.export_records(
        filter_logic='[transfer_project_name] = "PROJ"',
        fields=["transfer_name", "transfer_date", "transfer_error"],
    )
    assert transfers == [
        {
            "study_instance_uid": "4.1",
            "redcap_repeat_instrument": "transfers",
            "redcap_repeat_instance": 1,
            "transfer_name": "PROJ001",
            "transfer_date": "2024-06-01 12:05",
            "transfer_error___1": "0",
            "transfer_error___2": "1",
            "transfer_error___3": "1",
        }
    ]
    series = [
        r
        for r in client.export_records(records=["4.1"])
        if r["redcap_repeat_instrument"] == "series"
    ]
    assert [r["redcap_repeat_instance"] for r in series] == [1, 2, 3]


def test_longitudinal_project_and_structure_calls(redcap_double, redcap_client):
    proj = redcap_client("PROJ")
    assert [e["unique_event_name"] for e in proj.export_events()] == [
        "event_1_arm_1",
        "follow_up_arm_1",
    ]
    assert proj.record_id_field == "record_id"
    proj.import_records(
        [
            {
                "record_id": "P9",
                "redcap_event_name": "event_1_arm_1",
                "redcap_repeat_instrument": "imaging",
                "redcap_repeat_instance": 1,
                "img_study_instance_uid": "2.25.7",
                "img_incoming_accession_number": "ACC7",
            }
        ]
    )
    rows = proj.export_records(records=["P9"], events=["event_1_arm_1"])
    assert (
        rows[1]["img_incoming_accession_number"] == "ACC7"
        and rows[1]["redcap_event_name"] == "event_1_arm_1"
    )
    incoming = redcap_client("Incoming")
    assert incoming.export_events() == [] and incoming.export_form_event_mapping() == []
    assert incoming.export_version() == redcap_double.version
    assert incoming.export_project_info()["is_longitudinal"] == 0
    assert {r["form_name"] for r in incoming.export_repeating_forms_events()} == {
        "series",
        "transfers",
    }
    autoid = redcap_client("AutoID")
    assert autoid.generate_next_record_name() == "1"
    assert incoming.delete_records([]) == 0
    incoming.import_records(study("5.1") + study("5.2"))
    assert incoming.delete_records(["5.1"]) == 1
    assert incoming.delete_records(["5.2"], instrument="series", repeat_instance=1) == 1
    assert [r["redcap_repeat_instrument"] for r in incoming.export_records()] == [""]


# -- retries --------------------------------------------------------------------------------


def test_retries_through_500s_then_completes(redcap_double, redcap_client):
    sleeps: list[float] = []
    client = redcap_client(retries=4, backoff_s=0.5, sleep=sleeps.append)
    redcap_double.fail_next(3, status=500)
    assert client.import_records(study("6.1")) == 1
    assert sleeps == [0.5, 1.0, 2.0]  # exponential backoff
    assert [c.status for c in redcap_double.calls] == [500, 500, 500, 200]
    assert len(redcap_double.writes()) == 1  # written exactly once


def test_retries_through_dropped_connections_and_timeouts(redcap_double, redcap_client):
    client = redcap_client(retries=3, timeout=0.2)
    client.import_records(study("7.1"))
    redcap_double.calls.clear()
    redcap_double.drop_next(1)
    redcap_double.slow_next(1, seconds=5)
    redcap_double.drop_next(1, after=True)  # the import happens, the answer is lost
    assert client.import_records(study("7.2")) == 1
    assert [c.fault for c in redcap_double.calls] == ["drop", "timeout", None, "drop", None]
    assert len(client.export_records()) == 4  # the retried import did not duplicate anything


def test_retries_are_bounded(redcap_double, redcap_client):
    client = redcap_client(retries=2)
    redcap_double.fail_next(10, status=502, body="<html><body>Bad Gateway</body></html>")
    with pytest.raises(RedcapError) as info:
        client.export_version()
    assert str(info.value) == (
        "REDCap project Incoming: export version: 502 "
        "(no error message in the response) (gave up after 3 attempts)"
    )
    assert len(redcap_double.calls) == 3
    redcap_double.clear_faults()
    redcap_double.drop_next(5)
    with pytest.raises(
        RedcapError,
        match=r"^REDCap project Incoming: export version: connection failed: "
        r".*\(gave up after 3 attempts\)$",
    ):
        client.export_version()


def test_4xx_is_not_retried_and_hides_values(redcap_double, redcap_client):
    client = redcap_client(retries=4)
    bad = [
        {"study_instance_uid": "8.1", "study_description": "x"},
        {
            "study_instance_uid": "8.1",
            "redcap_repeat_instrument": "transfers",
            "redcap_repeat_instance": 1,
            "transfer_date": "1.2.3.4.5 secret",
        },
        {
            "study_instance_uid": "8.2",
            "redcap_repeat_instrument": "transfers",
            "redcap_repeat_instance": 1,
            "transfer_date": "yesterday",
        },
    ]
    with pytest.raises(RedcapError) as info:
        client.import_records(bad)
    assert len(redcap_double.calls) == 1
    text = str(info.value)
    assert text.startswith(
        "REDCap project Incoming: import records: 400 transfer_date: "
        "The value is not a valid date/time"
    )
    assert "(2 rows)" in text
    assert (
        "8.1" not in text and "secret" not in text and "yesterday" not in text and "\n" not in text
    )
    with pytest.raises(
        RedcapError, match="not found in the project as real data fields: oops"
    ) as info:
        client.import_records([{"study_instance_uid": "8.3", "oops": "1"}])
    assert info.value.status == 400 and len(redcap_double.calls) == 2


def test_bad_token_one_line_error_naming_the_project(redcap_double, redcap_session):
    token = "0123456789abcdef0123456789ABCDEF"
    client = RedcapClient(TEST_URL, token, "Incoming", session=redcap_session, sleep=lambda s: None)
    with pytest.raises(RedcapError) as info:
        client.export_records()
    err = info.value
    assert (
        str(err)
        == "REDCap project Incoming: export records: 403 You do not have permissions to use the API"
    )
    assert err.__cause__ is None and err.__suppress_context__
    shown = "".join(traceback.format_exception_only(type(err), err))
    assert token not in shown and "Traceback" not in shown and shown.count("\n") == 1
    assert token not in repr(client)
    assert len(redcap_double.calls) == 1  # 403 is not retried


def test_error_message_parsing():
    assert error_message(b'{"error": "You cannot export events for classic projects"}') == (
        "You cannot export events for classic projects"
    )
    assert error_message('<?xml version="1.0"?><hash><error>A &amp; B</error></hash>') == "A & B"
    assert error_message("ERROR: no way") == "no way"
    assert error_message("<html>oops</html>", "text/html") == "(no error message in the response)"


# -- TLS and configuration ------------------------------------------------------------------


def test_tls_verified_by_default(redcap_double, redcap_session, tmp_path):
    token = redcap_double.token("Incoming")
    default = RedcapClient(TEST_URL, token, "Incoming", session=redcap_session)
    assert default.verify is True and default.session.verify is True
    default.export_version()
    seen = redcap_session.redcap_adapter.verify_seen[-1]
    assert seen is True or (
        isinstance(seen, str) and os.path.exists(seen)
    )  # requests may put the CA bundle
    assert RedcapClient("https://x.example/api/", token, "Incoming").session.verify is True
    ca = tmp_path / "ca.pem"
    with_ca = RedcapClient(TEST_URL, token, "Incoming", verify=ca, session=requests.Session())
    assert with_ca.session.verify == str(ca)
    settings = TrackerSettings(
        backend="redcap",
        redcap_url="https://x.example/api",
        ca_bundle=ca,
        timeout_s=7.0,
        retries=2,
        chunk_size=9,
    )
    made = RedcapClient.from_settings(settings, {"Incoming": token}, "Incoming")
    assert (made.url, made.verify, made.timeout, made.retries, made.chunk_size) == (
        "https://x.example/api/",
        str(ca),
        7.0,
        2,
        9,
    )
    assert (
        RedcapClient.from_settings(
            TrackerSettings(redcap_url="https://x.example/api/"), {"Incoming": token}, "Incoming"
        ).verify
        is True
    )
    with pytest.raises(SecretsError, match="tokens.Routing: missing"):
        RedcapClient.from_settings(settings, {"Incoming": token}, "Routing")
    with pytest.raises(ValueError, match="not 32 hexadecimal") as info:
        RedcapClient(TEST_URL, "secret-but-short", "Incoming")
    assert "secret-but-short" not in str(info.value)


# -- secrets file ---------------------------------------------------------------------------


def test_secrets_loaded_when_private(redcap_secrets, redcap_double):
    tokens = load_tokens(redcap_secrets)
    assert set(tokens) >= {
        "Incoming",
        "DataTransferProjects",
        "Routing",
        "CouplingList",
        "AutoID",
    }
    assert token_for(tokens, "PROJ") == redcap_double.token("PROJ")


def test_secrets_mode_0644_refused(redcap_secrets):
    os.chmod(redcap_secrets, 0o644)
    with pytest.raises(SecretsError) as info:
        load_tokens(redcap_secrets)
    text = str(info.value)
    assert (
        text.startswith(f"{redcap_secrets}: mode 0644 lets group or others access")
        and "\n" not in text
    )
    os.chmod(redcap_secrets, 0o640)
    with pytest.raises(SecretsError, match="mode 0640"):
        load_tokens(redcap_secrets)
    os.chmod(redcap_secrets, 0o400)
    assert load_tokens(redcap_secrets)


@pytest.mark.parametrize(
    "content, problem",
    [
        ('{"tokens": {"Incoming": "ABC"', "invalid JSON at line 1"),
        ('["not", "an", "object"]', 'expected an object with a "tokens" object'),
        (
            '{"tokens": {"Incoming": "XYZXYZXYZXYZXYZXYZXYZXYZXYZXYZXY"}}',
            "tokens.Incoming: not a REDCap API token",
        ),
        (
            '{"tokens": {"Incoming": "0123456789ABCDEF0123456789ABCDE"}}',
            "tokens.Incoming: not a REDCap API token",
        ),
        ('{"tokens": {"Incoming": 12}}', "tokens.Incoming: not a REDCap API token"),
    ],
)
def test_secrets_bad_content_refused(tmp_path, content, problem):
    path = tmp_path / "secrets.json"
    path.write_text(content)
    path.chmod(0o600)
    with pytest.raises(SecretsError) as info:
        load_tokens(path)
    assert str(info.value).startswith(f"{path}: ") and problem in str(info.value)
    assert "XYZXYZ" not in str(info.value) and "0123456789" not in str(info.value)


def test_secrets_missing_file_and_example(tmp_path):
    with pytest.raises(SecretsError, match="file not found"):
        load_tokens(tmp_path / "nope.json")
    copy = tmp_path / "secrets.json"
    shutil.copy(ROOT / "config" / "secrets.example.json", copy)
    copy.chmod(0o600)
    tokens = load_tokens(copy)
    assert set(tokens) == {
        "Incoming",
        "DataTransferProjects",
        "Routing",
        "CouplingList",
        "AutoID",
    }
    assert json.loads((ROOT / "config" / "secrets.example.json").read_text())["_comment"]


def test_tls_failure_and_redirect_are_not_retried(redcap_double, redcap_session, monkeypatch):
    client = RedcapClient(
        TEST_URL,
        redcap_double.token("Incoming"),
        "Incoming",
        session=redcap_session,
        sleep=lambda s: None,
    )
    calls = []

    def refuse(*args, **kwargs):
        calls.append(kwargs["verify"])
        raise requests.exceptions.SSLError("certificate verify failed: self-signed certificate")

    monkeypatch.setattr(redcap_session, "post", refuse)
    with pytest.raises(
        RedcapError, match="export version: TLS failed: SSLError: certificate verify failed"
    ):
        client.export_version()
    assert calls == [True]
    monkeypatch.undo()
    redcap_double.fail_next(1, status=302, body="")
    with pytest.raises(RedcapError, match="302 redirected to"):
        client.export_version()
    assert len(redcap_double.calls) == 1
