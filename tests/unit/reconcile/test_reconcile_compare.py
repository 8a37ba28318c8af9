"""The verdict on a sent study from what the PACS answered, the sent manifest on disk, and the
tracker record (pure parts; the integration test asks a real Orthanc)."""

from __future__ import annotations

import pytest

from fionagw.paths import SitePaths
from fionagw.reconcile.check import Reconciliation, pacs_check
from fionagw.reconcile.manifest import ManifestError, SentManifest, read_manifest, write_manifest
from fionagw.send.verify import compare
from fionagw.tracking.records import Transfer

SENT = {"1.9.1": ["1.9.1.1", "1.9.1.2"], "1.9.2": ["1.9.2.1"]}


def test_every_sop_uid_there_is_verified():
    v = compare(
        SENT, {"1.9.1": 2, "1.9.2": 1}, {"1.9.1": {"1.9.1.1", "1.9.1.2"}, "1.9.2": {"1.9.2.1", "x"}}
    )
    assert (v.status, v.expected, v.found, v.missing, v.method) == (
        "verified",
        3,
        3,
        [],
        "instances",
    )
    assert v.summary() == "sent 3, verified 3"


def test_missing_sop_uids_are_named_even_when_the_count_matches():
    # another instance in the series makes the count right; the UIDs tell the truth
    v = compare(SENT, {"1.9.1": 2, "1.9.2": 1}, {"1.9.1": {"1.9.1.1", "other"}, "1.9.2": set()})
    assert (v.status, v.found, v.missing) == ("incomplete", 1, ["1.9.1.2", "1.9.2.1"])
    assert v.summary() == "sent 3, found 1, 2 missing"


def test_counts_only_is_never_verified():
    v = compare(SENT, {"1.9.1": 2, "1.9.2": 1}, None)
    assert (v.status, v.found, v.method) == ("unconfirmed", 3, "counts")
    v = compare(SENT, {"1.9.1": 5, "1.9.2": None}, None)  # more in one series cannot make up
    assert (v.status, v.found) == ("incomplete", 2)


def test_manifest_round_trip_and_a_broken_one_names_the_file(tmp_path):
    paths = SitePaths(tmp_path)
    m = SentManifest("research-pacs", "2.25.1", dict(SENT))
    path = write_manifest(paths, "REQ_1", m)
    assert path.stat().st_mode & 0o777 == 0o640 and path.parent.stat().st_mode & 0o777 == 0o750
    assert read_manifest(paths, "REQ_1") == m and m.count == 3
    assert read_manifest(paths, "OTHER") is None
    path.write_text('{"series": []}')
    with pytest.raises(ManifestError, match="REQ_1.json: not a sent manifest"):
        read_manifest(paths, "REQ_1")


def test_tracker_record_and_summary_line():
    t = Transfer("1.2.3", 2, "ALPHA", "ALPHA001", "baseline", transfer_date="2026-01-01 10:00")
    v = compare(SENT, {}, {"1.9.1": {"1.9.1.1"}})
    c = pacs_check(t, SentManifest("research-pacs", "2.25.1", SENT), v)
    assert (c.record_id, c.ids7_sent, c.ids7_found, c.ids7_missing) == ("1.2.3_2", 3, 1, 2)
    assert (c.ids7_project_name, c.ids7_participant, c.ids7_mapped_uid) == (
        "ALPHA",
        "ALPHA001",
        "2.25.1",
    )
    assert c.summary() == "sent 3, verified 1, 2 missing"
    r = Reconciliation()
    assert r.summary() == "no sent transfers to check"
    r.checked.update({"verified": 2, "incomplete": 1})
    r.requeued.append("x")
    assert r.summary() == (
        "3 transfer(s) checked, 1 incomplete, 2 verified, 1 queued again for the missing instances"
    )
