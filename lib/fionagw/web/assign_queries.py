"""What the Assign page shows and does, without HTTP: the incoming studies of the last days
(incoming list + tracker), who may see which, the project/participant/event choices, the
assignment itself (a tracker transfer request) and coupling-list uploads.

Studies are addressed by an opaque key, an HMAC of the StudyInstanceUID with the app's secret
key (:func:`study_key`): URLs never carry a UID, accession number or anything about the
patient, and a key cannot be guessed or turned back into a UID. Patient names and IDs are not
shown at all (the incoming list and the tracker only hold their SHA-256).

Visibility: a user sees the studies no project has yet (unassigned), and the studies assigned
(by a transfer request, or uploaded on the Attach page for a project) to a project where the
user has a role; an admin sees everything.

A failed assignment shows its failure record (transfers/failures.py): the reason, whether trying
again can help, and the release check's tag paths (never a value); one waiting for the retry of
its send shows "retrying"; a cancelled one "cancelled". Those with the assign role on its
project may retry, cancel or reassign it (assign_actions.py).
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import logging
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom.datadict import keyword_for_tag

from fionagw.arrival.incoming import IncomingEntry, read_entries
from fionagw.classify.record import NO_DESCRIPTION
from fionagw.config import SiteConfig
from fionagw.config.projects import Project
from fionagw.organize.series_json import study_series
from fionagw.routing.coupling import MAX_BYTES as COUPLING_MAX_BYTES
from fionagw.routing.coupling import CouplingListError, RowError, import_coupling_list
from fionagw.routing.populate import series_record, study_record
from fionagw.routing.requests import request_path
from fionagw.tracking.base import Tracker, TrackerError
from fionagw.tracking.records import (
    COMPLETE_ERROR,
    COMPLETE_OK,
    ERROR_ANONYMIZATION,
    ERROR_SEND,
    IncomingStudy,
    Transfer,
)
from fionagw.transfers.failures import PERMANENT, TRANSIENT, FailureRecord, read_record
from fionagw.transfers.queue import RequestQueue
from fionagw.upload.records import upload_projects
from fionagw.web.id_pattern import participant_hint

LOGGER = logging.getLogger(__name__)

PER_PAGE = 50
__all__ = ["COUPLING_MAX_BYTES"]  # re-exported for the upload form's size check
MAX_PER_PAGE = 1000
ROLES_THAT_SEE = ("assign", "export", "review")

# may_see(project) -> bool: does the user have any role on this project (admin: always)
MaySee = Callable[[str], bool]


def study_key(secret: bytes, study_uid: str) -> str:
    """The opaque id of a study in URLs (24 hex characters)."""
    return hmac.new(secret, b"study:" + study_uid.encode("utf-8"), hashlib.sha256).hexdigest()[:24]


def may_see_for(user: Any) -> MaySee:
    """The visibility test of a user (``fionagw.web.users.User``: is_admin, has_role)."""

    def may_see(project: str) -> bool:
        return bool(user.is_admin) or any(user.has_role(project, r) for r in ROLES_THAT_SEE)

    return may_see


def may_act_for(user: Any) -> MaySee:
    """May the user retry, cancel or reassign a failed request of this project."""

    def may_act(project: str) -> bool:
        return bool(user.is_admin) or bool(user.has_role(project, "assign"))

    return may_act


# --- rows -----------------------------------------------------------------------------------


@dataclass
class SeriesRow:
    number: int
    description: str
    modality: str
    images: int
    classify_type: list[str]


@dataclass
class FailureDetail:
    """What the failure record of a failed assignment says, ready to show."""

    kind: str  # the reason in words, e.g. "release check found identifying values"
    permanent: bool  # trying again cannot help until something changes
    attempts: int
    when: str  # local time it failed (or was cancelled)
    hits: list[str] = field(default_factory=list)  # "(0008,0090) ReferringPhysicianName: ..."
    more_hits: int = 0
    cancelled: str = ""  # "by NAME at TIME (note)"
    next_try: str = ""  # retrying: local time of the next attempt


@dataclass
class Assignment:
    project: str
    participant: str
    event: str
    requested: str
    state: str  # "requested", "sent", "failed", "retrying", "cancelled"
    sent: str = ""  # transfer_date
    reason: str = ""  # why it failed
    instance: int = 0  # the tracker's repeat instance: names the assignment in a URL
    detail: FailureDetail | None = None
    can_act: bool = False  # the user may retry, cancel or reassign it
    verified: str = ""  # what the research PACS holds: "sent 240, verified 240"
    verification: str = ""  # its status (fionagw.send.verify.STATUSES), "" if never checked
    checked: str = ""  # when the PACS was last asked
    transfer: Transfer | None = field(default=None, repr=False, compare=False)


@dataclass
class StudyRow:
    key: str
    study_uid: str
    epoch: int
    arrived: str  # local time the study (last) arrived, "YYYY-MM-DD HH:MM"
    study_date: str  # YYYY-MM-DD when the header had a DICOM date
    study_time: str
    description: str
    accession: str
    calling: str
    called: str
    modalities: list[str]
    images: int
    series: list[SeriesRow]
    assignments: list[Assignment] = field(default_factory=list)
    uploaded_for: str = ""  # project chosen on the Attach page

    @property
    def projects(self) -> set[str]:
        found = {a.project for a in self.assignments}
        if self.uploaded_for:
            found.add(self.uploaded_for)
        return found

    @property
    def state(self) -> str:
        """The study's overall state for the list: unassigned, requested, sent, failed."""
        states = {a.state for a in self.assignments}
        for s in ("failed", "retrying", "requested", "sent", "cancelled"):
            if s in states:
                return s
        return "unassigned"

    def haystack(self) -> str:
        date = self.study_date
        return " ".join(
            [
                self.accession,
                date,
                date.replace("-", ""),
                self.arrived,
                self.calling,
                self.called,
                self.description,
                *self.modalities,
            ]
        ).lower()


