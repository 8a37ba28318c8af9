"""The REDCap double speaks REDCap: PyCap in-process against it, plus its REDCap behaviours."""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

import pytest
import redcap
import requests

from support.redcap_double import TEST_URL, RedcapDouble, mount
from support.redcap_double.fixtures import SUID, post, study_rows
from support.redcap_double.model import CONFIG_DIR, META_KEYS
from support.site import SHARED

UPSTREAM = SHARED / "fixtures" / "fiona-upstream"


def test_pycap_bad_token_and_inprocess_transport(redcap_double, pycap_inprocess):
    bad = redcap.Project(pycap_inprocess, "0" * 32)
    with pytest.raises(redcap.RedcapError, match="You do not have permissions to use the API"):
        bad.export_records()
    good = redcap.Project(pycap_inprocess, redcap_double.token("Routing"))
    good.import_records([{"record_id": "1", "routing_active": "1", "routing_dest_project": "PROJ"}])
    assert good.export_records(raw_or_label="label")[0]["routing_dest_project"] == "PROJ"


# -- project definitions --------------------------------------------------------------------


def read_dictionary(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert len(rows[0]) == 18
    return [dict(zip(META_KEYS, r, strict=True)) for r in rows[1:]]


@pytest.mark.parametrize(
    "ours, upstream, extra",
    [
        (
            "Incoming.csv",
            "Incoming_DataDictionary.csv",
            {"study_arrival_date", "transfer_active_proc_time"},
        ),
        ("DataTransferProjects.csv", "DataTransferProjects.csv", {"project_features"}),
        ("Routing.csv", "Routing.csv", set()),
        ("CouplingList.csv", "CouplingList.csv", {"cl_studyinstanceuid"}),
        ("AutoID.csv", "AutoID.csv", set()),
    ],
)
def test_dictionaries_keep_fiona_names_and_add_the_used_fields(ours, upstream, extra):
    mine = read_dictionary(CONFIG_DIR / ours)
    names = {r["field_name"]: r for r in mine}
    assert extra <= set(names)
    if UPSTREAM.is_dir():
        theirs = read_dictionary(UPSTREAM / upstream)
        # FIONA's test field leave_alone_mrn ("can be deleted") is the one field left out
        assert {r["field_name"] for r in theirs} - set(names) <= {"leave_alone_mrn"}
        assert mine[0]["field_name"] == theirs[0]["field_name"]
        for r in theirs:  # same forms and types, so FIONA's rows import unchanged
            if r["field_name"] in names:
                assert (
                    names[r["field_name"]]["form_name"],
                    names[r["field_name"]]["field_type"],
                ) == (r["form_name"], r["field_type"])


def test_dictionary_choice_codes_fiona_relies_on():
    dtp = {r["field_name"]: r for r in read_dictionary(CONFIG_DIR / "DataTransferProjects.csv")}
    assert [
        c.split(",")[0].strip()
        for c in dtp["project_features"]["select_choices_or_calculations"].split("|")
    ] == ["0", "1", "2"]
    assert "0x0020:0x4000" in dtp["rewrite_ex_tag"]["select_choices_or_calculations"]
    inc = {r["field_name"]: r for r in read_dictionary(CONFIG_DIR / "Incoming.csv")}
    assert inc["transfer_error"]["field_type"] == "checkbox"
    assert [
        c.split(",")[0].strip()
        for c in inc["transfer_error"]["select_choices_or_calculations"].split("|")
    ] == ["1", "2", "3"]
    tmpl = {r["field_name"]: r for r in read_dictionary(CONFIG_DIR / "ProjectTemplate.csv")}
    assert {
        "record_id",
        "first_name",
        "last_name",
        "img_study_instance_uid",
        "img_event_name",
        "img_study_description",
        "img_incoming_accession_number",
    } <= set(tmpl)
    assert tmpl["img_study_instance_uid"]["form_name"] == "imaging"
    specs = json.loads((CONFIG_DIR / "projects.json").read_text())
    assert specs["Incoming"]["repeating"] == ["series", "transfers"]


# -- import validation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "row, message",
    [
        (
            {"transfer_error___4": "1"},
            "not found in the project as real data fields: transfer_error___4",
        ),
        ({"transfer_error": "1"}, "not found in the project as real data fields: transfer_error"),
        (
            {
                "redcap_repeat_instrument": "transfers",
                "redcap_repeat_instance": 1,
                "transfer_date": "2024-13-01 10:00",
            },
            '"transfer_date","2024-13-01 10:00","The value is not a valid date/time',
        ),
        (
            {
                "redcap_repeat_instrument": "series",
                "redcap_repeat_instance": 1,
                "series_num_files": "12a",
            },
            "The value is not a valid integer",
        ),
        (
            {
                "redcap_repeat_instrument": "transfers",
                "redcap_repeat_instance": 2,
                "transfer_error___1": "yes",
            },
            "must be 0 or 1",
        ),
        ({"incoming_studies_complete": "3"}, "not a valid category for incoming_studies_complete"),
        ({"series_instance_uid": "1.2"}, "repeating instrument 'series'"),
        (
            {
                "redcap_repeat_instrument": "series",
                "redcap_repeat_instance": 1,
                "transfer_name": "X",
            },
            "not to the repeating instrument 'series'",
        ),
        (
            {
                "redcap_repeat_instrument": "incoming_studies",
                "redcap_repeat_instance": 1,
                "study_date": "x",
            },
            "is not a repeating instrument",
        ),
        (
            {
                "redcap_repeat_instrument": "series",
                "redcap_repeat_instance": "0",
                "series_date": "x",
            },
            "positive whole number",
        ),
        ({"redcap_repeat_instance": 3, "study_date": "x"}, "redcap_repeat_instrument is blank"),
        (
            {"redcap_event_name": "event_1_arm_1", "study_date": "x"},
            "real data fields: redcap_event_name",
        ),
    ],
)
def test_import_validation_errors(redcap_double, row, message):
    r = post(
        redcap_double,
        content="record",
        type="flat",
        data=json.dumps([{"study_instance_uid": SUID, **row}]),
    )
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]
    assert redcap_double.project("Incoming").records == {}  # all or nothing


