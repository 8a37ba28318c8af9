"""Tracker retention: clearOldFiles deletes old, fully transferred studies from the tracker, once a day.

Both backends: the local SQLite tracker, and REDCap (the API double on loopback, record delete).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from fionagw.config import load_config
from fionagw.ops.jobstate import last_run
from fionagw.tracking.factory import open_tracker
from fionagw.tracking.records import (
    COMPLETE_ERROR,
    COMPLETE_OK,
    DATE_FORMAT,
    ERROR_SEND,
    Series,
    Study,
)
from support.site import read_log, run_bin, write_config

DAY = 86400


def _ago(days: float) -> str:
    return time.strftime(DATE_FORMAT, time.localtime(time.time() - days * DAY))


@pytest.fixture(params=["local", "redcap"])
def tracked_config(request, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    tracker: dict = {"backend": request.param}
    if request.param == "redcap":
        server = request.getfixturevalue("redcap_server")
        tracker.update(
            redcap_url=server.url, secrets_file=str(request.getfixturevalue("redcap_secrets"))
        )
    return write_config(tmp_path, tracker=tracker, retention={"tracker_days": 30})


def _study(tracker, uid: str, arrived_days: float, transfers: list[tuple[str, float]]) -> None:  # type: ignore[no-untyped-def]
    """A study with one series and transfers given as (state, days ago)."""
    tracker.save_study(
        Study(uid, study_arrival_date=_ago(arrived_days), study_description="MR head"),
        [Series(f"{uid}.1", series_num_files="3")],
    )
    for n, (state, days) in enumerate(transfers, 1):
        t = tracker.request_transfer(
            uid, "ALPHA", f"ALPHA00{n}", "baseline", requested_date=_ago(days)
        )
        assert t is not None
        if state == "done":
            t.transfer_date, t.transfers_complete = _ago(days), COMPLETE_OK
        elif state == "failed":
            t.transfer_date, t.transfers_complete = _ago(days), COMPLETE_ERROR
            t.transfer_error = {ERROR_SEND}
        tracker.update_transfer(t)


@pytest.mark.slow
def test_old_fully_sent_studies_are_deleted_daily(tracked_config: Path) -> None:
    cfg = load_config(tracked_config)
    cfg.paths.create()
    tracker = open_tracker(cfg)
    layout = {
        "1.9.1": (100, [("done", 99)]),  # old and sent: deleted
        "1.9.2": (100, [("pending", 99)]),  # a request still waiting: kept
        "1.9.3": (100, [("failed", 99)]),  # failed: kept (someone must look at it)
        "1.9.4": (5, [("done", 5)]),  # young: kept
        "1.9.5": (100, []),  # never assigned, old: deleted
        "1.9.6": (100, [("done", 99), ("done", 2)]),  # resent recently: kept
        "1.9.7": (100, [("done", 99), ("pending", 1)]),  # one of two still pending: kept
    }
    for uid, (arrived, transfers) in layout.items():
        _study(tracker, uid, arrived, transfers)
    tracker.close()

    r = run_bin("clearOldFiles", "-v", config=tracked_config)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "deleted tracker study 1.9.1" in r.stdout and "deleted tracker study 1.9.5" in r.stdout
    tracker = open_tracker(cfg)
    left = tracker.get_studies(layout)
    assert sorted(left) == ["1.9.2", "1.9.3", "1.9.4", "1.9.6", "1.9.7"]
    assert all(
        t.study_instance_uid in left for t in tracker.transfers()
    )  # series/transfers went too
    assert len(left["1.9.6"].transfers) == 2 and left["1.9.2"].series[0].series_num_files == "3"
    tracker.close()

    entries = [
        e
        for e in read_log(cfg.paths.logfile("clearOldFiles"))
        if e["message"] == "tracker study deleted"
    ]
    assert sorted(e["study"] for e in entries) == ["1.9.1", "1.9.5"]
    allowed = {"time", "level", "component", "pid", "message", "study", "days", "dry_run"}
    assert all(set(e) <= allowed for e in entries), (
        entries
    )  # the UID only, nothing about the patient
    run = last_run(cfg, "trackerRetention")
    assert run is not None and run.ok and run.summary.startswith("2 tracker studies deleted")

    # once a day: the next hourly run leaves the tracker alone, even with a new candidate
    tracker = open_tracker(cfg)
    _study(tracker, "1.9.8", 100, [("done", 99)])
    tracker.close()
    r = run_bin("clearOldFiles", "-v", config=tracked_config)
    assert r.returncode == 0 and "tracker study" not in r.stdout, r.stdout
    # a dry run shows it and changes nothing; --tracker-now runs the pass at once
    r = run_bin("clearOldFiles", "--dry-run", "--tracker-now", config=tracked_config)
    assert r.returncode == 0 and "would delete tracker study 1.9.8" in r.stdout, r.stdout + r.stderr
    assert "1.9.8" in open_tracker(cfg).get_studies(["1.9.8"])
    r = run_bin("clearOldFiles", "-v", "--tracker-now", config=tracked_config)
    assert r.returncode == 0 and "deleted tracker study 1.9.8" in r.stdout
    assert open_tracker(cfg).get_studies(["1.9.8"]) == {}


@pytest.mark.slow
def test_tracker_days_zero_keeps_everything(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    cfg = load_config(config)
    cfg.paths.create()
    assert cfg.retention.tracker_days == 0
    tracker = open_tracker(cfg)
    _study(tracker, "1.9.1", 1000, [("done", 999)])
    tracker.close()
    r = run_bin("clearOldFiles", "-v", "--tracker-now", config=config)
    assert r.returncode == 0 and "tracker" not in r.stdout
    assert "1.9.1" in open_tracker(cfg).get_studies(["1.9.1"])


@pytest.mark.slow
def test_unreachable_redcap_is_one_line_and_deletes_nothing(
    tmp_path: Path,
    redcap_server,  # type: ignore[no-untyped-def]
    redcap_secrets,
    redcap_double,
) -> None:
    config = write_config(
        tmp_path,
        tracker={
            "backend": "redcap",
            "redcap_url": redcap_server.url,
            "secrets_file": str(redcap_secrets),
            "retries": 0,
        },
        retention={"tracker_days": 30},
    )
    cfg = load_config(config)
    cfg.paths.create()
    tracker = open_tracker(cfg)
    _study(tracker, "1.9.1", 100, [("done", 99)])
    redcap_double.fail_next(1, 503, "Service Unavailable")
    r = run_bin("clearOldFiles", config=config)
    assert (
        r.returncode == 1
        and "tracker retention skipped" in r.stderr
        and "Traceback" not in r.stderr
    )
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "1.9.1" in tracker.get_studies(["1.9.1"])
    run = last_run(cfg, "trackerRetention")
    assert run is not None and not run.ok
    # the next run does not wait a day after a failure
    r = run_bin("clearOldFiles", "-v", config=config)
    assert r.returncode == 0 and "deleted tracker study 1.9.1" in r.stdout, r.stdout + r.stderr