def _date(value: str) -> str:
    v = value.strip()
    return f"{v[:4]}-{v[4:6]}-{v[6:8]}" if len(v) == 8 and v.isdigit() else v


def _time(value: str) -> str:
    v = value.strip()
    return f"{v[:2]}:{v[2:4]}" if len(v) >= 4 and v[:4].isdigit() else v


def failure_reason(message: str) -> str:
    """One readable line from transfer_error_message (FIONA: a JSON dump of what failed)."""
    text = (message or "").strip()
    if not text:
        return "no reason recorded"
    try:
        data = json.loads(text)
    except ValueError:
        return text.splitlines()[0][:300]
    if isinstance(data, dict):
        for key in ("error", "reason", "message", "problem"):
            value = data.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip().splitlines()[0][:300]
        for step in ("anonymize", "storescu", "send", "deid"):
            code = data.get(f"{step}_return_code")
            if code not in (None, 0, "0"):
                out = str(data.get(f"{step}_output") or "").strip().splitlines()
                return f"{step} failed (exit {code})" + (f": {out[-1][:200]}" if out else "")
        return ", ".join(f"{k}: {v}" for k, v in data.items() if k != "request")[:300] or text[:300]
    return str(data)[:300]


def assignment(t: Transfer) -> Assignment:
    if t.transfers_complete == COMPLETE_ERROR or t.transfer_error & {
        ERROR_ANONYMIZATION,
        ERROR_SEND,
    }:
        state = "failed"
    elif t.transfers_complete == COMPLETE_OK or t.transfer_date:
        state = "sent"
    else:
        state = "requested"
    return Assignment(
        t.transfer_project_name,
        t.transfer_name,
        t.transfer_event_name,
        t.transfer_requested_date,
        state,
        t.transfer_date,
        failure_reason(t.transfer_error_message) if state == "failed" else "",
        instance=t.instance,
        transfer=t,
    )