def test_import_choice_codes_and_all_or_nothing(redcap_double):
    r = post(
        redcap_double,
        "Routing",
        content="record",
        data=json.dumps(
            [
                {"record_id": "1", "routing_active": "1"},
                {"record_id": "2", "routing_active": "2", "routing_dest_project": "NOPE"},
            ]
        ),
    )
    assert r.status_code == 400
    assert r.json()["error"].splitlines() == [
        '"2","routing_active","2","The value is not a valid category for routing_active"',
        '"2","routing_dest_project","NOPE","The value is not a valid category for routing_dest_project"',
    ]
    assert redcap_double.project("Routing").records == {}
    r = post(redcap_double, "Routing", content="record", data='{"record_id": "1"}')
    assert r.status_code == 400 and "JSON array" in r.json()["error"]


def test_import_overwrite_behaviour_and_return_content(redcap_double):
    assert post(redcap_double, content="record", data=json.dumps(study_rows())).json() == {
        "count": 1
    }
    blank = [{"study_instance_uid": SUID, "study_description": ""}]
    assert post(
        redcap_double, content="record", data=json.dumps(blank), returnContent="ids"
    ).json() == [SUID]
    stored = redcap_double.project("Incoming").records[SUID][("", "", None)]
    assert stored["study_description"] == "MR brain"  # normal: blanks are ignored
    r = post(
        redcap_double,
        content="record",
        data=json.dumps(blank),
        overwriteBehavior="overwrite",
        returnContent="nothing",
    )
    assert r.status_code == 200 and r.content == b""
    assert "study_description" not in stored  # overwrite: blanks erase
    # an ID-only row is accepted and stores nothing
    assert post(
        redcap_double, content="record", data=json.dumps([{"study_instance_uid": "9.9"}])
    ).json() == {"count": 1}
    assert "9.9" not in redcap_double.project("Incoming").records


