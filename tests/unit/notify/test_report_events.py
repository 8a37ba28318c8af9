"""report-generated / report-delivered / report-delivery-failed: a group report made is an
event; its CSV delivered to a "none" channel is report-delivered, and to an e-mail server that
is not there (max_attempts 1) report-delivery-failed; those two never emit again, however
many runs and whatever the subscriptions ("*")."""

from __future__ import annotations

import json

from fionagw.config import load_config
from fionagw.notify.deliver import _report_outcome, send_notifications
from fionagw.notify.events import read_events
from fionagw.notify.groups import create_group, make_report
from fionagw.notify.payload import Outgoing
from support.site import free_port
from support.transfer_site import transfer_site


def test_report_events_and_no_loop(tmp_path) -> None:  # type: ignore[no-untyped-def]
    gen = transfer_site(tmp_path)
    cfg, tracker, _outbox, config = next(gen)
    data = json.loads(config.read_text())
    data["notifications"] = {
        "retry": {"tries_per_run": 1, "max_attempts": 1},
        "channels": {
            "keep": {"type": "none"},
            "mail": {
                "type": "email",
                "host": "127.0.0.1",
                "port": free_port(),
                "tls": "none",
                "from": "fiona@example.org",
                "to": ["pi@example.org"],
                "timeout": 2,
            },
        },
        "subscriptions": [
            {"events": ["*"], "channel": "keep"},
            {"events": ["group-report"], "channel": "mail"},
        ],
    }
    config.write_text(json.dumps(data))
    cfg = load_config(config)
    create_group(cfg, "G1", "ALPHA")
    make_report(cfg, tracker, "G1", "manual")
    [generated] = [e for e in read_events(cfg) if e["type"] == "report-generated"]
    assert generated["details"]["kind"] == "group" and generated["project"] == "ALPHA"
    for _ in range(3):
        send_notifications(cfg, tracker)
    types = [e["type"] for e in read_events(cfg)]
    assert types.count("report-delivered") == 1  # the CSV kept by "keep"
    assert types.count("report-delivery-failed") == 1  # the mail that could not go
    [failed] = [e for e in read_events(cfg) if e["type"] == "report-delivery-failed"]
    d = failed["details"]
    assert d["channel"] == "mail" and d["of_type"] == "group-report" and d["report"] == "group"
    assert d["error"]
    next(gen, None)


def test_deliveries_of_report_outcomes_emit_nothing() -> None:
    out = Outgoing(
        {"id": "e1", "type": "report-delivered", "project": "P", "pseudonym": "", "study_uid": ""},
        b"%PDF",
    )
    event = {"id": "e1", "type": "report-delivered", "ref": "1.2.3"}
    assert _report_outcome(event, out, "keep", "delivered", "") == []
    assert (
        _report_outcome({**event, "type": "report-delivery-failed"}, out, "k", "failed", "x") == []
    )
    plain = Outgoing({**out.payload, "type": "send-succeeded"}, None)
    assert _report_outcome({**event, "type": "send-succeeded"}, plain, "k", "delivered", "") == []
    sent = _report_outcome({**event, "type": "send-succeeded"}, out, "k", "delivered", "")
    assert [e["type"] for e in sent] == ["report-delivered"]
    assert sent[0]["ref"] == "1.2.3" and sent[0]["details"]["report"] == "study"