# --- failure details ------------------------------------------------------------------------

_LAST_TAG = re.compile(r"\(([0-9A-Fa-f]{4}),([0-9A-Fa-f]{4})\)$")
SHOWN_HITS = 50


def tag_path_label(path: str, kind: str = "", files: int = 0) -> str:
    """``(0008,0090) ReferringPhysicianName: staff name, in 2 files`` (private and unknown
    tags keep the path alone). The path and the kind of value, never the value."""
    m = _LAST_TAG.search(path)
    keyword = keyword_for_tag(int(m.group(1) + m.group(2), 16)) if m else ""
    text = f"{path} {keyword}" if keyword else path
    if kind:
        text += f": {kind.replace('_', ' ')}"
    if files > 1:
        text += f", in {files} files"
    return text


def _stamp(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(epoch)) if epoch else ""


def failure_detail(record: FailureRecord) -> FailureDetail:
    kinds = {**PERMANENT, **TRANSIENT}
    cancelled = ""
    if record.cancelled:
        c = record.cancelled
        cancelled = f"by {c.get('by', '?')} at {_stamp(float(c.get('at') or 0))}" + (
            f" ({c['note']})" if c.get("note") else ""
        )
    return FailureDetail(
        kind=kinds.get(record.reason, record.reason or "failed"),
        permanent=record.permanent,
        attempts=record.attempts,
        when=_stamp(record.failed_at),
        hits=[tag_path_label(h.path, h.kind, h.files) for h in record.hits[:SHOWN_HITS]],
        more_hits=max(0, len(record.hits) - SHOWN_HITS),
        cancelled=cancelled,
    )


def add_failure_details(cfg: SiteConfig, rows: list[StudyRow], may_act: MaySee) -> None:
    """Put each failed assignment's failure record (or its retry state, when its send waits
    for the next try) into ``rows``; ``may_act(project)``: may the user act on it."""
    queue = RequestQueue(cfg.paths)
    for row in rows:
        for a in row.assignments:
            if a.state != "failed" or a.transfer is None:
                continue
            a.can_act = may_act(a.project)
            path = request_path(cfg, a.transfer)
            record = read_record(cfg.paths, path.name)
            if path.exists():  # queued again: a send waiting for its retry, or re-queued
                state = queue.state(path)
                a.state = "retrying" if state.attempts else "requested"
                if state.attempts:
                    a.reason = state.last_error or a.reason
                    a.detail = FailureDetail(
                        "waiting to try again",
                        False,
                        state.attempts,
                        "",
                        next_try=_stamp(state.next_try),
                    )
                continue
            if record is None:
                continue
            a.detail = failure_detail(record)
            a.reason = record.error or a.reason
            if record.cancelled:
                a.state = "cancelled"
                a.can_act = False


def _description(value: object) -> str:
    """The study description to show: FIONA's placeholder for none is not data."""
    text = str(value or "")
    return "" if text == NO_DESCRIPTION else text


def study_row(
    secret: bytes, entry: IncomingEntry, tracked: IncomingStudy | None, uploaded_for: str = ""
) -> StudyRow:
    info = entry.info
    series = [
        SeriesRow(
            int(s.get("number") or 0),
            str(s.get("description") or ""),
            str(s.get("modality") or ""),
            int(s.get("num_files") or 0),
            [str(c) for c in s.get("classify_type") or []],
        )
        for s in info.get("series") or []
        if isinstance(s, dict)
    ]
    return StudyRow(
        key=study_key(secret, entry.study_uid),
        study_uid=entry.study_uid,
        epoch=entry.epoch,
        arrived=time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.epoch)),
        study_date=_date(str(info.get("study_date") or "")),
        study_time=_time(str(info.get("study_time") or "")),
        description=_description(info.get("study_description")),
        accession=str(info.get("accession") or ""),
        calling=str(info.get("calling") or ""),
        called=str(info.get("called") or ""),
        modalities=[str(m) for m in info.get("modalities") or []],
        images=int(info.get("images") or sum(s.images for s in series)),
        series=series,
        assignments=[assignment(t) for t in tracked.transfers] if tracked else [],
        uploaded_for=uploaded_for,
    )


