"""The record of a failed transfer request, and whether it may be queued again.

A request that failed leaves FIONA's pair in ``transfers_fail/``: ``<name>.json_fail.log`` (the
request) and ``<name>.json_fail_messages.log``, whose JSON object holds FIONA's ``request`` and
``error`` and, written here, what a data manager needs to act on it:

``reason``
    what kind of failure (``release_check``, ``deidentification``, ``project``, ``participant``,
    ``study_deleted``, ``send``, ...; see :data:`PERMANENT` and :data:`TRANSIENT`);
``permanent``
    True when trying again cannot help until something changes;
``hits``
    the release check's findings: tag path, kind of identifier and in how many files (never a
    value);
``attempts``, ``failed_at``, ``fingerprint``
    how often it was tried, when it failed (epoch seconds), and a hash of what the outcome
    depends on (:func:`fingerprint`);
``cancelled``
    ``{"by", "at", "note"}`` once a data manager cancelled it.

FIONA's bug fixed here: createTransferRequest queued a failed request again on every run (the
tracker has no transfer date for it), so a release-check failure was retried every minute and
counted anew each time. Now a failed request is held (:class:`Holds`) until its fingerprint
changes (the project's record in projects.yml or REDCap, its de-identification settings, its
destination, the tracker backend, or a series of the study) or a data manager retries it; a
cancelled request is held for good. A record from FIONA (no fingerprint) holds nothing, as
before.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fionagw.config import DEFAULT_DESTINATION, ConfigError, SiteConfig
from fionagw.config.projects import Project
from fionagw.ops.atomic import write_json_atomic
from fionagw.organize.series_json import newest_change
from fionagw.paths import SitePaths
from fionagw.tracking.base import Tracker, TrackerError

# reasons that retrying cannot cure as long as the settings and the study stay as they are
PERMANENT = {
    "release_check": "release check found identifying values",
    "deidentification": "de-identification failed",
    "settings": "de-identification or destination settings are invalid",
    "project": "unknown or inactive project",
    "participant": "participant ID does not match the project's rule",
    "study_deleted": "study or images gone from the archive",
    "nothing_to_send": "nothing to send",
    "held_back": "series held back",
    "tracker_record": "no such request in the tracker",
    "request_file": "unreadable request file",
    "cancelled": "cancelled by a data manager",
    "qc": "held by QC: a check the project gates on failed",
}
# reasons that may pass by themselves: retried with backoff up to sending.max_attempts
TRANSIENT = {
    "send": "the destination did not take the study",
    "tracker": "the tracker could not be reached",
    "disk": "no space or I/O error on the gateway",
}
FAIL_SUFFIX = "_fail.log"  # FIONA's names: after the request file's name "<...>.json"
MESSAGES_SUFFIX = "_fail_messages.log"
MAX_HITS = 200  # distinct (path, kind) pairs kept in a record


@dataclass
class HitSummary:
    path: str  # e.g. "(0008,1140)[0]/(0019,1010)"
    kind: str  # e.g. "patient_name"
    files: int = 1


@dataclass
class FailureRecord:
    name: str  # the request file's name, "<Study>_<project>_<participant>_<n>.json"
    request: dict[str, Any] | None
    error: str
    reason: str = ""
    permanent: bool = True
    hits: list[HitSummary] = field(default_factory=list)
    attempts: int = 1
    failed_at: float = 0.0
    fingerprint: str = ""
    cancelled: dict[str, Any] | None = None

    @property
    def state(self) -> str:
        return "cancelled" if self.cancelled else "failed"

    def as_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        del data["name"]
        return data

    @classmethod
    def from_json(cls, name: str, data: dict[str, Any]) -> FailureRecord:
        hits = []
        for h in data.get("hits") or []:
            if isinstance(h, dict) and isinstance(h.get("path"), str):
                hits.append(HitSummary(h["path"], str(h.get("kind", "")), int(h.get("files", 1))))
        request = data.get("request")
        cancelled = data.get("cancelled")
        return cls(
            name=name,
            request=request if isinstance(request, dict) else None,
            error=str(data.get("error") or ""),
            reason=str(data.get("reason") or ""),
            permanent=bool(data.get("permanent", True)),
            hits=hits,
            attempts=int(data.get("attempts") or 1),
            failed_at=float(data.get("failed_at") or 0.0),
            fingerprint=str(data.get("fingerprint") or ""),
            cancelled=cancelled if isinstance(cancelled, dict) else None,
        )


def summarize_hits(hits: Iterable[tuple[str, str]]) -> list[HitSummary]:
    """(path, kind) of every hit in every file -> one entry per pair with its file count."""
    counts: dict[tuple[str, str], int] = {}
    for path, kind in hits:
        counts[(path, kind)] = counts.get((path, kind), 0) + 1
    return [HitSummary(p, k, n) for (p, k), n in sorted(counts.items())[:MAX_HITS]]


# --- the files ------------------------------------------------------------------------------


def fail_file(paths: SitePaths, name: str) -> Path:
    return paths.transfers_fail / f"{name}{FAIL_SUFFIX}"


def messages_file(paths: SitePaths, name: str) -> Path:
    return paths.transfers_fail / f"{name}{MESSAGES_SUFFIX}"


def write_record(paths: SitePaths, record: FailureRecord, source: Path | None = None) -> Path:
    """Write the messages file first (whoever finds the request copy finds its reason), then the
    request copy: ``source`` moved into place as it is, or else the record's request row."""
    paths.transfers_fail.mkdir(parents=True, exist_ok=True)
    write_json_atomic(messages_file(paths, record.name), record.as_json())
    target = fail_file(paths, record.name)
    if source is not None and source.exists():
        os.replace(source, target)
    elif not target.exists():  # an existing copy is the request as it was: keep it
        write_json_atomic(target, record.request if record.request is not None else {})
    return target


