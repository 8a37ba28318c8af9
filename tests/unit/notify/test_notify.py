"""The event log, the notifications config and sendNotifications against a local webhook
receiver: validation errors name the key, emitting never raises, a delivery that keeps
failing is retried with backoff and then "failed", and `fiona notify` shows it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fionagw.config import ConfigError, load_config
from fionagw.notify import emit
from fionagw.notify.channels import diagnostic_report, encapsulated_pdf, signature
from fionagw.notify.deliver import notify_status, send_notifications
from fionagw.notify.events import log_path, make_event, read_events
from fionagw.notify.payload import Outgoing, Resolver
from support.notify_peers import HttpReceiver
from support.site import BIN, free_port, write_config

SECRET = "unit-secret"


def site(tmp_path: Path, notifications: dict, secrets: dict | None = None):  # type: ignore[no-untyped-def]
    path = tmp_path / "secrets.json"
    path.write_text(json.dumps(secrets or {"notifications": {"hook": {"secret": SECRET}}}))
    os.chmod(path, 0o600)
    config = write_config(
        tmp_path, tracker={"secrets_file": str(path)}, notifications=notifications
    )
    cfg = load_config(config)
    cfg.paths.create()
    return cfg


def hook_config(url: str, **retry: float) -> dict:
    return {
        "retry": {"tries_per_run": 2, "backoff_seconds": 0.01, **retry},
        "channels": {"hook": {"type": "webhook", "url": url, "method": "PUT"}},
        "subscriptions": [{"events": ["send-failed", "qc-failed"], "channel": "hook"}],
    }


@pytest.mark.parametrize(
    "notifications, key, problem",
    [
        (
            {"channels": {"x": {"type": "pager"}}},
            "notifications.channels.x.type",
            "expected one of",
        ),
        (
            {"channels": {"x": {"type": "webhook", "url": "ftp://a"}}},
            "channels.x.url",
            "http(s) URL",
        ),
        (
            {"channels": {"x": {"type": "webhook", "url": "http://a", "secret": "s"}}},
            "x.secret",
            "unknown key",
        ),
        (
            {"channels": {"m": {"type": "email", "host": "h", "from": "a@b", "to": ["nobody"]}}},
            "m.to",
            "e-mail",
        ),
        (
            {"channels": {"d": {"type": "dicom", "destination": "nowhere"}}},
            "d.destination",
            "no destination",
        ),
        (
            {"subscriptions": [{"events": ["send-failed"], "channel": "nope"}]},
            "subscriptions[0].channel",
            "no channel",
        ),
        (
            {
                "channels": {"k": {"type": "none"}},
                "subscriptions": [{"events": ["sent"], "channel": "k"}],
            },
            "subscriptions[0].events",
            "unknown event type",
        ),
        ({"retry": {"tries_per_run": 0}}, "retry.tries_per_run", "must be positive"),
    ],
)
def test_bad_config_is_one_line_naming_the_key(tmp_path, notifications, key, problem) -> None:  # type: ignore[no-untyped-def]
    config = write_config(tmp_path, notifications=notifications)
    with pytest.raises(ConfigError) as err:
        load_config(config)
    text = str(err.value)
    assert key in text and problem in text and "\n" not in text


def test_emit_appends_whole_lines_and_never_raises(tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    cfg = site(tmp_path, {})
    first = emit(cfg, "qc-failed", ref="1.2.3", project="ALPHA", checks=["lossless"])
    emit(cfg, "send-failed", ref="1.2.4", project="ALPHA", pseudonym="ALPHA001", reason="send")
    with open(log_path(cfg), "ab") as f:
        f.write(b'{"id": "torn", "type": "qc-fa')  # a crash mid-write
    events = list(read_events(cfg))
    assert [e["type"] for e in events] == ["qc-failed", "send-failed"]
    assert events[0] == first and events[0]["details"] == {"checks": ["lossless"]}
    assert oct(log_path(cfg).stat().st_mode & 0o777) == "0o640"
    assert emit(cfg, "no-such-type") is None  # a bad call is a warning, not an exception
    os.chmod(cfg.paths.notify, 0o500)
    try:
        assert emit(cfg, "qc-failed", ref="1.2.5") is None or os.geteuid() == 0
    finally:
        os.chmod(cfg.paths.notify, 0o750)
    assert "notification event not recorded" in caplog.text


def test_payload_never_carries_the_original_uid(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cfg = site(tmp_path, {})
    event = make_event(
        "send-failed", ref="1.2.840.99.1", project="ALPHA", pseudonym="P1", reason="x"
    )
    out = Resolver(cfg, None).outgoing(event)
    assert "1.2.840.99.1" not in json.dumps(out.payload)
    assert out.payload["pseudonym"] == "P1" and out.payload["details"] == {"reason": "x"}
    assert "Participant: P1" in out.text()


def test_fhir_resource_and_dicom_object_are_valid(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from fionagw.config.notifications import Channel

    event = make_event("send-succeeded", project="ALPHA", pseudonym="ALPHA001", study_uid="2.25.1")
    out = Outgoing({**event, "site": ""}, b"%PDF-1.4 test")
    doc = diagnostic_report(Channel("ehr", "fhir", {"code": "Study report"}), out)
    assert doc["resourceType"] == "DiagnosticReport" and doc["subject"]["display"] == "ALPHA001"
    ds = encapsulated_pdf(out, "pacs")
    assert ds.StudyInstanceUID == "2.25.1" and ds.PatientID == "ALPHA001"
    assert ds.EncapsulatedDocument[: ds.EncapsulatedDocumentLength] == b"%PDF-1.4 test"
    assert encapsulated_pdf(out, "pacs").SOPInstanceUID == ds.SOPInstanceUID  # a retry replaces


def test_webhook_retried_once_per_run_exactly_once_each(tmp_path) -> None:  # type: ignore[no-untyped-def]
    hook = HttpReceiver(SECRET, fail_first=True)
    try:
        cfg = site(tmp_path, hook_config(hook.url + "/in"))
        for i in range(5):
            emit(cfg, "send-failed", ref=f"1.2.{i}", project="ALPHA", reason="send")
        emit(cfg, "study-stable", ref="1.2.9")  # nobody subscribes
        report = send_notifications(cfg, None)
        assert report.counts["delivered"] == 5 and len(hook.bodies) == 10
        assert sorted(hook.accepted.values()) == [1] * 5 and hook.bad_signatures == 0
        assert send_notifications(cfg, None).counts["delivered"] == 0
        assert len(hook.bodies) == 10
    finally:
        hook.close()
    body = b'{"a": 1}'
    assert signature("k", body) == signature("k", body) != signature("other", body)


def test_unreachable_webhook_backs_off_then_fails(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cfg = site(
        tmp_path, hook_config(f"http://127.0.0.1:{free_port()}/x", max_attempts=2, retry_seconds=60)
    )
    emit(cfg, "qc-failed", ref="1.2.3", project="ALPHA", checks=["lossless"])
    first = send_notifications(cfg, None, now=1000.0)
    assert first.counts["retry"] == 1
    assert send_notifications(cfg, None, now=1010.0).counts["waiting"] == 1  # backoff
    assert send_notifications(cfg, None, now=1061.0).counts["failed"] == 1
    assert send_notifications(cfg, None, now=99999.0).counts["failed"] == 0  # given up, once
    [status] = notify_status(cfg)
    assert status.counts == {"failed": 1} and "127.0.0.1" in status.failures[0]["error"]


def test_missing_secret_is_retried_naming_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    hook = HttpReceiver(SECRET)
    try:
        cfg = site(tmp_path, hook_config(hook.url), secrets={"tokens": {}})
        emit(cfg, "send-failed", ref="1.2.3", project="ALPHA")
        assert send_notifications(cfg, None).counts["retry"] == 1
        [status] = notify_status(cfg)
        assert "notifications.hook.secret: missing" in status.failures[0]["error"]
        assert not hook.bodies
        path = cfg.tracker.secrets_file
        path.write_text(json.dumps({"notifications": {"hook": {"secret": SECRET}}}))
        assert send_notifications(cfg, None, now=time.time() + 400).counts["delivered"] == 1
        assert len(hook.accepted) == 1  # fixed by the operator: delivered on a later run
    finally:
        hook.close()


@pytest.mark.slow
def test_fiona_notify_cli(tmp_path) -> None:  # type: ignore[no-untyped-def]
    hook = HttpReceiver(SECRET)
    try:
        notifications = hook_config(hook.url + "/t", max_attempts=1)
        notifications["channels"]["down"] = {
            "type": "webhook",
            "url": f"http://127.0.0.1:{free_port()}/x",
        }
        notifications["subscriptions"] = [{"events": ["qc-failed"], "channel": "down"}]
        cfg = site(tmp_path, notifications)
        emit(cfg, "qc-failed", ref="1.2.3", project="ALPHA", checks=["lossless"])
        assert send_notifications(cfg, None).counts["failed"] == 1
        # this virtualenv's python, as the launcher execs it (no install check on the way)
        fiona = [sys.executable, str(BIN / "fiona"), "--config", str(cfg.config_file), "notify"]
        r = subprocess.run([*fiona, "test", "hook"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and "hook: delivered" in r.stdout, r.stderr
        [doc] = hook.events()
        assert doc["type"] == "test"
        r = subprocess.run([*fiona, "status"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 1 and "down (webhook): 1 failed" in r.stdout
        assert "failed: qc-failed event" in r.stdout and "hook (webhook): nothing yet" in r.stdout
        r = subprocess.run([*fiona, "test", "pager"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 1 and "no channel 'pager'" in r.stdout
    finally:
        hook.close()


def test_package_events_name_the_request_of_the_package(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from fionagw.notify.events import emit_package

    cfg = site(tmp_path, {})
    row = {
        "study_instance_uid": "1.2.3",
        "transfer_project_name": "ALPHA",
        "transfer_name": "ALPHA001",
        "transfer_event_name": "baseline",
    }
    emit_package(
        cfg, "send-succeeded", {"request": {"name": "r.json", "row": row}}, package="delivered"
    )
    emit_package(cfg, "send-failed", {}, package="failed")  # a package without its request
    first, second = read_events(cfg)
    assert (first["ref"], first["project"], first["pseudonym"]) == ("1.2.3", "ALPHA", "ALPHA001")
    assert first["details"] == {"event": "baseline", "package": "delivered"}
    assert second["type"] == "send-failed" and second["project"] == ""


def test_cursor_skips_what_is_done_and_resets_when_subscriptions_change(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from fionagw.notify.deliver import read_cursor

    hook = HttpReceiver(SECRET)
    try:
        cfg = site(tmp_path, hook_config(hook.url + "/c"))
        emit(cfg, "send-failed", ref="1.2.1", project="ALPHA")
        emit(cfg, "study-stable", ref="1.2.2")  # no subscriber: done at once
        assert send_notifications(cfg, None).counts["delivered"] == 1
        size = log_path(cfg).stat().st_size
        assert read_cursor(cfg) == size
        with open(log_path(cfg), "ab") as f:
            f.write(b'{"id": "torn')  # a crash mid-append: the next event must not glue on
        emit(cfg, "qc-failed", ref="1.2.3", project="ALPHA")
        assert [e["type"] for e in read_events(cfg)][-1] == "qc-failed"
        assert send_notifications(cfg, None).counts["delivered"] == 1
        assert len(hook.accepted) == 2
        notifications = hook_config(hook.url + "/c")
        notifications["subscriptions"].append({"events": ["study-stable"], "channel": "hook"})
        data = json.loads(cfg.config_file.read_text())
        data["notifications"] = notifications
        cfg.config_file.write_text(json.dumps(data))
        cfg = load_config(cfg.config_file)
        assert read_cursor(cfg) == 0  # a new subscription also gets the events already logged
        assert send_notifications(cfg, None).counts["delivered"] == 1
        assert len(hook.accepted) == 3 and sorted(set(hook.accepted.values())) == [1]
    finally:
        hook.close()


def test_a_dead_receiver_is_left_alone_for_the_rest_of_the_run(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from fionagw.notify.deliver import BREAK_AFTER

    cfg = site(tmp_path, hook_config(f"http://127.0.0.1:{free_port()}/x"))
    for i in range(BREAK_AFTER + 4):
        emit(cfg, "send-failed", ref=f"1.2.{i}", project="ALPHA")
    report = send_notifications(cfg, None)
    assert report.counts["retry"] == BREAK_AFTER and report.counts["waiting"] == 4


def test_emit_helpers_never_raise(tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    from fionagw.notify import emit_check, emit_package, emit_send, emit_transfer

    cfg = site(tmp_path, {})
    emit_transfer(cfg, "transfer-requested", None)
    emit_check(cfg, None, None)
    emit_send(cfg, object(), "sent", "")
    emit_package(cfg, "send-failed", None)  # no request: an event without a study
    events = [
        getattr(r, "event", "")
        for r in caplog.records
        if r.getMessage() == "notification event not recorded"
    ]
    assert events == ["emit_transfer", "emit_check", "emit_send"]
    assert [e["type"] for e in read_events(cfg)] == ["send-failed"]


@pytest.mark.slow  # aiosmtpd with implicit TLS takes seconds to start
def test_email_over_implicit_tls_with_login(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import email

    from support.notify_peers import SmtpServer

    smtp = SmtpServer(tmp_path / "smtp", implicit_tls=True).start()
    try:
        notifications = {
            "channels": {
                "mail": {
                    "type": "email",
                    "host": "127.0.0.1",
                    "port": smtp.port,
                    "tls": "tls",
                    "ca_file": str(smtp.ca_file),
                    "from": "fiona@example.org",
                    "to": "dm@example.org",
                    "login": smtp.user,
                }
            },
            "subscriptions": [{"events": ["qc-failed"], "channel": "mail"}],
        }
        cfg = site(
            tmp_path, notifications, {"notifications": {"mail": {"password": smtp.password}}}
        )
        emit(cfg, "qc-failed", ref="1.2.3", project="ALPHA", checks=["lossless"])
        assert send_notifications(cfg, None).counts["delivered"] == 1
        [raw] = smtp.messages
        msg = email.message_from_bytes(raw)
        assert msg["To"] == "dm@example.org" and "qc-failed ALPHA" in msg["Subject"]
        assert "Checks: lossless" in msg.get_payload() and "1.2.3" not in raw.decode()
    finally:
        smtp.stop()


def test_service_down_and_back_up_are_events_once_each(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from fionagw.notify.watch import watch
    from fionagw.ops.daemon import stop_marker
    from fionagw.ops.jobstate import record_run

    cfg = site(tmp_path, {})
    record_run(cfg, "removeOldEntries", True, 0.1, "ok", started=time.time() - 3 * 86400)
    new, gone = watch(cfg)  # no daemon runs on this test site; a 4-hourly job ran 3 days ago
    events = {e["details"]["what"]: e for e in read_events(cfg) if e["type"] == "service-down"}
    assert {"service:storectl", "cron:removeOldEntries"} <= set(events) and gone == 0
    assert events["service:storectl"]["details"]["problem"] == "storectl is down"
    assert watch(cfg) == (0, 0)  # nothing changed: no event
    marker = stop_marker(cfg.paths.pidfile("storescpd"))
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text("0\n")  # an operator stopped it: no longer down
    record_run(cfg, "removeOldEntries", True, 0.1, "ok")
    assert watch(cfg) == (0, 2)
    ups = [e["details"]["what"] for e in read_events(cfg) if e["type"] == "service-up"]
    assert sorted(ups) == ["cron:removeOldEntries", "service:storectl"]


def test_report_text_is_scrubbed_of_the_study_identifiers() -> None:
    from pydicom.dataset import Dataset

    from fionagw.deid.release import collect_identifiers
    from fionagw.notify.payload import scrub_report

    ds = Dataset()
    ds.PatientName, ds.PatientID, ds.AccessionNumber = "Nordmann^Kari", "PID-4711", "ACC-99812"
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.99.5"
    report = {
        "made": "2026-12-04 19:15",
        "bypasses": [{"reason": "Kari Nordmann moved (PID-4711), ok per ACC-99812"}],
        "series": [{"description": "ref 1.2.826.0.1.3680043.99.5"}],
        "study": {"images": 7},
    }
    out = scrub_report(report, collect_identifiers(ds))
    text = json.dumps(out)
    for value in ("Kari", "Nordmann", "PID-4711", "ACC-99812", "1.2.826.0.1.3680043.99.5"):
        assert value not in text
    assert out["made"] == "2026-12-04 19:15" and out["study"]["images"] == 7