def test_longitudinal_import_rules(redcap_double):
    rows = [{"record_id": "P1", "first_name": "P1"}]  # no event: REDCap puts it in the first event
    assert post(redcap_double, "PROJ", content="record", data=json.dumps(rows)).json() == {
        "count": 1
    }
    assert ("event_1_arm_1", "", None) in redcap_double.project("PROJ").records["P1"]
    r = post(
        redcap_double,
        "PROJ",
        content="record",
        data=json.dumps(
            [{"record_id": "P1", "redcap_event_name": "visit_11_arm_1", "first_name": "x"}]
        ),
    )
    assert r.json() == {
        "error": "The following values of redcap_event_name are invalid: visit_11_arm_1"
    }
    r = post(
        redcap_double,
        "PROJ",
        content="record",
        data=json.dumps(
            [
                {
                    "record_id": "P1",
                    "redcap_event_name": "follow_up_arm_1",
                    "redcap_repeat_instrument": "imaging",
                    "redcap_repeat_instance": 1,
                    "img_event_name": "x",
                }
            ]
        ),
    )
    assert (
        r.status_code == 400
        and "is not a repeating instrument in event 'follow_up_arm_1'" in r.json()["error"]
    )
    r = post(
        redcap_double,
        "PROJ",
        content="record",
        data=json.dumps(
            [{"record_id": "P1", "redcap_event_name": "follow_up_arm_1", "img_event_name": "x"}]
        ),
    )
    assert (
        "The form 'imaging' has not been designated to the event 'follow_up_arm_1'"
        in r.json()["error"]
    )


# -- export features ------------------------------------------------------------------------


def load_transfers(double: RedcapDouble) -> None:
    rows = study_rows("1.1", 1) + study_rows("1.2", 1) + study_rows("1.3", 0)
    rows += [
        {
            "study_instance_uid": "1.1",
            "redcap_repeat_instrument": "transfers",
            "redcap_repeat_instance": 1,
            "transfer_project_name": "PROJ",
            "transfer_name": "P001",
            "transfer_error___2": "1",
        },
        {
            "study_instance_uid": "1.2",
            "redcap_repeat_instrument": "transfers",
            "redcap_repeat_instance": 1,
            "transfer_project_name": "DEMO",
            "transfer_name": "D001",
        },
        {
            "study_instance_uid": "1.2",
            "redcap_repeat_instrument": "transfers",
            "redcap_repeat_instance": 2,
            "transfer_project_name": "PROJ",
            "transfer_name": "P002",
            "transfer_event_name": "baseline",
        },
    ]
    assert post(double, content="record", data=json.dumps(rows)).json() == {"count": 3}


@pytest.mark.parametrize(
    "logic, expected",
    [
        ('[transfer_project_name]="PROJ"', [("1.1", 1), ("1.2", 2)]),
        ("[transfer_project_name] = 'PROJ' and [transfer_event_name] <> ''", [("1.2", 2)]),
        (
            '([transfer_project_name]="DEMO" or [transfer_name]="P001") AND [transfers_complete]="0"',
            [("1.1", 1), ("1.2", 1)],
        ),
        ("[transfer_error(2)] = '1'", [("1.1", 1)]),
        ('[transfer_project_name] != "PROJ" and [redcap_repeat_instance_x] = 1', None),
        ("datediff([transfer_date], 'today', 'd') > 1", None),
        ("[transfer_error] = '1'", None),
        ('[study_instance_uid] = "1.3" or [transfer_name] = "P002"', [("1.2", 2), ("1.3", "")]),
    ],
)
def test_filter_logic_subset(redcap_double, logic, expected):
    load_transfers(redcap_double)
    r = post(
        redcap_double,
        content="record",
        filterLogic=logic,
        **{"fields[0]": "study_instance_uid", "forms[0]": "transfers"},
    )
    if expected is None:
        assert r.status_code == 400 and "filterLogic" in r.json()["error"]
        return
    assert r.status_code == 200, r.text
    assert [(x["study_instance_uid"], x["redcap_repeat_instance"]) for x in r.json()] == expected


