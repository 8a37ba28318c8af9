"""What a data manager can do to a failed transfer request: retry, cancel, reassign.

No HTTP and no roles here (web/assign_actions.py checks who may); each function changes the
tracker first (a tracker that cannot be written raises TrackerError and nothing else changed),
then the files of the queue (queue.py, failures.py).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from fionagw.config import SiteConfig
from fionagw.routing.requests import request_path, write_request
from fionagw.tracking.base import Tracker
from fionagw.tracking.records import COMPLETE_ERROR, COMPLETE_PENDING, Transfer
from fionagw.transfers.failures import FailureRecord, read_record, remove_record, write_record
from fionagw.transfers.queue import RequestQueue


def request_name(cfg: SiteConfig, t: Transfer) -> str:
    return request_path(cfg, t).name


def retry(cfg: SiteConfig, tracker: Tracker, t: Transfer) -> Path:
    """Queue ``t`` again, due at once: its failure record and backoff are forgotten and the
    tracker shows it requested (pending) again. Returns the request file."""
    t.transfer_error = set()
    t.transfer_error_message = ""
    t.transfers_complete = COMPLETE_PENDING
    tracker.update_transfer(t)
    name = request_name(cfg, t)
    remove_record(cfg.paths, name)
    RequestQueue(cfg.paths).make_due(name)
    write_request(cfg, t)  # nothing to do if it is still queued (a send waiting for its retry)
    return request_path(cfg, t)


def cancel(cfg: SiteConfig, tracker: Tracker, t: Transfer, by: str, note: str = "") -> None:
    """Take ``t`` out of the queue for good: createTransferRequest never queues it again (its
    failure record says cancelled) and the tracker's message says who cancelled it."""
    name = request_name(cfg, t)
    record = read_record(cfg.paths, name) or FailureRecord(
        name, t.request_row(), "", "cancelled", failed_at=time.time()
    )
    what = f"cancelled by {by}" + (f" ({note})" if note else "")
    t.transfer_error_message = _with_error(t.transfer_error_message, what)
    t.transfers_complete = COMPLETE_ERROR
    tracker.update_transfer(t)
    record.cancelled = {"by": by, "at": time.time(), "note": note}
    write_record(cfg.paths, record)  # first: while it exists, nothing re-queues the request
    RequestQueue(cfg.paths).remove(name)


def reassign(
    cfg: SiteConfig,
    tracker: Tracker,
    t: Transfer,
    project: str,
    participant: str,
    event: str,
    by: str,
) -> Transfer | None:
    """A new request for the same study to ``project``/``participant``/``event``, queued at
    once, and ``t`` cancelled. None (and nothing changed) when that request exists already.
    The choice must have been validated as a first assignment is (web/assign_queries.py)."""
    new = tracker.request_transfer(t.study_instance_uid, project, participant, event)
    if new is None:
        return None
    target = f"{project} {participant}" + (f", event {event}" if event else "")
    cancel(cfg, tracker, t, by, f"reassigned to {target}")
    write_request(cfg, new)
    return new


def _with_error(message: str, error: str) -> str:
    """FIONA's JSON message with ``error`` put first in its error text."""
    try:
        data = json.loads(message) if message else {}
    except ValueError:
        data = {"error": message}
    if not isinstance(data, dict):
        data = {"error": str(data)}
    before = str(data.get("error") or "")
    data["error"] = error + (f"; it had failed: {before}" if before else "")
    return json.dumps(data, sort_keys=True)
