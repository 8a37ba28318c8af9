"""mapping.json: the original -> de-identified study and series UIDs of one transfer.

DICOMAnonymizer writes it with ``-m``: ``{"StudyInstanceUID": {old: new},
"SeriesInstanceUID": {old: new}}`` (keys sorted); FIONA stores the comma-joined new study UIDs
as ``transfer_mapped_uid``. The new UIDs are a pure function of the old ones and the project's
settings, so the mapping can be written before, during or after the files.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from fionagw.deid.engine import Deidentifier, DeidSettings
from fionagw.deid.factory import deidentifier_for
from fionagw.ops.atomic import write_json_atomic

FILE_NAME = "mapping.json"


def study_mapping(
    deid: Deidentifier | DeidSettings, study_uids: str | Iterable[str], series_uids: Iterable[str]
) -> dict[str, dict[str, str]]:
    """``{"StudyInstanceUID": {old: new}, "SeriesInstanceUID": {old: new}}``."""
    if isinstance(deid, DeidSettings):
        deid = deidentifier_for(deid)
    studies = [study_uids] if isinstance(study_uids, str) else list(study_uids)
    return {
        "StudyInstanceUID": {uid: deid.uid(uid) for uid in sorted(set(studies)) if uid},
        "SeriesInstanceUID": {uid: deid.uid(uid) for uid in sorted(set(series_uids)) if uid},
    }


def write_mapping(folder: Path, mapping: dict[str, dict[str, str]]) -> Path:
    """``folder/mapping.json``, written atomically."""
    path = Path(folder) / FILE_NAME
    write_json_atomic(path, mapping)
    return path
