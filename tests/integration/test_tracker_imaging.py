"""The imaging mirror: each sent study becomes one imaging record of the participant in the
project (FIONA's populateProjects: the project's own REDCap, repeating form ``imaging`` in
event_1_arm_1); a resend updates its record instead of adding one."""

from __future__ import annotations

from pathlib import Path

import pytest

from fionagw.config import load_config
from fionagw.tracking.factory import open_tracker
from fionagw.tracking.records import ImagingRecord
from fionagw.tracking.redcap_api import RedcapClient
from support.redcap_double.fixtures import add_research_project
from support.site import write_config

PROJECTS = "projects:\n  ALPHA:\n    participant_id: '^ALPHA[0-9]{3}$'\n"


@pytest.fixture(params=["local", "redcap"])
def tracker(request, tmp_path: Path):  # type: ignore[no-untyped-def]
    projects = tmp_path / "projects.yml"
    projects.write_text(PROJECTS)
    settings: dict = {"backend": request.param, "projects_file": str(projects)}
    if request.param == "redcap":
        server = request.getfixturevalue("redcap_server")
        settings.update(
            redcap_url=server.url, secrets_file=str(request.getfixturevalue("redcap_secrets"))
        )
        add_research_project(server, "ALPHA", "^ALPHA[0-9]{3}$", own_redcap=True)
    t = open_tracker(load_config(write_config(tmp_path, tracker=settings)))
    yield t
    t.close()


def test_one_record_per_sent_study_and_resend_updates_it(tracker) -> None:  # type: ignore[no-untyped-def]
    project = tracker.projects()["ALPHA"]
    first = ImagingRecord("1.3.6.1.4.1.45037.11", "baseline", "20260301", "MR brain")
    tracker.record_imaging(project, "ALPHA001", first)
    tracker.record_imaging(
        project,
        "ALPHA001",
        ImagingRecord("1.3.6.1.4.1.45037.11", "baseline", "20260301", "MR brain (resent)"),
    )
    tracker.record_imaging(
        project,
        "ALPHA001",
        ImagingRecord("1.3.6.1.4.1.45037.22", "followup", "20260901", "MR brain"),
    )
    tracker.record_imaging(project, "ALPHA002", ImagingRecord("1.3.6.1.4.1.45037.33", "baseline"))

    records = tracker.imaging("ALPHA", "ALPHA001")
    assert sorted(
        (r.img_study_instance_uid, r.img_event_name, r.img_study_description) for r in records
    ) == [
        ("1.3.6.1.4.1.45037.11", "baseline", "MR brain (resent)"),
        ("1.3.6.1.4.1.45037.22", "followup", "MR brain"),
    ]
    assert {r.img_study_instance_uid for r in tracker.imaging("ALPHA")} == {
        "1.3.6.1.4.1.45037.11",
        "1.3.6.1.4.1.45037.22",
        "1.3.6.1.4.1.45037.33",
    }
    assert all(r.img_incoming_accession_number == "" for r in tracker.imaging("ALPHA"))


def test_redcap_participant_record_has_fiona_names(
    tmp_path: Path,
    redcap_server,
    redcap_double,  # type: ignore[no-untyped-def]
    redcap_secrets,
) -> None:
    add_research_project(redcap_server, "ALPHA", "^ALPHA[0-9]{3}$", own_redcap=True)
    token = redcap_double.token("ALPHA")
    tracker = open_tracker(
        load_config(
            write_config(
                tmp_path,
                tracker={
                    "backend": "redcap",
                    "redcap_url": redcap_server.url,
                    "secrets_file": str(redcap_secrets),
                },
            )
        )
    )
    tracker.record_imaging(
        tracker.projects()["ALPHA"], "ALPHA003", ImagingRecord("1.3.6.1.4.1.45037.44", "baseline")
    )
    rows = RedcapClient(redcap_server.url, token, "ALPHA").export_records(records=["ALPHA003"])
    base = [r for r in rows if not r.get("redcap_repeat_instrument")]
    [image] = [r for r in rows if r.get("redcap_repeat_instrument") == "imaging"]
    assert base[0]["first_name"] == base[0]["last_name"] == "ALPHA003"
    assert base[0]["redcap_event_name"] == image["redcap_event_name"] == "event_1_arm_1"
    assert (
        image["img_study_instance_uid"] == "1.3.6.1.4.1.45037.44"
        and image["imaging_complete"] == "2"
    )


def test_anonymize_and_send_writes_fiona_fields_to_redcap(
    tmp_path: Path,
    redcap_server,
    redcap_double,  # type: ignore[no-untyped-def]
    redcap_secrets,
) -> None:
    """The result as FIONA's anonymizeAndSend.py wrote it into Incoming, field by field."""
    from fionagw.routing.requests import create_transfer_requests
    from fionagw.tracking.records import Study
    from fionagw.transfers.anonymize_and_send import AnonymizeAndSend
    from support.transfer_site import ingest, mr_study

    add_research_project(redcap_server, "ALPHA", "^ALPHA[0-9]{3}$", own_redcap=True)
    cfg = load_config(
        write_config(
            tmp_path,
            tracker={
                "backend": "redcap",
                "redcap_url": redcap_server.url,
                "secrets_file": str(redcap_secrets),
            },
        )
    )
    cfg.paths.create()
    tracker = open_tracker(cfg)
    study = ingest(cfg, mr_study(tmp_path, n=1))
    tracker.save_study(Study(study), [])
    assert tracker.request_transfer(study, "ALPHA", "ALPHA001", "baseline")
    create_transfer_requests(cfg, tracker)

    assert AnonymizeAndSend(cfg, tracker).run().sent  # no deid block: FIONA mode (redcap tracker)
    rows = RedcapClient(
        redcap_server.url, redcap_double.token("Incoming"), "Incoming"
    ).export_records(records=[study])
    [row] = [r for r in rows if r.get("redcap_repeat_instrument") == "transfers"]
    assert row["transfers_complete"] == "2" and row["redcap_repeat_instance"] in (1, "1")
    assert row["transfer_mapped_uid"].startswith("1.3.6.1.4.1.45037.")
    assert [row[f"transfer_error___{c}"] for c in (1, 2, 3)] == ["0", "0", "0"]
    assert len(row["transfer_date"]) == 16 and row["transfer_error_message"] == ""
    assert float(row["transfer_active_proc_time"]) >= 0
    [image] = tracker.imaging("ALPHA", "ALPHA001")
    assert (
        image.img_study_instance_uid == row["transfer_mapped_uid"]
        and image.img_event_name == "baseline"
    )
    tracker.close()
