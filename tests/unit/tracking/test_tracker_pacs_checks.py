"""The PACS checks (WhatIsInIDS7) in both trackers: REDCap (the double, FIONA's API) and the
local SQLite tracker hold the same record; a REDCap without the project says so in one line."""

from __future__ import annotations

import pytest

from fionagw.tracking.base import TrackerError
from fionagw.tracking.local import LocalTracker
from fionagw.tracking.records import PacsCheck
from fionagw.tracking.redcap import INVENTORY, PROJECTS, RedcapTracker


def _check(status: str = "incomplete", found: int = 237) -> PacsCheck:
    return PacsCheck(
        record_id=PacsCheck.key("1.2.840.99.1", 2),
        study_instance_uid="1.2.840.99.1",
        transfer_instance=2,
        ids7_project_name="ALPHA",
        ids7_participant="ALPHA001",
        ids7_destination="research-pacs",
        ids7_mapped_uid="2.25.42",
        ids7_sent=240,
        ids7_found=found,
        ids7_missing=240 - found,
        ids7_status=status,
        ids7_method="instances",
        ids7_checked_date="2026-12-04 02:00",
        ids7_message="3 instance(s) queued to be sent again",
        ids7_resend_date="2026-12-04 02:00",
    )


def _both(tmp_path, redcap_client):  # type: ignore[no-untyped-def]
    redcap = RedcapTracker({p: redcap_client(p) for p in (*PROJECTS, INVENTORY)})
    local = LocalTracker(tmp_path / "tracker.sqlite", None)
    return [redcap, local]


def test_a_check_is_stored_replaced_and_read_back_by_study(tmp_path, redcap_client):
    for tracker in _both(tmp_path, redcap_client):
        tracker.record_pacs_check(_check())
        assert tracker.pacs_checks("1.2.840.99.1") == [_check()]
        tracker.record_pacs_check(_check("verified", 240))  # the next check replaces it
        [c] = tracker.pacs_checks()
        assert c.verified and c.summary() == "sent 240, verified 240", tracker.name
        assert tracker.pacs_checks("1.2.840.99.9") == []


def test_redcap_without_the_whatisinids7_token_says_so(redcap_client):
    tracker = RedcapTracker({p: redcap_client(p) for p in PROJECTS})
    with pytest.raises(TrackerError, match="no API token for project WhatIsInIDS7"):
        tracker.record_pacs_check(_check())
