"""Arrival events: one JSON file per event, unique names within a nanosecond, listed by type
and time."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from fionagw.arrival import events
from fionagw.config import SiteConfig
from support.arrival_site import arrival_site


@pytest.fixture
def site(tmp_path: Path) -> SiteConfig:
    return arrival_site(tmp_path)


def test_events_record_and_list(site: SiteConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    t0 = time.time()
    p1 = events.record_event(site, "study-arrived", study_uid="1.2.3", images=4)
    p2 = events.record_event(site, "qc-failed", study_uid="1.2.3", check="x")
    assert p1.name.endswith("-study-arrived-1.2.3.json") and p1.name.split("-")[0].isdigit()
    monkeypatch.setattr(events.time, "time_ns", lambda: 42)
    a = events.record_event(site, "study", note="same nanosecond")
    b = events.record_event(site, "study", note="same nanosecond")
    assert a != b and a.name == "42-study.json" and b.name == "43-study.json"
    assert [e["type"] for e in events.list_events(site, type="study")] == ["study", "study"]
    arrived = events.list_events(site, type="study-arrived")
    assert len(arrived) == 1 and arrived[0]["images"] == 4 and arrived[0]["site"] == ""
    assert arrived[0]["id"] == p1.name[:-5] and "time" in arrived[0]
    assert [e["type"] for e in events.list_events(site, since=t0)] == ["study-arrived", "qc-failed"]
    assert events.list_events(site, since=time.time() + 10) == []
    assert p2.exists()
    with pytest.raises(ValueError):
        events.record_event(site, "Bad Type")
