"""The Assign page's data: the study list (recent, visible, searchable, newest first), paging,
assignment states with their failure reasons, and the choices' validation."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from fionagw.arrival.incoming import IncomingEntry
from fionagw.config import SiteConfig, load_config
from fionagw.tracking.factory import open_tracker
from fionagw.tracking.records import COMPLETE_ERROR, COMPLETE_OK, Transfer
from fionagw.web import assign_queries as q
from support.assign_seed import PROJECTS, seed
from support.web import web_config

# --- the logic without a browser (fionagw.web.assign_queries) ------------------------------------


@pytest.fixture
def local_site(tmp_path: Path) -> SiteConfig:
    (tmp_path / "projects.yml").write_text(PROJECTS)
    cfg = load_config(web_config(tmp_path))
    cfg.paths.create()
    return cfg


def test_list_is_recent_visible_searchable_newest_first(local_site: SiteConfig) -> None:
    cfg = local_site
    uids = seed(cfg, 4, {1: "DEMO", 2: "OTHER"})
    old = IncomingEntry(int(time.time()) - 8 * 86400, "1.2.9.9", {"accession": "OLD"}).line()
    with cfg.paths.incoming_list.open("a") as f:
        f.write(old + "\n1700000000 an old FIONA line\n")
    tracker = open_tracker(cfg)
    secret = b"k" * 32
    everyone = q.incoming_studies(cfg, tracker, secret, lambda p: True)
    assert [r.accession for r in everyone] == ["SEED00003", "SEED00002", "SEED00001", "SEED00000"]
    demo_only = q.incoming_studies(cfg, tracker, secret, lambda p: p == "DEMO")
    assert [r.accession for r in demo_only] == ["SEED00003", "SEED00001", "SEED00000"]
    assert [r.state for r in demo_only] == ["unassigned", "requested", "unassigned"]
    uploads = {uids[3]: "OTHER"}  # uploaded on Attach for OTHER: OTHER's study now
    assert [
        r.accession
        for r in q.incoming_studies(cfg, tracker, secret, lambda p: p == "DEMO", uploads=uploads)
    ] == ["SEED00001", "SEED00000"]
    for query, expected in (
        ("seed00002", ["SEED00002"]),
        ("2025-03-01 MOD1", ["SEED00001"]),
        ("20250301 mod3", ["SEED00003"]),
        ("fiona mod0", ["SEED00000"]),
        ("nothing-like-this", []),
    ):
        assert [
            r.accession
            for r in q.incoming_studies(cfg, tracker, secret, lambda p: True, query=query)
        ] == expected
    row = everyone[0]
    assert row.key == q.study_key(secret, uids[3]) and len(row.key) == 24 and uids[3] not in row.key
    assert q.find_study(cfg, tracker, secret, row.key, lambda p: True).study_uid == uids[3]
    assert (
        q.find_study(cfg, tracker, secret, row.key, lambda p: True, uploads=uploads).uploaded_for
        == "OTHER"
    )
    assert (
        q.find_study(cfg, tracker, secret, row.key, lambda p: p == "DEMO", uploads=uploads) is None
    )
    assert q.find_study(cfg, tracker, b"another secret", row.key, lambda p: True) is None
    assert q.study_key(b"another secret", uids[3]) != row.key


def test_paginate() -> None:
    rows = list(range(120))
    page = q.paginate(rows, 3, 50)  # type: ignore[arg-type]
    assert (page.rows, page.number, page.pages, page.first_index, page.last_index) == (
        rows[100:],
        3,
        3,
        101,
        120,
    )
    assert q.paginate(rows, 99, 50).number == 3 and q.paginate(rows, -1, 50).number == 1  # type: ignore[arg-type]
    assert q.paginate([], 1).pages == 1 and q.paginate([], 1).first_index == 0
    assert q.paginate(rows, 1, 10**6).per_page == q.MAX_PER_PAGE  # type: ignore[arg-type]


def test_assignment_states_and_failure_reasons() -> None:
    t = Transfer("1.2", 1, "DEMO", "DEMO001", "baseline", "2025-03-01 10:00")
    assert q.assignment(t).state == "requested"
    t.transfer_date, t.transfers_complete = "2025-03-01 10:05", COMPLETE_OK
    assert (q.assignment(t).state, q.assignment(t).sent) == ("sent", "2025-03-01 10:05")
    t.transfers_complete = COMPLETE_ERROR
    t.transfer_error_message = json.dumps(
        {
            "request": {"x": 1},
            "anonymize_return_code": 0,
            "storescu_return_code": 1,
            "storescu_output": "a\nRefused: OutOfResources",
        }
    )
    assert q.assignment(t).reason == "storescu failed (exit 1): Refused: OutOfResources"
    t.transfer_error_message = json.dumps(
        {"request": {}, "error": "release check: patient_name found at (0010,0010)"}
    )
    assert q.assignment(t).reason == "release check: patient_name found at (0010,0010)"
    assert q.failure_reason("") == "no reason recorded"
    assert q.failure_reason("plain text\nsecond line") == "plain text"
    t2 = Transfer("1.2", 2, "DEMO", "DEMO001", "", transfer_error={2})  # send error, no status yet
    assert q.assignment(t2).state == "failed"


def test_choice_validation(local_site: SiteConfig) -> None:
    projects = open_tracker(local_site).projects()
    ok = q.check_choice(q.Choice("DEMO", "", "DEMO007", "baseline"), projects, [])
    assert ok.ok and ok.name == "DEMO007"
    cases = [
        (q.Choice("", "", "DEMO007", "baseline"), "project", "Choose a project."),
        (q.Choice("NOPE", "", "X", ""), "project", "Project NOPE is not one you may assign to"),
        (
            q.Choice("DEMO", "", "DEMO7", "baseline"),
            "participant",
            "'DEMO7' is not a valid participant ID",
        ),
        (q.Choice("DEMO", "DEMO001", "DEMO002", "baseline"), "participant", "not both"),
        (q.Choice("DEMO", "", "", "baseline"), "participant", "Choose a participant"),
        (q.Choice("DEMO", "", "DEMO007", ""), "event", "Choose an event."),
        (q.Choice("DEMO", "", "DEMO007", "visit1"), "event", "'visit1' is not an event of DEMO."),
    ]
    for choice, field, text in cases:
        errors = q.check_choice(choice, projects, ["DEMO001"]).errors
        assert text in errors[field], (choice, errors)
    assert q.check_choice(q.Choice("DEMO", "DEMO001", "", "followup"), projects, ["DEMO001"]).ok
    with pytest.raises(ValueError):
        q.assign(
            local_site,
            open_tracker(local_site),
            "1.2.3",
            q.check_choice(q.Choice("DEMO", "", "bad", ""), projects, []),
        )


def test_tag_path_labels_name_the_element_never_a_value() -> None:
    assert (
        q.tag_path_label("(0008,0090)", "person_name", 3)
        == "(0008,0090) ReferringPhysicianName: person name, in 3 files"
    )
    assert (
        q.tag_path_label("(0040,0275)[0]/(0032,1060)", "uid")
        == "(0040,0275)[0]/(0032,1060) RequestedProcedureDescription: uid"
    )
    assert q.tag_path_label("(0019,1011)", "patient_id") == "(0019,1011): patient id"  # private


def test_failure_details_show_the_record_the_retry_state_or_the_cancellation(
    local_site: SiteConfig,
) -> None:
    """A failed assignment gets its failure record; one whose send waits for its retry is
    "retrying" with the next try; a cancelled one is "cancelled" and offers no action."""
    from fionagw.routing.requests import request_path, write_request
    from fionagw.transfers.failures import FailureRecord, HitSummary, write_record
    from fionagw.transfers.queue import RequestQueue, RetryState

    cfg = local_site
    failed = [
        Transfer("1.2", i, "DEMO", f"DEMO00{i}", "baseline", transfers_complete=COMPLETE_ERROR)
        for i in (1, 2, 3)
    ]
    names = [request_path(cfg, t).name for t in failed]
    write_record(
        cfg.paths,
        FailureRecord(
            names[0],
            failed[0].request_row(),
            "release check found identifying values in 2 file(s); nothing was sent",
            "release_check",
            hits=[HitSummary("(0008,0080)", "institution", 2)],
            failed_at=time.time(),
        ),
    )
    write_request(cfg, failed[1])
    RequestQueue(cfg.paths).defer(
        request_path(cfg, failed[1]), RetryState(2, time.time() + 120, "send to pacs failed")
    )
    record = FailureRecord(names[2], failed[2].request_row(), "x", "settings")
    record.cancelled = {"by": "dm", "at": time.time(), "note": ""}
    write_record(cfg.paths, record)
    entry = IncomingEntry(int(time.time()), "1.2", {"accession": "A1"})
    row = q.study_row(b"k", entry, None)
    row.assignments = [q.assignment(t) for t in failed]

    q.add_failure_details(cfg, [row], lambda project: project == "DEMO")
    one, two, three = row.assignments
    assert one.state == "failed" and one.can_act and one.detail is not None
    assert one.detail.kind == "release check found identifying values" and one.detail.permanent
    assert one.detail.hits == ["(0008,0080) InstitutionName: institution, in 2 files"]
    assert one.reason.startswith("release check found identifying values in 2 file(s)")
    assert two.state == "retrying" and two.reason == "send to pacs failed"
    assert two.detail is not None and two.detail.attempts == 2 and two.detail.next_try
    assert three.state == "cancelled" and not three.can_act
    assert three.detail is not None and three.detail.cancelled.startswith("by dm at ")
    assert row.state == "failed"

    row.assignments = [q.assignment(t) for t in failed]
    q.add_failure_details(cfg, [row], lambda project: False)  # no assign role: no actions
    assert not any(a.can_act for a in row.assignments)
