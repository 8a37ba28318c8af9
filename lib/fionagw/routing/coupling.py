"""Coupling lists: CSV files that assign studies to projects before (or after) they arrive.

Format (FIONA): `AccessionNumber,ProjectName,subjectid,eventname`, LF or CRLF, an optional
header line. An accession number may be given as a StudyInstanceUID instead (a value made
of digits and dots with at least three parts). Every row is checked against the project
(exists, is active, the participant ID matches its pattern, the event is one of its
events); any bad row rejects the whole file, with every problem reported by line number.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from fionagw.config.projects import Project
from fionagw.tracking.base import Tracker
from fionagw.tracking.records import CouplingEntry

HEADER = ["accessionnumber", "projectname", "subjectid", "eventname"]
_UID = re.compile(r"^[0-9]+(\.[0-9]+){2,}$")
MAX_BYTES = 5 * 1024 * 1024


@dataclass
class RowError:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


class CouplingListError(Exception):
    def __init__(self, source: str, errors: list[RowError]) -> None:
        self.source, self.errors = source, errors
        super().__init__(
            f"{source}: {len(errors)} bad line(s), nothing imported: "
            + "; ".join(str(e) for e in errors[:20])
        )


def parse_coupling_list(
    text: str,
    projects: dict[str, Project],
    source: str = "coupling list",
) -> list[CouplingEntry]:
    """Validate every row; return the entries, or raise CouplingListError listing all bad rows."""
    errors: list[RowError] = []
    entries: list[CouplingEntry] = []
    seen: dict[str, int] = {}
    for lineno, row in enumerate(csv.reader(io.StringIO(text.lstrip("\ufeff"))), start=1):
        cells = [c.strip() for c in row]
        if not any(cells):
            continue
        if lineno == 1 and [c.lower().replace(" ", "") for c in cells] == HEADER:
            continue
        if len(cells) != 4:
            errors.append(
                RowError(
                    lineno,
                    f"expected 4 fields (AccessionNumber,ProjectName,subjectid,"
                    f"eventname), got {len(cells)}",
                )
            )
            continue
        accession, project_name, subject, event = cells
        if not accession:
            errors.append(RowError(lineno, "AccessionNumber is empty"))
            continue
        project = projects.get(project_name)
        if project is None:
            known = ", ".join(sorted(projects)) or "none"
            errors.append(RowError(lineno, f"unknown project {project_name!r} (known: {known})"))
            continue
        if not project.active:
            errors.append(RowError(lineno, f"project {project_name} is not active"))
            continue
        if not project.valid_participant(subject):
            errors.append(
                RowError(
                    lineno,
                    f"participant ID {subject!r} does not match project "
                    f"{project_name}'s pattern {project.participant_id}",
                )
            )
            continue
        if event and project.events and event not in project.events:
            errors.append(
                RowError(
                    lineno,
                    f"event {event!r} is not an event of {project_name} "
                    f"({', '.join(project.events)})",
                )
            )
            continue
        if accession in seen:
            errors.append(
                RowError(lineno, f"{accession} is already assigned on line {seen[accession]}")
            )
            continue
        seen[accession] = lineno
        is_uid = bool(_UID.match(accession))
        entries.append(
            CouplingEntry(
                record_id="",
                cl_projectname=project_name,
                cl_subjectid=subject,
                cl_eventname=event,
                cl_accessionnumber="" if is_uid else accession,
                cl_studyinstanceuid=accession if is_uid else "",
            )
        )
    if errors:
        raise CouplingListError(source, errors)
    return entries


def import_coupling_list(tracker: Tracker, path: Path) -> int:
    """Read, validate and store a coupling-list file: all rows or none."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CouplingListError(str(path), [RowError(0, f"cannot read: {exc.strerror}")]) from None
    if len(data) > MAX_BYTES:
        raise CouplingListError(str(path), [RowError(0, f"file is larger than {MAX_BYTES} bytes")])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    entries = parse_coupling_list(text, tracker.projects(), str(path))
    return tracker.add_coupling_entries(entries)


def matches(entry: CouplingEntry, accession: str, study_uid: str) -> bool:
    return bool(entry.cl_accessionnumber and entry.cl_accessionnumber == accession) or bool(
        entry.cl_studyinstanceuid and entry.cl_studyinstanceuid == study_uid
    )