def visible(row: StudyRow, may_see: MaySee) -> bool:
    projects = row.projects
    return not projects or any(may_see(p) for p in projects)


def incoming_studies(
    cfg: SiteConfig,
    tracker: Tracker,
    secret: bytes,
    may_see: MaySee,
    *,
    query: str = "",
    now: float | None = None,
    uploads: dict[str, str] | None = None,
) -> list[StudyRow]:
    """The studies of the incoming list of the last ``arrival.incoming_days`` days that the
    user may see and that match every word of ``query``, newest first.

    ``uploads`` maps StudyInstanceUID -> project for Attach uploads made for a project.
    """
    limit = (time.time() if now is None else now) - cfg.arrival.incoming_days * 86400
    entries = [e for e in read_entries(cfg) if e.raw is None and e.study_uid and e.epoch >= limit]
    tracked = tracker.get_studies([e.study_uid for e in entries]) if entries else {}
    uploads = uploads or {}
    words = query.lower().split()
    rows = []
    for e in entries:
        row = study_row(secret, e, tracked.get(e.study_uid), uploads.get(e.study_uid, ""))
        if not visible(row, may_see):
            continue
        if words:
            hay = row.haystack()
            if not all(w in hay for w in words):
                continue
        rows.append(row)
    rows.sort(key=lambda r: (r.epoch, r.study_uid), reverse=True)
    return rows


def find_study(
    cfg: SiteConfig,
    tracker: Tracker,
    secret: bytes,
    key: str,
    may_see: MaySee,
    *,
    uploads: dict[str, str] | None = None,
) -> StudyRow | None:
    """The study behind ``key`` if it is on the list and the user may see it."""
    for e in read_entries(cfg):
        if (
            e.raw is None
            and e.study_uid
            and hmac.compare_digest(study_key(secret, e.study_uid), key)
        ):
            tracked = tracker.get_studies([e.study_uid]).get(e.study_uid)
            row = study_row(secret, e, tracked, (uploads or {}).get(e.study_uid, ""))
            if tracked is None:  # not recorded yet: its requests may still exist
                row.assignments = [assignment(t) for t in tracker.transfers(study_uid=e.study_uid)]
            return row if visible(row, may_see) else None
    return None


@dataclass
class Page:
    rows: list[StudyRow]
    number: int
    pages: int
    total: int
    per_page: int

    @property
    def first_index(self) -> int:
        return (self.number - 1) * self.per_page + 1 if self.total else 0

    @property
    def last_index(self) -> int:
        return min(self.total, self.number * self.per_page)


