"""mapping.json: the original -> de-identified study and series UIDs of one transfer.

DICOMAnonymizer writes it with ``-m``: ``{"StudyInstanceUID": {old: new},
"SeriesInstanceUID": {old: new}}`` (keys sorted); FIONA stores the comma-joined new study UIDs
as ``transfer_mapped_uid``. The new UIDs are a pure function of the old ones and the project's
settings, so the mapping can be written before, during or after the files.

The mapping re-identifies the data, so it never travels with it: ``store_mapping`` keeps it in
the gateway's protected store, ``DATADIR/mappings/<PROJECT>/<name>.json`` (SitePaths; folders
0700 and files 0600 like the project keys), never in a folder a destination receives.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from fionagw.deid.engine import Deidentifier, DeidSettings
from fionagw.deid.factory import deidentifier_for
from fionagw.ops.atomic import write_json_atomic
from fionagw.ops.perms import KEY_DIR_MODE, SECRET_MODE, make_dirs
from fionagw.paths import SitePaths

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
    """``folder/mapping.json``, written atomically (a folder of the gateway's own: see
    ``store_mapping`` for where a transfer's mapping belongs)."""
    path = Path(folder) / FILE_NAME
    write_json_atomic(path, mapping)
    return path


def store_mapping(
    paths: SitePaths, project: str, name: str, mapping: dict[str, dict[str, str]]
) -> Path:
    """Keep ``mapping`` in the protected store as ``DATADIR/mappings/<project>/<name>.json``."""
    path = paths.mapping_file(project, name)
    make_dirs(paths.mappings, KEY_DIR_MODE)
    make_dirs(path.parent, KEY_DIR_MODE)
    write_json_atomic(path, mapping, mode=SECRET_MODE)
    return path
