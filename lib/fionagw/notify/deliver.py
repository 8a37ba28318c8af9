"""sendNotifications: deliver every (event, channel) that is due, at least once, de-duplicated.

The delivery key of an event for a channel is ``<event id>/<channel>``: several subscriptions
naming the same channel deliver once. Each outcome is appended to
``DATADIR/notify/deliveries.jsonl`` (fsynced, the last line of a key wins)::

    {"key": "...", "event": "<id>", "type": "send-failed", "channel": "hook",
     "status": "delivered" | "skipped" | "retry" | "failed", "attempts": 1,
     "next_at": 0, "error": "", "at": 1733339000.0}

A delivery is recorded after the receiver accepted it, so a crash in between delivers it
again: at least once. The receivers de-duplicate by the key each channel carries (the
webhook's ``Idempotency-Key``, the FHIR identifier with ``If-None-Exist``, the e-mail's
Message-ID, the DICOM object's UIDs derived from the event). A try that fails is repeated
``retry.tries_per_run`` times with backoff; a run that ends without success counts one
attempt and sets when the next run may try again; after ``retry.max_attempts`` the delivery
is "failed" (shown on the Status page and by ``fiona notify status``).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from fionagw.config import SiteConfig
from fionagw.config.notifications import QUIET_EVENTS
from fionagw.notify.channels import DELIVER, WANTS_PDF, Context, DeliveryError, Permanent
from fionagw.notify.events import append, make_event, scan_events
from fionagw.notify.payload import Outgoing, Resolver
from fionagw.ops.perms import FILE_MODE, make_dirs
from fionagw.tracking.base import Tracker

LOGGER = logging.getLogger("fionagw.notify")
STATE_NAME = "deliveries.jsonl"
CURSOR_NAME = "cursor.json"
DONE = ("delivered", "skipped", "failed")  # nothing more to do for these
FLUSH_EVERY = 200  # outcomes per fsynced append (a crash re-delivers at most these)
# A channel whose receiver failed this many deliveries in a row is left alone for the rest of
# the run (its events wait, no attempt counted): a receiver that hangs costs minutes, not hours,
# and the other channels still get theirs.
BREAK_AFTER = 3


def load_state(cfg: SiteConfig) -> dict[str, dict[str, Any]]:
    """The last record of every delivery key."""
    state: dict[str, dict[str, Any]] = {}
    try:
        f = open(cfg.paths.notify / STATE_NAME, "rb")  # noqa: SIM115
    except FileNotFoundError:
        return state
    with f:
        for line in f:
            if not line.endswith(b"\n"):
                break
            try:
                record = json.loads(line)
                state[record["key"]] = record
            except (ValueError, KeyError, TypeError):
                continue
    return state


def _append_state(cfg: SiteConfig, records: list[dict[str, Any]]) -> None:
    if not records:
        return
    make_dirs(cfg.paths.notify)
    data = b"".join(json.dumps(r, sort_keys=True).encode() + b"\n" for r in records)
    fd = os.open(cfg.paths.notify / STATE_NAME, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _subscriptions_key(cfg: SiteConfig) -> str:
    """Changes when channels or subscriptions change (then every event is looked at again)."""
    import hashlib

    n = cfg.notifications
    text = json.dumps(
        [sorted((c.name, c.type) for c in n.channels.values()), [repr(s) for s in n.subscriptions]]
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def read_cursor(cfg: SiteConfig) -> int:
    """Where the first event not yet done for all its channels starts in the log (0 when the
    subscriptions changed since it was written, or the log is shorter: a new log)."""
    try:
        doc = json.loads((cfg.paths.notify / CURSOR_NAME).read_text())
        offset = int(doc["offset"])
        size = (cfg.paths.notify / "events.jsonl").stat().st_size
    except (OSError, ValueError, KeyError, TypeError):
        return 0
    return offset if doc.get("subscriptions") == _subscriptions_key(cfg) and offset <= size else 0


def write_cursor(cfg: SiteConfig, offset: int) -> None:
    from fionagw.ops.atomic import write_json_atomic

    doc = {"offset": offset, "subscriptions": _subscriptions_key(cfg)}
    try:
        write_json_atomic(cfg.paths.notify / CURSOR_NAME, doc)
    except OSError as exc:  # only an optimisation: the next run reads from further back
        LOGGER.warning("notification cursor not written", extra={"error": exc.strerror})


@dataclass
class NotifyReport:
    counts: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def summary(self) -> str:
        parts = [
            f"{self.counts[k]} {k}" for k in ("delivered", "skipped", "retry", "failed", "waiting")
        ]
        return "notifications: " + ", ".join(parts) + f" in {self.seconds:.1f} s"


def try_delivery(
    ctx: Context, cfg: SiteConfig, channel_name: str, out: Outgoing
) -> tuple[str, str]:
    """(status, error) of up to tries_per_run tries: delivered, skipped, or retry/failed."""
    channel = cfg.notifications.channels[channel_name]
    retry = cfg.notifications.retry
    error = ""
    for i in range(retry.tries_per_run):
        if i:
            time.sleep(retry.backoff_seconds * 2 ** (i - 1))
        try:
            skipped = DELIVER[channel.type](ctx, channel, out)
            return ("skipped", skipped) if skipped else ("delivered", "")
        except Permanent as exc:
            return "failed", str(exc)
        except DeliveryError as exc:
            error = str(exc)
        except Exception as exc:  # noqa: BLE001 - a bad event must not stop the others
            return "failed", f"{type(exc).__name__}: {str(exc)[:200]}"
    return "retry", error


def _report_outcome(
    event: dict[str, Any], out: Outgoing, channel: str, status: str, error: str
) -> list[dict[str, Any]]:
    """report-delivered / report-delivery-failed when a delivery that carried a report (the
    study PDF or a group CSV) succeeded or finally failed; never for the deliveries of those
    two events themselves (QUIET_EVENTS), so a "*" subscription cannot loop."""
    if event["type"] in QUIET_EVENTS or not (out.pdf or out.csv):
        return []
    p = out.payload
    return [
        make_event(
            "report-delivered" if status == "delivered" else "report-delivery-failed",
            ref=str(event.get("ref") or ""),
            project=p["project"],
            pseudonym=p["pseudonym"],
            study_uid=p["study_uid"],
            channel=channel,
            of_event=p["id"],
            of_type=p["type"],
            report="group" if out.csv else "study",
            error=error,
        )
    ]


def _emit_all(cfg: SiteConfig, records: list[dict[str, Any]]) -> None:
    """Append the run's report events (one fsync); a failure is one warning, never raised."""
    if not records:
        return
    try:
        append(cfg, records)
    except OSError as exc:
        LOGGER.warning("notification events not recorded", extra={"error": exc.strerror})