def paginate(rows: list[StudyRow], number: int = 1, per_page: int = PER_PAGE) -> Page:
    per_page = max(1, min(per_page, MAX_PER_PAGE))
    pages = max(1, -(-len(rows) // per_page))
    number = max(1, min(number, pages))
    start = (number - 1) * per_page
    return Page(rows[start : start + per_page], number, pages, len(rows), per_page)


def attach_uploads(cfg: SiteConfig, now: float | None = None) -> dict[str, str]:
    """StudyInstanceUID -> project of the Attach uploads made for a project within the incoming
    list's ``arrival.incoming_days``."""
    since = (time.time() if now is None else now) - cfg.arrival.incoming_days * 86400
    return upload_projects(cfg, since)


def study_list(
    cfg: SiteConfig,
    tracker: Tracker,
    secret: bytes,
    user: Any,
    *,
    query: str = "",
    number: int = 1,
    per_page: int = PER_PAGE,
) -> Page:
    """One page of the list the user sees (see :func:`incoming_studies`)."""
    rows = incoming_studies(
        cfg, tracker, secret, may_see_for(user), query=query, uploads=attach_uploads(cfg)
    )
    page = paginate(rows, number, per_page)
    add_failure_details(cfg, page.rows, may_act_for(user))
    add_verifications(tracker, page.rows)
    return page


def user_study(
    cfg: SiteConfig, tracker: Tracker, secret: bytes, user: Any, key: str
) -> StudyRow | None:
    """The study behind ``key`` if the user may see it (see :func:`find_study`), with the
    details of its failed assignments."""
    row = find_study(cfg, tracker, secret, key, may_see_for(user), uploads=attach_uploads(cfg))
    if row is not None:
        add_failure_details(cfg, [row], may_act_for(user))
        add_verifications(tracker, [row])
    return row


def add_verifications(tracker: Tracker, rows: list[StudyRow]) -> None:
    """What the research PACS holds of each sent assignment (its last PACS check); nothing
    when the tracker keeps no checks (a REDCap without the WhatIsInIDS7 project)."""
    if not any(a.state == "sent" for r in rows for a in r.assignments):
        return
    try:
        checks = tracker.pacs_checks() if len(rows) > 1 else tracker.pacs_checks(rows[0].study_uid)
    except TrackerError as exc:
        LOGGER.warning("PACS checks unavailable", extra={"error": str(exc)})
        return
    by_key = {(c.study_instance_uid, c.transfer_instance): c for c in checks}
    for r in rows:
        for a in r.assignments:
            c = by_key.get((r.study_uid, a.instance))
            if c is not None and a.state == "sent":
                a.verified, a.verification, a.checked = (
                    c.summary(),
                    c.ids7_status,
                    c.ids7_checked_date,
                )


# --- choices and the assignment ---------------------------------------------------------------


def assignable_projects(tracker: Tracker, user: Any) -> dict[str, Project]:
    """Active projects where the user has the assign role, by name."""
    return {
        name: p
        for name, p in sorted(tracker.projects().items())
        if p.active and user.has_role(name, "assign")
    }


def participants(tracker: Tracker, project: str) -> list[str]:
    """Participant IDs the project already has (from the tracker's transfer requests)."""
    return sorted({t.transfer_name for t in tracker.transfers(project=project) if t.transfer_name})


@dataclass
class Choice:
    """A (possibly half-filled) assignment form and what is wrong with it, field by field."""

    project: str = ""
    participant: str = ""  # an existing participant picked from the list
    new_participant: str = ""  # or a new ID typed in
    event: str = ""
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.new_participant.strip() or self.participant.strip()

    @property
    def ok(self) -> bool:
        return not self.errors


def check_choice(choice: Choice, projects: dict[str, Project], existing: list[str]) -> Choice:
    """Validate the form against the project (regex, events); errors go into ``choice.errors``."""
    choice.errors = {}
    project = projects.get(choice.project)
    if project is None:
        choice.errors["project"] = (
            "Choose a project."
            if not choice.project
            else f"Project {choice.project} is not one you may assign to (or it is not active)."
        )
        return choice
    new, picked = choice.new_participant.strip(), choice.participant.strip()
    if new and picked and new != picked:
        choice.errors["participant"] = "Pick an existing participant or type a new ID, not both."
    elif not choice.name:
        choice.errors["participant"] = "Choose a participant or type a new participant ID."
    elif new and not project.valid_participant(new):
        choice.errors["participant"] = (
            f"{new!r} is not a valid participant ID for {project.name}: "
            f"it must match {project.participant_id} ({participant_hint(project.participant_id)})"
        )
    elif picked and not new and picked not in existing and not project.valid_participant(picked):
        choice.errors["participant"] = f"{picked!r} is not a participant of {project.name}."
    if project.events:
        if not choice.event:
            choice.errors["event"] = "Choose an event."
        elif choice.event not in project.events:
            choice.errors["event"] = f"{choice.event!r} is not an event of {project.name}."
    elif choice.event:
        choice.errors["event"] = f"{project.name} has no events."
    return choice


def check_user_choice(tracker: Tracker, user: Any, choice: Choice) -> Choice:
    """:func:`check_choice` against the projects the user may assign to."""
    projects = assignable_projects(tracker, user)
    existing = participants(tracker, choice.project) if choice.project in projects else []
    return check_choice(choice, projects, existing)


@dataclass
class StudyForm:
    """What a study's assignment form offers the user."""

    choice: Choice
    projects: dict[str, Project]  # the user's assignable projects
    project: Project | None  # the chosen one
    existing: list[str]  # its participants so far


def study_form(tracker: Tracker, user: Any, row: StudyRow, choice: Choice) -> StudyForm:
    """The form for ``row``; the project chosen on the Attach page is the default choice."""
    projects = assignable_projects(tracker, user)
    if not choice.project and row.uploaded_for in projects:
        choice.project = row.uploaded_for
    project = projects.get(choice.project)
    existing = participants(tracker, project.name) if project else []
    return StudyForm(choice, projects, project, existing)


def ensure_recorded(cfg: SiteConfig, tracker: Tracker, study_uid: str) -> None:
    """Record the study in the tracker now if populateIncoming has not done so yet (it waits
    for series to settle for a minute): the trackers show a study's transfers only with its
    study record. Built from the series JSON exactly as populateIncoming builds it."""
    if study_uid in tracker.get_studies([study_uid]):
        return
    records = [record for _, record in study_series(cfg.paths, study_uid)]
    if records:
        tracker.save_study(study_record(study_uid, records), [series_record(r) for r in records])


def assign(cfg: SiteConfig, tracker: Tracker, study_uid: str, choice: Choice) -> Transfer | None:
    """Create the transfer request (createTransferRequest writes its file on its next run).

    None when the same (project, participant, event) was already requested for the study.
    """
    if not choice.ok:
        raise ValueError("assignment has errors: " + "; ".join(choice.errors.values()))
    ensure_recorded(cfg, tracker, study_uid)
    return tracker.request_transfer(study_uid, choice.project, choice.name, choice.event)


# --- coupling lists -------------------------------------------------------------------------


def coupling_role_errors(text: str, user: Any, projects: set[str]) -> list[RowError]:
    """Rows naming an existing project on which the user lacks the assign role."""
    errors = []
    for lineno, row in enumerate(csv.reader(io.StringIO(text.lstrip("\ufeff"))), start=1):
        if (
            len(row) == 4
            and row[1].strip() in projects
            and not user.has_role(row[1].strip(), "assign")
        ):
            errors.append(
                RowError(
                    lineno,
                    f"you ({user.name}) do not have the assign role on project {row[1].strip()}",
                )
            )
    return errors


def import_user_coupling(tracker: Tracker, user: Any, data: bytes, tmpdir: Path) -> int:
    """:func:`import_coupling_upload` for a user: a row for a project where the user lacks the
    assign role refuses the whole list (CouplingListError lists those rows)."""
    text = data.decode("utf-8", errors="replace")
    errors = coupling_role_errors(text, user, set(tracker.projects()))
    if errors:
        raise CouplingListError("upload", errors)
    return import_coupling_upload(tracker, data, tmpdir)


def import_coupling_upload(tracker: Tracker, data: bytes, tmpdir: Path) -> int:
    """Validate and store an uploaded coupling list with the very code of
    ``fiona coupling-list import`` (all rows or none); CouplingListError lists every bad line.
    An upload without any row is refused too."""
    tmpdir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=tmpdir, prefix=".coupling-", suffix=".csv") as f:
        f.write(data)
        f.flush()
        count = import_coupling_list(tracker, Path(f.name))
    if not count:
        raise CouplingListError(
            "upload",
            [
                RowError(
                    0, "no rows (expected lines AccessionNumber,ProjectName,subjectid,eventname)"
                )
            ],
        )
    return count
