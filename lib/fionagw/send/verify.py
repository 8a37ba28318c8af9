"""What a research PACS really holds of a study: C-FIND at study, series and instance level.

The C-STORE responses say the PACS took each instance; they do not prove it kept them (a PACS
can drop, reject later or lose instances; a human can delete them). :func:`verify_study` asks
the PACS (Study Root C-FIND, FIONA's whatIsInIDS7 findscu query) and compares with what was
sent:

* study level: NumberOfStudyRelatedInstances; no answer at all means the study is missing;
* series level: NumberOfSeriesRelatedInstances of every series;
* instance level (IMAGE): the SOP Instance UIDs of every sent series. Only then can a transfer
  be "verified": every sent SOP Instance UID is there. A PACS that refuses instance-level
  queries gives counts only: matching counts are "unconfirmed", short counts "incomplete".
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fionagw.pacs.find import STUDY_ROOT_FIND, QueryError
from fionagw.pacs.find import count as _count
from fionagw.pacs.find import find as _find
from fionagw.pacs.find import query as _query
from fionagw.send.base import SendError, one_line

if TYPE_CHECKING:
    from fionagw.send.dicom import DicomDestination

log = logging.getLogger("fionagw.send.verify")

# outcomes, from best to worst
VERIFIED = "verified"  # every sent SOP Instance UID is in the PACS
UNCONFIRMED = "unconfirmed"  # the counts match, but the PACS does not list instances
INCOMPLETE = "incomplete"  # some sent instances are not there
MISSING = "missing"  # the PACS does not know the study
UNVERIFIABLE = "unverifiable"  # the PACS could not be asked (down, no C-FIND): try later
STATUSES = (VERIFIED, UNCONFIRMED, INCOMPLETE, MISSING, UNVERIFIABLE)


@dataclass
class Verification:
    """The comparison of a sent study with the PACS. ``missing`` holds the SOP Instance UIDs
    sent but not found (instance level), ``short`` the number missing by the counts."""

    status: str
    expected: int
    found: int = 0
    missing: list[str] = field(default_factory=list)
    method: str = ""  # "instances" or "counts"
    error: str = ""

    @property
    def verified(self) -> bool:
        return self.status == VERIFIED

    def summary(self) -> str:
        """One line: "sent 240, verified 240" or why not."""
        if self.status == VERIFIED:
            return f"sent {self.expected}, verified {self.found}"
        if self.status == UNVERIFIABLE:
            return f"sent {self.expected}, not verified: {self.error}"
        if self.status == MISSING:
            return f"sent {self.expected}, the study is not in the PACS"
        if self.status == UNCONFIRMED:
            return (
                f"sent {self.expected}, the PACS counts {self.found} (it does not list instances)"
            )
        return f"sent {self.expected}, found {self.found}, {self.expected - self.found} missing"


def compare(
    expected: Mapping[str, Sequence[str]],
    series_counts: Mapping[str, int | None],
    instances: Mapping[str, set[str]] | None,
) -> Verification:
    """The verdict from what the PACS answered (pure: the tests feed it directly).
    ``expected``: series UID -> sent SOP UIDs; ``instances``: series UID -> SOP UIDs found,
    or None when the PACS answered counts only."""
    total = sum(len(sops) for sops in expected.values())
    if instances is not None:
        missing = [
            sop
            for series, sops in expected.items()
            for sop in sops
            if sop not in instances.get(series, set())
        ]
        found = total - len(missing)
        status = VERIFIED if not missing else INCOMPLETE
        return Verification(status, total, found, missing, "instances")
    found = sum(min(series_counts.get(series) or 0, len(sops)) for series, sops in expected.items())
    return Verification(UNCONFIRMED if found == total else INCOMPLETE, total, found, [], "counts")


def verify_study(
    destination: DicomDestination, study_uid: str, expected: Mapping[str, Sequence[str]]
) -> Verification:
    """Ask the destination's PACS what it holds of ``study_uid`` (de-identified) and compare
    with ``expected`` (series UID -> SOP UIDs sent). Never raises: a PACS that cannot be asked
    gives UNVERIFIABLE with the reason."""
    from pynetdicom import build_context

    total = sum(len(s) for s in expected.values())
    try:
        ae, assoc = destination.associate_for_query([build_context(STUDY_ROOT_FIND)])
    except SendError as exc:
        return Verification(UNVERIFIABLE, total, error=str(exc))
    try:
        study = _find(
            assoc, _query("STUDY", StudyInstanceUID=study_uid, NumberOfStudyRelatedInstances="")
        )
        if not study:
            return Verification(MISSING, total, 0, [s for v in expected.values() for s in v])
        series = _find(
            assoc,
            _query(
                "SERIES",
                StudyInstanceUID=study_uid,
                SeriesInstanceUID="",
                NumberOfSeriesRelatedInstances="",
            ),
        )
        counts = {
            str(ds.get("SeriesInstanceUID", "")): _count(ds, "NumberOfSeriesRelatedInstances")
            for ds in series
        }
        instances: dict[str, set[str]] | None = {}
        for series_uid in expected:
            if series_uid not in counts:
                instances[series_uid] = set()  # type: ignore[index]
                continue
            try:
                found = _find(
                    assoc,
                    _query(
                        "IMAGE",
                        StudyInstanceUID=study_uid,
                        SeriesInstanceUID=series_uid,
                        SOPInstanceUID="",
                    ),
                )
            except QueryError as exc:  # a PACS without instance-level queries: counts only
                log.info(
                    "no instance-level C-FIND", extra={"peer": destination.where, "error": str(exc)}
                )
                instances = None
                break
            instances[series_uid] = {str(ds.get("SOPInstanceUID", "")) for ds in found}  # type: ignore[index]
        result = compare(expected, counts, instances)
    except QueryError as exc:
        return Verification(UNVERIFIABLE, total, error=f"{destination.where}: {exc}")
    except (RuntimeError, OSError) as exc:  # association lost in mid-query
        return Verification(UNVERIFIABLE, total, error=f"{destination.where}: {one_line(exc)}")
    finally:
        destination.close(ae, assoc)
    log.info(
        "study checked in the PACS",
        extra={
            "destination": destination.name,
            "study_uid": study_uid,
            "status": result.status,
            "expected": result.expected,
            "found": result.found,
        },
    )
    return result