def send_notifications(
    cfg: SiteConfig, tracker: Tracker | None, *, now: float | None = None
) -> NotifyReport:
    """One run (call it under the sendNotifications lock)."""
    t0 = time.monotonic()
    report = NotifyReport()
    settings = cfg.notifications
    if not settings.subscriptions:
        return report
    state = load_state(cfg)
    resolver = Resolver(cfg, tracker)
    ctx = Context(cfg)
    pending: list[dict[str, Any]] = []
    cursor = read_cursor(cfg)
    failing: dict[str, int] = {}  # channel -> deliveries failed in a row in this run
    settled = True  # every event so far is done for all its channels: the cursor may follow
    emitted: list[dict[str, Any]] = []  # report-delivered/-failed, appended after the scan
    try:
        for offset, event in scan_events(cfg, cursor):
            channels = settings.channels_for(event["type"], str(event.get("project") or ""))
            out_plain: Outgoing | None = None
            out_pdf: Outgoing | None = None
            for name in channels:
                key = f"{event['id']}/{name}"
                old = state.get(key)
                if old is not None and old.get("status") in DONE:
                    continue
                clock = time.time() if now is None else now
                if old is not None and float(old.get("next_at") or 0) > clock:
                    report.counts["waiting"] += 1
                    continue
                if failing.get(name, 0) >= BREAK_AFTER:
                    report.counts["waiting"] += 1
                    continue
                kind = cfg.notifications.channels[name].type
                if kind in WANTS_PDF:
                    out = out_pdf = out_pdf or resolver.outgoing(event, with_pdf=True)
                    if kind == "dicom" and out.pdf and out.sent is None:  # only it needs them
                        p = out.payload
                        ref = str(event.get("ref") or "")
                        out.sent = resolver.sent_study(ref, p["project"], p["pseudonym"])
                else:
                    out = out_plain = out_plain or resolver.outgoing(event)
                status, error = try_delivery(ctx, cfg, name, out)
                failing[name] = failing.get(name, 0) + 1 if status == "retry" else 0
                attempts = int(old.get("attempts") or 0) + 1 if old else 1
                next_at = 0.0
                if status == "retry":
                    if attempts >= settings.retry.max_attempts:
                        status = "failed"
                    else:
                        next_at = clock + settings.retry.retry_seconds * 2 ** (attempts - 1)
                if status in ("retry", "failed"):
                    LOGGER.warning(
                        "notification not delivered"
                        if status == "retry"
                        else "notification delivery failed",
                        extra={"channel": name, "event": event["type"], "key": key, "error": error},
                    )
                record = {
                    "key": key,
                    "event": event["id"],
                    "type": event["type"],
                    "channel": name,
                    "status": status,
                    "attempts": attempts,
                    "next_at": next_at,
                    "error": error,
                    "at": time.time(),
                }
                if status in ("delivered", "failed"):
                    emitted += _report_outcome(event, out, name, status, error)
                state[key] = record
                pending.append(record)
                report.counts[status] += 1
                if len(pending) >= FLUSH_EVERY:
                    _append_state(cfg, pending)
                    pending = []
            if settled and all(
                (state.get(f"{event['id']}/{n}") or {}).get("status") in DONE for n in channels
            ):
                cursor = offset
            else:
                settled = False
    finally:
        _append_state(cfg, pending)
        ctx.close()
        _emit_all(cfg, emitted)
    write_cursor(cfg, cursor)
    report.seconds = time.monotonic() - t0
    return report


