"""Counters for the metrics, derived from disk rather than reported by the jobs.

A small state file (``DATADIR/.pids/metrics<site>.json``) remembers what was already counted,
and each update looks only at what changed since:

* images and bytes received: archive study folders whose mtime moved (a new file renamed into
  a folder changes its mtime) are recounted, the others are not opened;
* studies arrived: ``events/<ns>-study-arrived-*.json`` names newer than the last one counted;
* transfer attempts by outcome (sent, failed, deferred) and failed attempts by reason:
  ``events/<ns>-transfer-attempted-*.json`` newer than the last one counted (anonymizeAndSend
  writes one per attempt). A failed request is one attempt and one failure, whatever files it
  leaves in ``transfers_fail/`` (counting those files counted every failure twice, and again
  each time createTransferRequest re-queued it).

So an update costs one listing of the archive's top level, not a walk of the archive. Counters
start at what the archive holds the first time metrics run, and only ever grow (retention
deleting a study does not decrease them), as Prometheus expects of a counter.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import filelock

from fionagw.config import SiteConfig
from fionagw.ops.atomic import write_bytes_atomic
from fionagw.transfers.failures import count_failures

LOGGER = logging.getLogger(__name__)

STATE_NAME = "metrics"
MIN_UPDATE_S = 5.0  # scrapes closer together than this reuse the counters
RECENT_S = 2.0  # folders changed this recently are recounted again (mtime granularity)
_ARRIVED = re.compile(r"^(\d+)-study-arrived(?:-.*)?\.json$")
_ATTEMPTED = re.compile(r"^(\d+)-transfer-attempted(?:-.*)?\.json$")


@dataclass
class Counters:
    images_received: int = 0
    bytes_received: int = 0
    studies_arrived: int = 0
    attempts: dict[str, int] = field(default_factory=dict)  # outcome -> transfer attempts
    failures: dict[str, int] = field(default_factory=dict)  # reason -> failed or deferred ones
    updated: float = 0.0
    # what was counted already
    archive: dict[str, list[int]] = field(default_factory=dict)  # uid -> [files, bytes, mtime_ns]
    events_ns: int = 0
    attempts_ns: int = 0

    @property
    def send_failures(self) -> int:
        """Attempts that did not send (a request that failed, or one deferred to a retry)."""
        return sum(self.failures.values())


def _state_path(cfg: SiteConfig) -> Path:
    return cfg.paths.state_file(STATE_NAME)


def _load(path: Path) -> Counters:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Counters(**{k: data[k] for k in Counters.__dataclass_fields__ if k in data})
    except (OSError, ValueError, TypeError):
        return Counters()


def _scan_archive(cfg: SiteConfig, c: Counters, now_ns: int) -> None:
    seen: dict[str, list[int]] = {}
    for uid, e in cfg.paths.archive_studies():
        try:
            mtime = e.stat(follow_symlinks=False).st_mtime_ns
        except OSError:
            continue
        old = c.archive.get(uid)
        if old is not None and old[2] == mtime and now_ns - mtime > RECENT_S * 1e9:
            seen[uid] = old
            continue
        files = size = 0
        try:
            with os.scandir(e.path) as it:
                for f in it:
                    if f.name.startswith("."):
                        continue
                    try:
                        if f.is_file(follow_symlinks=False):
                            files += 1
                            size += f.stat(follow_symlinks=False).st_size
                    except OSError:
                        continue
        except OSError:
            continue
        before_files, before_bytes = (old[0], old[1]) if old else (0, 0)
        c.images_received += max(0, files - before_files)
        c.bytes_received += max(0, size - before_bytes)
        seen[uid] = [max(files, before_files), max(size, before_bytes), mtime]
    c.archive = seen


def _scan_events(cfg: SiteConfig, c: Counters) -> None:
    try:
        names = os.listdir(cfg.paths.events)
    except FileNotFoundError:
        return
    newest, newest_attempt = c.events_ns, c.attempts_ns
    for name in names:
        m = _ARRIVED.match(name)
        if m and int(m.group(1)) > c.events_ns:
            c.studies_arrived += 1
            newest = max(newest, int(m.group(1)))
            continue
        m = _ATTEMPTED.match(name)
        if m and int(m.group(1)) > c.attempts_ns:
            _count_attempt(cfg.paths.events / name, c)
            newest_attempt = max(newest_attempt, int(m.group(1)))
    c.events_ns, c.attempts_ns = newest, newest_attempt


def _count_attempt(path: Path, c: Counters) -> None:
    try:
        event = json.loads(path.read_text(encoding="utf-8"))
        outcome, reason = str(event["outcome"]), str(event.get("reason") or "unknown")
    except (OSError, ValueError, KeyError, TypeError):
        return
    c.attempts[outcome] = c.attempts.get(outcome, 0) + 1
    if outcome != "sent":
        c.failures[reason] = c.failures.get(reason, 0) + 1


def update_counters(cfg: SiteConfig, *, min_interval: float = MIN_UPDATE_S) -> Counters:
    """The counters, brought up to date (at most every ``min_interval`` s; concurrent callers wait)."""
    path = _state_path(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    with filelock.FileLock(str(path) + ".lock", timeout=60):
        c = _load(path)
        if time.time() - c.updated < min_interval:
            return c
        _scan_archive(cfg, c, time.time_ns())
        _scan_events(cfg, c)
        c.updated = time.time()
        try:
            write_bytes_atomic(path, json.dumps(asdict(c)).encode(), durable=False)
        except OSError as exc:
            LOGGER.warning("cannot save the metrics counters", extra={"error": exc.strerror})
        return c


@dataclass
class TransferFigures:
    """What `fiona status` and the Status page say about transfers."""

    attempts: dict[str, int]  # outcome -> attempts, since counting began
    failures: dict[str, int]  # reason -> attempts that sent nothing
    failed_requests: int  # requests failed now (one each), not cancelled
    cancelled_requests: int
    failed_by_reason: dict[str, int]

    def lines(self) -> list[str]:
        def listing(d: dict[str, int]) -> str:
            return ", ".join(f"{k} {v}" for k, v in sorted(d.items())) or "none"

        return [
            f"requests failed {self.failed_requests} ({listing(self.failed_by_reason)}); "
            f"cancelled {self.cancelled_requests}",
            f"attempts {sum(self.attempts.values())} ({listing(self.attempts)})",
            f"send failures {sum(self.failures.values())} ({listing(self.failures)})",
        ]


def transfer_figures(cfg: SiteConfig) -> TransferFigures:
    """Attempts and failures (counters) with the failed requests of now (transfers_fail)."""
    c = update_counters(cfg)
    now = count_failures(cfg.paths)
    return TransferFigures(
        dict(c.attempts), dict(c.failures), now.failed, now.cancelled, dict(now.by_reason)
    )
