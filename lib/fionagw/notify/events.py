"""The notification event log: ``DATADIR/notify/events.jsonl``, append-only, one JSON line each.

Every line is one event, written whole with one ``write`` under an exclusive lock and fsynced
before :func:`emit` returns, so a crash leaves whole lines (a torn last line is skipped by the
reader) and no event that was reported as emitted is lost::

    {"id": "17c3...-9f2a", "time": "2026-12-04T19:30:00.123+00:00", "type": "send-succeeded",
     "project": "ALPHA", "pseudonym": "ALPHA001", "study_uid": "<de-identified UID>",
     "series_uid": "", "ref": "<the gateway's own study key>", "details": {...}}

``study_uid``/``series_uid`` are de-identified UIDs where they exist. ``ref`` is the study's
key inside the gateway (its original StudyInstanceUID): it stays in this file (0640) to find
the study's report and identity, and no channel ever sends it (notify/payload.py builds
outgoing payloads from an allow-list). No name, patient ID or accession number is recorded.

Emitting must never break the pipeline: any failure is one warning line and the caller goes on.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import filelock

from fionagw.config.notifications import EVENT_TYPES
from fionagw.ops.perms import FILE_MODE, make_dirs

if TYPE_CHECKING:
    from fionagw.config import SiteConfig
    from fionagw.tracking.records import PacsCheck, Transfer

LOGGER = logging.getLogger("fionagw.notify")
LOG_NAME = "events.jsonl"


def log_path(cfg: SiteConfig) -> Path:
    return cfg.paths.notify / LOG_NAME


def new_id(ns: int) -> str:
    """Time-ordered and unique: the nanosecond clock in hex and 32 random bits."""
    return f"{ns:016x}-{os.urandom(4).hex()}"


def append(cfg: SiteConfig, records: list[dict[str, Any]]) -> None:
    """Append whole lines, fsynced (raises OSError)."""
    directory = cfg.paths.notify
    make_dirs(directory)
    data = b"".join(
        json.dumps(r, sort_keys=True, separators=(",", ":"), default=str).encode() + b"\n"
        for r in records
    )
    path = directory / LOG_NAME
    with filelock.FileLock(str(directory / ".events.lock")):
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, FILE_MODE)
        try:
            os.fchmod(fd, FILE_MODE)  # the policy's mode whatever the umask (perms.py)
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data  # a crash tore the last line: never glue onto it
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)


def make_event(
    type: str,
    *,
    ref: str = "",
    project: str = "",
    pseudonym: str = "",
    study_uid: str = "",
    series_uid: str = "",
    **details: Any,
) -> dict[str, Any]:
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type!r}")
    ns = time.time_ns()
    return {
        "id": new_id(ns),
        "time": datetime.fromtimestamp(ns / 1e9).astimezone().isoformat(timespec="milliseconds"),
        "type": type,
        "ref": ref,
        "project": project,
        "pseudonym": pseudonym,
        "study_uid": study_uid,
        "series_uid": series_uid,
        "details": details,
    }


def emit(cfg: SiteConfig, type: str, **fields: Any) -> dict[str, Any] | None:
    """Record one event (see the module docstring for ``fields``); the record, or None when
    it could not be written (logged as one warning: the pipeline goes on)."""
    try:
        record = make_event(type, **fields)
        append(cfg, [record])
        return record
    except Exception as exc:  # noqa: BLE001 - a notification must never stop a transfer
        LOGGER.warning(
            "notification event not recorded", extra={"event": type, "error": str(exc)[:200]}
        )
        return None


def _safe(fn: Callable[..., None]) -> Callable[..., None]:
    """The emit helpers never raise either (a missing transfer, an odd row: one warning)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - see emit
            LOGGER.warning(  # names the helper, never its arguments (a transfer's fields)
                "notification event not recorded",
                extra={"event": fn.__name__, "error": type(exc).__name__},
            )

    return wrapper


@_safe
def emit_transfer(cfg: SiteConfig, type: str, t: Transfer, **details: Any) -> None:
    """An event about one transfer of the tracker: project, pseudonym and, once it was sent,
    the de-identified study UID it was sent under."""
    mapped = (getattr(t, "transfer_mapped_uid", "") or "").split(",")[0]
    emit(
        cfg,
        type,
        ref=t.study_instance_uid,
        project=t.transfer_project_name,
        pseudonym=t.transfer_name,
        study_uid=mapped,
        event=t.transfer_event_name,
        **details,
    )


@_safe
def emit_check(cfg: SiteConfig, t: Transfer, check: PacsCheck) -> None:
    """delivery-verified / delivery-incomplete from a PACS check (send/verify.py statuses)."""
    kind = {
        "verified": "delivery-verified",
        "unconfirmed": "delivery-verified",
        "incomplete": "delivery-incomplete",
        "missing": "delivery-incomplete",
    }.get(check.ids7_status)
    if kind:
        emit_transfer(
            cfg, kind, t, status=check.ids7_status, found=check.ids7_found, sent=check.ids7_sent
        )


@_safe
def emit_send(cfg: SiteConfig, request: Any, outcome: str, reason: str) -> None:
    """send-succeeded / send-failed from one anonymizeAndSend attempt (transfers/queue.Request);
    deferred attempts (retried later) are no event."""
    kind = {"sent": "send-succeeded", "failed": "send-failed"}.get(outcome)
    if kind and request is not None:
        row = request.row
        emit(
            cfg,
            kind,
            ref=request.study_uid,
            project=request.project,
            pseudonym=str(row.get("transfer_name") or ""),
            event=str(row.get("transfer_event_name") or ""),
            reason=reason,
        )


@_safe
def emit_package(cfg: SiteConfig, type: str, state: Any, **details: Any) -> None:
    """An event about the transfer request of a package (sendFiles), from its state file."""
    request = state.get("request") if isinstance(state, dict) else None
    row = request.get("row") if isinstance(request, dict) else None
    row = row if isinstance(row, dict) else {}
    emit(
        cfg,
        type,
        ref=str(row.get("study_instance_uid") or ""),
        project=str(row.get("transfer_project_name") or ""),
        pseudonym=str(row.get("transfer_name") or ""),
        event=str(row.get("transfer_event_name") or ""),
        **details,
    )


@_safe
def emit_report(cfg: SiteConfig, kind: str, **fields: Any) -> None:
    """report-generated: a study report (kind "study", ``ref`` the study) or a group report
    (kind "group") was made."""
    emit(cfg, "report-generated", kind=kind, **fields)


def scan_events(cfg: SiteConfig, start: int = 0) -> Iterator[tuple[int, dict[str, Any]]]:
    """(offset after the line, event) of every whole event from byte ``start`` on, oldest
    first; a torn or bad line is skipped."""
    try:
        f = open(log_path(cfg), "rb")  # noqa: SIM115
    except FileNotFoundError:
        return
    with f:
        f.seek(start)
        offset = start
        for line in f:
            if not line.endswith(b"\n"):
                break  # a write cut short by a crash: never reported as emitted
            offset += len(line)
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("id") and record.get("type"):
                yield offset, record


def read_events(cfg: SiteConfig) -> Iterator[dict[str, Any]]:
    """Every whole event of the log, oldest first (a torn or bad line is skipped)."""
    for _, record in scan_events(cfg):
        yield record
