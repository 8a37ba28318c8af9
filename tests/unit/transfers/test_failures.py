"""Failed transfer requests: a permanent failure is tried once until the settings change or a data
manager retries it; a transient one is retried with backoff and then held; the counts say one
failed request, not its two files; cancel and reassign through transfers/actions.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fionagw.ops.counters import transfer_figures, update_counters
from fionagw.ops.prometheus import render
from fionagw.ops.status import queue_depths
from fionagw.routing.requests import create_transfer_requests
from fionagw.tracking.records import COMPLETE_ERROR, COMPLETE_PENDING
from fionagw.transfers import actions
from fionagw.transfers.anonymize_and_send import AnonymizeAndSend
from fionagw.transfers.failures import count_failures, read_record
from fionagw.transfers.queue import RequestQueue
from support.transfer_site import (
    PROJECTS,
    hide_phi_in_private_sequence,
    ingest,
    mr_study,
    request,
    sent_files,
    transfer_site,
)


@pytest.fixture
def site(tmp_path: Path):  # type: ignore[no-untyped-def]
    yield from transfer_site(tmp_path)


def attempts(cfg) -> list[dict]:  # type: ignore[no-untyped-def]
    return [
        json.loads(p.read_text())
        for p in sorted(cfg.paths.events.glob("*-transfer-attempted-*.json"))
    ]


def cron_minute(cfg, tracker, now: float | None = None):  # type: ignore[no-untyped-def]
    """What cron runs every minute: createTransferRequest, then anonymizeAndSend."""
    create_transfer_requests(cfg, tracker)
    return AnonymizeAndSend(cfg, tracker).run(now=now)


def leaky_study(cfg, tmp_path: Path) -> str:  # type: ignore[no-untyped-def]
    files = mr_study(tmp_path, n=2)
    hide_phi_in_private_sequence(files[0])
    return ingest(cfg, files)


def test_release_check_failure_is_tried_once_then_after_a_settings_change_or_a_retry(
    site, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    cfg, tracker, outbox, config = site
    study = leaky_study(cfg, tmp_path)
    req = request(cfg, tracker, study, "KEEPPRIV", "K001")

    first = AnonymizeAndSend(cfg, tracker).run()
    assert first.failed == [req.name] and not sent_files(outbox)
    for _ in range(4):  # four more cron minutes: nothing is queued or tried again
        report = cron_minute(cfg, tracker)
        assert not (report.sent or report.failed or report.deferred or report.waiting)
        assert not req.exists()
    assert [a["outcome"] for a in attempts(cfg)] == ["failed"]

    record = read_record(cfg.paths, req.name)
    assert record is not None and record.permanent and record.reason == "release_check"
    paths = {h.path for h in record.hits}
    assert "(0019,1011)" in paths  # the private text element ...
    assert any(p.startswith("(0019,1010)[0]/") for p in paths)  # ... and the item's element
    text = json.dumps(record.as_json()["hits"])
    assert "Nordmann" not in text and "PID-4711" not in text and "Kari" not in text

    # exact counts: one failed request (two files), one attempt, one failure by its reason
    assert len(list(cfg.paths.transfers_fail.iterdir())) == 2
    assert count_failures(cfg.paths).failed == 1
    assert queue_depths(cfg)["failed transfers"] == 1
    figures = transfer_figures(cfg)
    assert figures.attempts == {"failed": 1} and figures.failures == {"release_check": 1}
    assert figures.failed_requests == 1 and figures.failed_by_reason == {"release_check": 1}
    metrics = render(cfg, counters=update_counters(cfg, min_interval=0))
    assert 'fionagw_transfer_requests{state="failed"} 1\n' in metrics
    assert 'fionagw_send_failures_total{reason="release_check"} 1\n' in metrics
    assert 'fionagw_transfer_attempts_total{outcome="failed"} 1\n' in metrics

    # the project's settings change (here: its title in projects.yml): it is tried once more
    projects = Path(json.loads(Path(config).read_text())["tracker"]["projects_file"])
    projects.write_text(PROJECTS.replace("  KEEPPRIV:\n", "  KEEPPRIV:\n    title: Changed\n"))
    assert cron_minute(cfg, tracker).failed == [req.name]
    assert cron_minute(cfg, tracker).failed == []
    assert [a["outcome"] for a in attempts(cfg)] == ["failed", "failed"]
    assert count_failures(cfg.paths).failed == 1  # still one request

    # a data manager retries: queued and due at once, the tracker shows it pending
    [t] = tracker.transfers(study)
    assert t.transfers_complete == COMPLETE_ERROR
    assert actions.retry(cfg, tracker, t) == req and req.exists()
    [t] = tracker.transfers(study)
    assert t.transfers_complete == COMPLETE_PENDING and not t.transfer_error
    assert count_failures(cfg.paths).failed == 0
    assert AnonymizeAndSend(cfg, tracker).run().failed == [req.name]
    assert len(attempts(cfg)) == 3
    assert update_counters(cfg, min_interval=0).failures == {"release_check": 3}


def test_destination_down_is_retried_with_backoff_then_held(site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg, tracker, outbox, config = site
    projects = Path(json.loads(Path(config).read_text())["tracker"]["projects_file"])
    projects.write_text(
        PROJECTS.replace(
            "    deid: {mode: keyed}", "    deid: {mode: keyed}\n    destination: down-pacs", 1
        )
    )
    study = ingest(cfg, mr_study(tmp_path, n=1))
    req = request(cfg, tracker, study, "ALPHA", "ALPHA004")
    queue = RequestQueue(cfg.paths)

    assert cron_minute(cfg, tracker).deferred == [req.name]
    first = queue.state(req)
    assert cron_minute(cfg, tracker).waiting == 1  # backing off: not tried
    assert cron_minute(cfg, tracker, now=first.next_try + 1).deferred == [req.name]
    second = queue.state(req)
    assert second.attempts == 2
    assert second.next_try - first.next_try >= 60  # the delay doubled (60 s, then 120 s)
    assert cron_minute(cfg, tracker, now=second.next_try + 1).failed == [req.name]
    for _ in range(3):  # given up after sending.max_attempts (3): createTransferRequest holds it
        assert not cron_minute(cfg, tracker, now=second.next_try + 10_000).deferred
        assert not req.exists()

    record = read_record(cfg.paths, req.name)
    assert record is not None and not record.permanent and record.reason == "send"
    assert record.attempts == 3
    assert [a["outcome"] for a in attempts(cfg)] == ["deferred", "deferred", "failed"]
    figures = transfer_figures(cfg)
    assert figures.attempts == {"deferred": 2, "failed": 1}
    assert figures.failures == {"send": 3} and figures.failed_requests == 1


def test_cancel_holds_for_good_and_reassign_queues_the_new_request(site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg, tracker, outbox, config = site
    study = ingest(cfg, mr_study(tmp_path, n=1))
    req = request(cfg, tracker, study, "ALPHA", "ALPHA005")
    projects = Path(json.loads(Path(config).read_text())["tracker"]["projects_file"])
    projects.write_text(PROJECTS.replace("    deid: {mode: keyed}", "    deid: {mode: nope}", 1))
    assert AnonymizeAndSend(cfg, tracker).run().failed == [req.name]
    assert read_record(cfg.paths, req.name).reason == "settings"  # type: ignore[union-attr]

    [t] = tracker.transfers(study)
    actions.cancel(cfg, tracker, t, "dm")
    projects.write_text(PROJECTS)  # fixed: a cancelled request stays out all the same
    assert not cron_minute(cfg, tracker).failed and not req.exists()
    record = read_record(cfg.paths, req.name)
    assert record is not None and record.cancelled and record.cancelled["by"] == "dm"
    counts = count_failures(cfg.paths)
    assert (counts.failed, counts.cancelled) == (0, 1)
    [t] = tracker.transfers(study)
    assert json.loads(t.transfer_error_message)["error"].startswith("cancelled by dm")

    new = actions.reassign(cfg, tracker, t, "ALPHA", "ALPHA006", "followup", "dm")
    assert new is not None
    queued = [p.name for p in cfg.paths.transfer_requests.glob("*.json")]
    assert queued == [f"{study}_ALPHA_ALPHA006_{new.instance}.json"]
    assert actions.reassign(cfg, tracker, t, "ALPHA", "ALPHA006", "followup", "dm") is None
    assert AnonymizeAndSend(cfg, tracker).run().sent == queued
    out = sent_files(outbox)
    assert out and all(p.relative_to(outbox).parts[:2] == ("ALPHA", "ALPHA006") for p in out)


def test_unreadable_projects_keep_a_failed_request_held(site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """createTransferRequest cannot compare the settings (projects.yml is broken): the failed
    request stays held, and the run does not fail for it."""
    cfg, tracker, outbox, config = site
    study = leaky_study(cfg, tmp_path)
    req = request(cfg, tracker, study, "KEEPPRIV", "K001")
    assert AnonymizeAndSend(cfg, tracker).run().failed == [req.name]
    projects = Path(json.loads(Path(config).read_text())["tracker"]["projects_file"])
    projects.write_text("projects: [not, a, mapping\n")
    assert create_transfer_requests(cfg, tracker) == []
    assert not req.exists()
