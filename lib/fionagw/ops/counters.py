"""Counters for the metrics, derived from disk rather than reported by the jobs.

A small state file (``DATADIR/.pids/metrics<site>.json``) remembers what was already counted,
and each update looks only at what changed since:

* images and bytes received: archive study folders whose mtime moved (a new file renamed into
  a folder changes its mtime) are recounted, the others are not opened;
* studies arrived: ``events/<ns>-study-arrived-*.json`` names newer than the last one counted;
* send failures: files appearing (or rewritten) in ``transfers_fail/``.

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

LOGGER = logging.getLogger(__name__)

STATE_NAME = "metrics"
MIN_UPDATE_S = 5.0  # scrapes closer together than this reuse the counters
RECENT_S = 2.0  # folders changed this recently are recounted again (mtime granularity)
_ARRIVED = re.compile(r"^(\d+)-study-arrived(?:-.*)?\.json$")


@dataclass
class Counters:
    images_received: int = 0
    bytes_received: int = 0
    studies_arrived: int = 0
    send_failures: int = 0
    updated: float = 0.0
    # what was counted already
    archive: dict[str, list[int]] = field(default_factory=dict)  # uid -> [files, bytes, mtime_ns]
    events_ns: int = 0
    fail_seen: dict[str, int] = field(default_factory=dict)  # file name -> mtime_ns


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
    newest = c.events_ns
    try:
        names = os.listdir(cfg.paths.events)
    except FileNotFoundError:
        return
    for name in names:
        m = _ARRIVED.match(name)
        if m and int(m.group(1)) > c.events_ns:
            c.studies_arrived += 1
            newest = max(newest, int(m.group(1)))
    c.events_ns = newest


def _scan_failures(cfg: SiteConfig, c: Counters) -> None:
    seen: dict[str, int] = {}
    try:
        entries = list(os.scandir(cfg.paths.transfers_fail))
    except FileNotFoundError:
        entries = []
    for e in entries:
        if e.name.startswith("."):
            continue
        try:
            mtime = e.stat(follow_symlinks=False).st_mtime_ns
        except OSError:
            continue
        if c.fail_seen.get(e.name) != mtime:
            c.send_failures += 1  # a new failure, or a retry that failed again
        seen[e.name] = mtime
    c.fail_seen = seen


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
        _scan_failures(cfg, c)
        c.updated = time.time()
        try:
            write_bytes_atomic(path, json.dumps(asdict(c)).encode(), durable=False)
        except OSError as exc:
            LOGGER.warning("cannot save the metrics counters", extra={"error": exc.strerror})
        return c