def read_record(paths: SitePaths, name: str) -> FailureRecord | None:
    """The failure record of request ``name``, or None (none, or unreadable)."""
    try:
        data = json.loads(messages_file(paths, name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    try:
        return FailureRecord.from_json(name, data)
    except (TypeError, ValueError):
        return None


def remove_record(paths: SitePaths, name: str) -> None:
    for p in (messages_file(paths, name), fail_file(paths, name)):
        try:
            p.unlink()
        except FileNotFoundError:
            pass


def records(paths: SitePaths) -> Iterator[FailureRecord]:
    """Every failure record (one per request, whatever files it has)."""
    try:
        names = sorted(os.listdir(paths.transfers_fail))
    except FileNotFoundError:
        return
    for file in names:
        if file.endswith(MESSAGES_SUFFIX) and not file.startswith("."):
            record = read_record(paths, file[: -len(MESSAGES_SUFFIX)])
            if record is not None:
                yield record


@dataclass
class FailureCounts:
    failed: int = 0  # requests that failed and nobody cancelled
    cancelled: int = 0
    permanent: int = 0  # of the failed
    by_reason: dict[str, int] = field(default_factory=dict)  # of the failed


def count_failures(paths: SitePaths) -> FailureCounts:
    """Failed requests by state and reason: one request is one, however many files it left."""
    c = FailureCounts()
    seen = set()
    for r in records(paths):
        seen.add(r.name)
        if r.cancelled:
            c.cancelled += 1
            continue
        c.failed += 1
        c.permanent += r.permanent
        c.by_reason[r.reason or "unknown"] = c.by_reason.get(r.reason or "unknown", 0) + 1
    # a FIONA request copy without a readable messages file is a failed request too
    try:
        for file in os.listdir(paths.transfers_fail):
            if file.endswith(FAIL_SUFFIX) and not file.startswith("."):
                if file[: -len(FAIL_SUFFIX)] not in seen:
                    c.failed += 1
                    c.by_reason["unknown"] = c.by_reason.get("unknown", 0) + 1
    except FileNotFoundError:
        pass
    return c


# --- holding a failed request -----------------------------------------------------------------


def _project_data(project: Project | None) -> Any:
    if project is None:
        return None
    data = dataclasses.asdict(project)
    data.pop("redcap_token", None)  # a token is no setting of the transfer (and never hashed)
    return data


def fingerprint(cfg: SiteConfig, project: Project | None, study_uid: str) -> str:
    """A hash of everything a failed request's outcome depends on besides chance: the project's
    record (naming rule, active, features, de-identification settings, destination name), the
    destination's settings, the tracker backend (it chooses the default de-identification mode)
    and when a series of the study last changed (a late or re-filed series)."""
    destination = None
    if project is not None:
        destination = cfg.destinations.get(project.destination or DEFAULT_DESTINATION)
    data = {
        "project": _project_data(project),
        "destination": repr(destination),
        "tracker": cfg.tracker.backend,
        "series_changed": newest_change(cfg.paths.raw_study_dir(study_uid)),
    }
    text = json.dumps(
        data, sort_keys=True, default=lambda v: sorted(v) if isinstance(v, set) else str(v)
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


class Holds:
    """``holds(name, project, study_uid)``: is request ``name`` held back from the queue? Reads
    the tracker's projects once, and only when some request has a failure record."""

    def __init__(self, cfg: SiteConfig, tracker: Tracker) -> None:
        self.cfg = cfg
        self.tracker = tracker
        self._projects: dict[str, Project] | None = None

    def __call__(self, name: str, project: str, study_uid: str) -> bool:
        record = read_record(self.cfg.paths, name)
        if record is None:
            return False
        if record.cancelled:
            return True
        if not record.fingerprint:
            return False
        if self._projects is None:
            try:
                self._projects = self.tracker.projects()
            except (TrackerError, ConfigError):  # nothing to compare with: keep holding
                return True
        return record.fingerprint == fingerprint(self.cfg, self._projects.get(project), study_uid)
