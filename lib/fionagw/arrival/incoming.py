"""The incoming list: studies waiting for assignment (FIONA: applications/Assign/incoming.txt).

FIONA's only confirmed fact about the format is that the first space-separated field of a
line is a Unix epoch in seconds (removeOldEntries drops lines older than 7 days). Our lines::

    <epoch> <StudyInstanceUID> <JSON summary on one line>

    1767225600 1.2.840.113619.2.1 {"accession":"A123","called":"FIONA","calling":"MRI1",...}

One line per study. ``epoch`` is the last time the study arrived or gained data (a late
series refreshes it, and a study sent again after it was dropped comes back). The JSON
(sorted keys, ASCII, no spaces) holds:

    calling, called, ip          the connection of the newest study job
    accession, study_date, study_time, study_description, study_id
    patient_id_hash              SHA-256 of the PatientID (fionagw.ops.log.phi_hash)
    modalities                   sorted list, e.g. ["MR"]
    series_count, images         ints
    series                       [{uid, number, description, modality, num_files, classify_type}]
    first_arrived                epoch of the first time the study entered the list

No patient name or ID in clear text. Every rewrite is atomic (temp + rename) and happens
under a short lock (``.pids/incoming<site>.lock``), so detectStudyArrival and
removeOldEntries never lose each other's changes. A line that is not in this format (an old
FIONA line) is kept as it is, and still pruned by its first field.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import filelock

from fionagw.config import SiteConfig
from fionagw.ops.atomic import write_bytes_atomic
from fionagw.ops.log import phi_hash
from fionagw.organize import series_json

LOCK_TIMEOUT_S = 60.0


@dataclass
class IncomingEntry:
    epoch: int
    study_uid: str
    info: dict[str, Any] = field(default_factory=dict)
    raw: str | None = None  # the original text of a line not in our format

    def line(self) -> str:
        if self.raw is not None:
            return self.raw
        text = json.dumps(
            self.info, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str
        )
        return f"{self.epoch} {self.study_uid} {text}"


def parse_line(line: str) -> IncomingEntry | None:
    """An entry, or None for a blank line. A line whose first field is not an epoch, or
    whose rest is not ours, comes back with ``raw`` set (epoch 0 if none)."""
    line = line.rstrip("\r\n")
    if not line.strip():
        return None
    parts = line.split(" ", 2)
    try:
        epoch = int(float(parts[0]))
    except ValueError:
        return IncomingEntry(0, "", raw=line)
    uid = parts[1] if len(parts) > 1 else ""
    if len(parts) == 3:
        try:
            info = json.loads(parts[2])
        except ValueError:
            info = None
        if isinstance(info, dict):
            return IncomingEntry(epoch, uid, info)
    return IncomingEntry(epoch, uid, raw=line)


def _lock(cfg: SiteConfig) -> filelock.FileLock:
    cfg.paths.pids.mkdir(parents=True, exist_ok=True)
    return filelock.FileLock(str(cfg.paths.lock("incoming")), timeout=LOCK_TIMEOUT_S)


def read_entries(cfg: SiteConfig) -> list[IncomingEntry]:
    """The list as it is on disk, in file order."""
    try:
        text = cfg.paths.incoming_list.read_text(encoding="utf-8", errors="surrogateescape")
    except FileNotFoundError:
        return []
    return [e for e in map(parse_line, text.splitlines()) if e is not None]


def find(cfg: SiteConfig, study_uid: str) -> IncomingEntry | None:
    for entry in read_entries(cfg):
        if entry.study_uid == study_uid:
            return entry
    return None


def _write(cfg: SiteConfig, entries: list[IncomingEntry]) -> None:
    path = cfg.paths.incoming_list
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(e.line() + "\n" for e in entries).encode("utf-8", "surrogateescape")
    write_bytes_atomic(path, data, durable=True)


def upsert(
    cfg: SiteConfig, study_uid: str, info: dict[str, Any], *, now: float | None = None
) -> tuple[IncomingEntry, IncomingEntry | None]:
    """Put the study on the list with ``info`` (replacing its line if present).

    Returns (new entry, previous entry or None). ``first_arrived`` is carried over.
    """
    epoch = int(time.time() if now is None else now)
    with _lock(cfg):
        entries = read_entries(cfg)
        previous = next((e for e in entries if e.study_uid == study_uid), None)
        info = dict(info)
        first = (
            previous.info.get("first_arrived")
            if previous is not None and previous.raw is None
            else None
        )
        info["first_arrived"] = first if isinstance(first, int) else epoch
        entry = IncomingEntry(epoch, study_uid, info)
        kept = [e for e in entries if e.study_uid != study_uid]
        _write(cfg, [*kept, entry])
    return entry, previous


def remove(cfg: SiteConfig, study_uid: str) -> bool:
    """Take a study off the list (e.g. once it is assigned); True if it was there."""
    with _lock(cfg):
        entries = read_entries(cfg)
        kept = [e for e in entries if e.study_uid != study_uid]
        if len(kept) == len(entries):
            return False
        _write(cfg, kept)
    return True


def remove_old(
    cfg: SiteConfig, days: float | None = None, *, now: float | None = None
) -> list[IncomingEntry]:
    """FIONA's removeOldEntries: drop entries whose epoch is older than ``days``
    (default ``cfg.arrival.incoming_days``). Lines without an epoch are kept. Returns
    the entries dropped; the file is only rewritten when something was dropped."""
    days = cfg.arrival.incoming_days if days is None else days
    limit = (time.time() if now is None else now) - days * 86400
    with _lock(cfg):
        entries = read_entries(cfg)
        dropped = [e for e in entries if e.epoch and e.epoch < limit]
        if dropped:
            _write(cfg, [e for e in entries if not (e.epoch and e.epoch < limit)])
    return dropped


# -- the summary of a study, from its series JSON files -----------------------------------------


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(str(value).strip())
    except ValueError:
        return default


def study_summary(
    cfg: SiteConfig, study_uid: str, calling: str = "", called: str = "", ip: str = ""
) -> dict[str, Any]:
    """The incoming-list JSON of a study, built from raw/<Study>/*.json (every series the
    study has on disk, including series that arrived in earlier runs; an unreadable record
    is left out with a warning)."""
    records = [(path.stem, rec) for path, rec in series_json.study_series(cfg.paths, study_uid)]
    records.sort(key=lambda r: (_int(r[1].get("SeriesNumber"), 1 << 30), r[0]))
    series = [
        {
            "uid": str(rec.get("SeriesInstanceUID") or stem),
            "number": _int(rec.get("SeriesNumber"), 0),
            "description": str(rec.get("SeriesDescription") or ""),
            "modality": (series_json.modalities(rec) or [""])[0],
            "num_files": series_json.num_files(rec),
            "classify_type": series_json.classify_types(rec),
        }
        for stem, rec in records
    ]
    first = records[0][1] if records else {}
    sender = series_json.incoming_connection(first)
    patient = str(first.get("PatientID") or "")
    return {
        "calling": calling or sender[0],
        "called": called or sender[1],
        "ip": ip or sender[2],
        "accession": str(first.get("AccessionNumber") or ""),
        "study_date": str(first.get("StudyDate") or ""),
        "study_time": str(first.get("StudyTime") or ""),
        "study_description": str(first.get("StudyDescription") or ""),
        "study_id": str(first.get("StudyID") or ""),
        "patient_id_hash": phi_hash(patient) if patient else "",
        "modalities": sorted({s["modality"] for s in series if s["modality"]}),
        "series_count": len(series),
        "images": sum(s["num_files"] for s in series),
        "series": series,
    }