def test_array_forms_labels_eav_and_csv(redcap_double):
    load_transfers(redcap_double)
    comma = post(redcap_double, content="record", records="1.1,1.3", fields="study_instance_uid")
    brackets = post(
        redcap_double,
        content="record",
        **{"records[]": ["1.1", "1.3"], "fields[]": "study_instance_uid"},
    )
    indexed = post(
        redcap_double,
        content="record",
        **{"records[1]": "1.3", "records[0]": "1.1", "fields[0]": "study_instance_uid"},
    )
    assert comma.json() == brackets.json() == indexed.json()
    assert {r["study_instance_uid"] for r in comma.json()} == {"1.1", "1.3"}
    labelled = post(
        redcap_double,
        content="record",
        rawOrLabel="label",
        records="1.1",
        fields="study_instance_uid,transfer_error",
    )
    assert [r["redcap_repeat_instrument"] for r in labelled.json()] == [
        "",
        "Transfers",
    ]  # no series row
    tr = labelled.json()[1]
    assert (tr["transfer_error___1"], tr["transfer_error___2"]) == ("Unchecked", "Checked")
    eav = post(
        redcap_double, content="record", type="eav", records="1.1", fields="transfer_error"
    ).json()
    assert {
        "record": "1.1",
        "redcap_repeat_instrument": "transfers",
        "redcap_repeat_instance": 1,
        "field_name": "transfer_error",
        "value": "2",
    } in eav
    text = post(redcap_double, content="record", format="csv", records="1.3").text
    assert text.splitlines()[0].startswith(
        "study_instance_uid,redcap_repeat_instrument,redcap_repeat_instance,"
    )
    ts = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(time.time() + 3600))
    assert post(redcap_double, content="record", dateRangeBegin=ts).json() == []


# -- errors, auth, log ----------------------------------------------------------------------


def test_error_bodies_follow_return_format(redcap_double):
    r = post(redcap_double, content="event", returnFormat="xml")
    assert (
        r.status_code == 400
        and "<error>You cannot export events for classic projects</error>" in r.text
    )
    r = post(redcap_double, content="arm", returnFormat="csv")
    assert r.text == "ERROR: You cannot export arms for classic projects"
    r = post(redcap_double, content="formEventMapping")
    assert r.json() == {"error": "You cannot export form/event mappings for classic projects"}
    r = post(redcap_double, content="nonsense")
    assert r.json() == {"error": 'The value of the parameter "content" is not valid'}
    assert post(redcap_double, content="report").status_code == 501
    r = post(redcap_double, content="record", **{"fields[0]": "no_such_field"})
    assert r.status_code == 400 and "no_such_field" in r.json()["error"]


def test_tokens_and_rights(redcap_double):
    session = requests.Session()
    mount(session, redcap_double.app)
    assert session.post(TEST_URL, data={"content": "version"}).status_code == 401
    r = session.post(
        TEST_URL, data={"token": "A" * 32, "content": "version", "returnFormat": "json"}
    )
    assert r.status_code == 403 and r.json() == {
        "error": "You do not have permissions to use the API"
    }
    reader = redcap_double.add_token("Incoming", rights={"export"})
    r = session.post(
        TEST_URL,
        data={
            "token": reader,
            "content": "record",
            "format": "json",
            "returnFormat": "json",
            "data": json.dumps(study_rows()),
        },
    )
    assert r.status_code == 403
    r = session.post(TEST_URL, data={"token": reader, "content": "version"})
    assert r.status_code == 200 and r.text == redcap_double.version