@dataclass
class ChannelStatus:
    name: str
    type: str
    counts: Counter[str] = field(default_factory=Counter)
    failures: list[dict[str, Any]] = field(default_factory=list)  # newest first, at most 20


def notify_status(cfg: SiteConfig) -> list[ChannelStatus]:
    """Per channel: how many deliveries are in each state, and the latest failures."""
    out = {n: ChannelStatus(n, c.type) for n, c in cfg.notifications.channels.items()}
    for record in load_state(cfg).values():
        cs = out.get(str(record.get("channel")))
        if cs is None:
            continue
        cs.counts[str(record.get("status"))] += 1
        if record.get("status") in ("failed", "retry"):
            cs.failures.append(record)
    for cs in out.values():
        cs.failures = sorted(cs.failures, key=lambda r: -float(r.get("at") or 0))[:20]
    return list(out.values())


def test_delivery(cfg: SiteConfig, tracker: Tracker | None, channel_name: str) -> tuple[str, str]:
    """Deliver a "test" event to one channel now (not recorded in the event log)."""
    if channel_name not in cfg.notifications.channels:
        known = ", ".join(cfg.notifications.channels) or "none configured"
        return "failed", f"no channel {channel_name!r} in notifications.channels ({known})"
    channel = cfg.notifications.channels[channel_name]
    event = make_event("test", message="a test of the notification channel")
    out = Resolver(cfg, tracker).outgoing(event)
    if channel.type == "dicom":  # no study to file a test document in: prove the node answers
        from fionagw.send.base import SendError

        try:
            return "delivered", cfg.destinations[channel.get("destination")].destination().check()
        except SendError as exc:
            return "failed", str(exc)
    ctx = Context(cfg)
    try:
        return try_delivery(ctx, cfg, channel_name, out)
    finally:
        ctx.close()


def iter_failures(statuses: Iterable[ChannelStatus]) -> list[dict[str, Any]]:
    return [f for s in statuses for f in s.failures]
