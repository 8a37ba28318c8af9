"""Event records for QC and notifications: ``DATADIR/events/<epoch_ns>-<type>[-<StudyUID>].json``.

One JSON file per event, written atomically and never overwritten (a name clash moves the
timestamp on by a nanosecond). The content is ``{"type", "time", "site", ...fields}`` with
``time`` in ISO 8601 (local time with offset). detectStudyArrival writes::

    study-arrived   the study entered the incoming list
    study-updated   a study already on the list gained data (a late series)

with fields study_uid, calling, called, ip, series (as on the incoming list) and images.
Events must not carry patient names or IDs (use fionagw.ops.log.phi_hash).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from fionagw.config import SiteConfig
from fionagw.ops.atomic import fsync_dir
from fionagw.ops.perms import FILE_MODE
from fionagw.paths import safe_component

_TYPE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


def _name(ns: int, type: str, key: str) -> str:
    return f"{ns}-{type}-{key}.json" if key else f"{ns}-{type}.json"


def record_event(cfg: SiteConfig, type: str, **fields: Any) -> Path:
    """Write one event; returns its file. ``type`` is lower-case words joined by '-'."""
    if not _TYPE.match(type):
        raise ValueError(f"bad event type {type!r}: lower-case letters, digits and '-'")
    ns = time.time_ns()
    record = {
        "type": type,
        "time": datetime.fromtimestamp(ns / 1e9).astimezone().isoformat(timespec="milliseconds"),
        "site": cfg.site,
        **fields,
    }
    data = json.dumps(record, indent=1, sort_keys=True, default=str).encode("utf-8")
    directory = cfg.paths.events
    directory.mkdir(parents=True, exist_ok=True)
    key = (
        safe_component(str(fields.get("study_uid") or ""))[:128] if fields.get("study_uid") else ""
    )
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, FILE_MODE)
        while True:  # link() never replaces: a clash takes the next nanosecond
            dest = directory / _name(ns, type, key)
            try:
                os.link(tmp, dest)
                break
            except FileExistsError:
                ns += 1
    finally:
        os.unlink(tmp)
    fsync_dir(directory)
    return dest


def _since_ns(since: float | datetime | None) -> int:
    if since is None:
        return 0
    if isinstance(since, datetime):
        return int(since.timestamp() * 1e9)
    return int(since * 1e9)


def list_events(
    cfg: SiteConfig, type: str | None = None, since: float | datetime | None = None
) -> list[dict[str, Any]]:
    """Events oldest first, optionally of one ``type`` and at or after ``since`` (epoch
    seconds or a datetime). Each dict is the file's content plus ``id`` (the file name
    without .json) and ``epoch_ns``."""
    floor = _since_ns(since)
    found: list[tuple[int, str, Path]] = []
    try:
        entries = list(os.scandir(cfg.paths.events))
    except FileNotFoundError:
        return []
    for entry in entries:
        name = entry.name
        if name.startswith(".") or not name.endswith(".json"):
            continue
        stamp, _, rest = name.partition("-")
        try:
            ns = int(stamp)
        except ValueError:
            continue
        if ns < floor:
            continue
        if type is not None and not (rest == f"{type}.json" or rest.startswith(f"{type}-")):
            continue
        found.append((ns, name, Path(entry.path)))
    events = []
    for ns, name, path in sorted(found):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if type is not None and record.get("type") != type:
            continue  # "study-arrived" must not match a type "study"
        record["id"] = name[:-5]
        record["epoch_ns"] = ns
        events.append(record)
    return events