def test_call_log_keeps_writes_but_not_tokens(redcap_double):
    post(redcap_double, content="record", data=json.dumps(study_rows()))
    post(redcap_double, content="record", **{"records[0]": SUID})
    post(
        redcap_double,
        content="record",
        data=json.dumps([{"study_instance_uid": SUID, "bogus": "1"}]),
    )
    token = redcap_double.token("Incoming")
    calls = redcap_double.calls_for("record", project="Incoming")
    assert [c.status for c in calls] == [200, 200, 400]
    assert all(c.token_tail == token[-4:] for c in calls)
    assert all(token not in json.dumps(c.params) and "data" not in c.params for c in calls)
    assert calls[1].params["records[0]"] == SUID and calls[1].data is None
    writes = redcap_double.writes("Incoming")
    assert len(writes) == 1 and writes[0].data == study_rows()
    assert "bogus" in calls[2].error


def test_repeating_event_csv_import_and_multipart_in_process(redcap_double, pycap_inprocess):
    spec = {
        "dictionary": "ProjectTemplate.csv",
        "events": [
            {"event_name": "Screening", "forms": ["participant"]},
            {"event_name": "Scan", "forms": ["imaging"]},
        ],
        "repeating": [{"event": "scan_arm_1", "form": ""}],
    }
    double = redcap_double
    double.add_project("VISITS", spec=spec)
    data = (
        "record_id,redcap_event_name,redcap_repeat_instrument,redcap_repeat_instance,first_name,img_event_name\n"
        "V1,screening_arm_1,,,Ann,\n"
        "V1,scan_arm_1,,1,,baseline\n"
        "V1,scan_arm_1,,2,,followup\n"
    )
    r = post(double, "VISITS", content="record", format="csv", data=data)
    assert r.json() == {"count": 1}, r.text
    rows = post(double, "VISITS", content="record").json()
    assert [
        (
            x["redcap_event_name"],
            x["redcap_repeat_instrument"],
            x["redcap_repeat_instance"],
            x["img_event_name"],
        )
        for x in rows
    ] == [
        ("screening_arm_1", "", "", ""),
        ("scan_arm_1", "", 1, "baseline"),
        ("scan_arm_1", "", 2, "followup"),
    ]
    assert post(double, "VISITS", content="repeatingFormsEvents").json() == [
        {"event_name": "scan_arm_1", "form_name": "", "custom_form_label": ""}
    ]
    assert (
        post(
            double,
            "VISITS",
            content="record",
            action="delete",
            records="V1",
            event="scan_arm_1",
            repeat_instance="2",
        ).json()
        == 1
    )
    assert len(post(double, "VISITS", content="record").json()) == 2
    assert (
        post(
            double, "VISITS", content="record", action="rename", record="V1", new_record_name="V2"
        ).json()
        == 1
    )
    assert {x["record_id"] for x in post(double, "VISITS", content="record").json()} == {"V2"}
    # multipart through the in-process adapter (PyCap's file upload)
    dtp = redcap.Project(pycap_inprocess, double.token("DataTransferProjects"))
    dtp.import_records([{"record_id": "X"}, {"record_id": "X", "project_name": "X"}])
    dtp.import_file("X", "leave_alone_current_rek", "a.txt", io.BytesIO(b"hello"))
    assert dtp.export_file("X", "leave_alone_current_rek") == (b"hello", {"name": "a.txt"})
    session = requests.Session()
    mount(session, double.app)
    r = session.post(
        TEST_URL,
        data={
            "token": double.token("DataTransferProjects"),
            "content": "file",
            "action": "import",
            "record": "X",
            "field": "project_name",
            "returnFormat": "json",
        },
        files={"file": ("a.txt", b"x")},
    )
    assert r.status_code == 400 and "not a file upload field" in r.json()["error"]
    assert [c.data for c in double.writes("DataTransferProjects")][-1] == {
        "file": "a.txt",
        "bytes": 5,
    }
