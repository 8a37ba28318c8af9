"""One C-FIND exchange (Study Root; Patient Root for PATIENT level) and its identifiers: the one place every query goes through,
the clinical PACS's (pacs/client.py) and the research PACS's verification (send/verify.py).

pydicom only; pynetdicom's association is passed in by the caller.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydicom.dataset import Dataset

from fionagw.send.base import one_line

if TYPE_CHECKING:
    from pynetdicom.association import Association

STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"  # Study Root Query/Retrieve - FIND
PATIENT_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.1.1"  # for PATIENT-level queries only
STUDY_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
STUDY_ROOT_GET = "1.2.840.10008.5.1.4.1.2.2.3"
LEVELS = ("PATIENT", "STUDY", "SERIES", "IMAGE")
PENDING = (0xFF00, 0xFF01)


class QueryError(Exception):
    """A C-FIND that did not end with Success; str() is one line."""


def find(assoc: Association, query: Dataset, model: str = STUDY_ROOT_FIND) -> list[Dataset]:
    """The matches of one C-FIND (Study Root unless ``model`` says otherwise), or QueryError."""
    matches = []
    for status, identifier in assoc.send_c_find(query, model):
        if "Status" not in status:
            raise QueryError("no answer to C-FIND (timed out or the association was lost)")
        code = int(status.Status)
        if code in PENDING:
            if identifier is not None:
                matches.append(identifier)
        elif code == 0x0000:
            return matches
        else:
            comment = str(status.get("ErrorComment", "") or "")
            raise QueryError(
                f"C-FIND answered with status 0x{code:04X}"
                + (f": {one_line(comment)}" if comment else "")
            )
    raise QueryError("C-FIND ended without a final status")


def query(level: str, **keys: str) -> Dataset:
    """An identifier: QueryRetrieveLevel plus the given keys ("" asks for a return value)."""
    if level not in LEVELS:
        raise ValueError(f"unknown query level {level!r} (known: {', '.join(LEVELS)})")
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    for key, value in keys.items():
        setattr(ds, key, value)
    return ds


def count(ds: Dataset, keyword: str) -> int | None:
    """A Number Of ... Related Instances value as a number (None when absent or not one)."""
    try:
        return int(str(ds.get(keyword, "")).strip())
    except ValueError:
        return None
