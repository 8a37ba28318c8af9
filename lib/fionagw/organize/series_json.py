"""The series JSON: FIONA's summary of one series, ``raw/<Study>/<Series>.json``.

classify/record.py builds it from image headers, the organizer (processSingleFile) writes it,
and detectStudyArrival, populateIncoming, the Assign page, rebuild and anonymizeAndSend read
it: every read, write and listing of these files goes through this module.

The format is FIONA's: one JSON object, indent 2, sorted keys; almost every value is the text
of the first image's element; ``NumFiles`` is a string, ``Modality`` and ``ClassifyType`` are
lists, ``IncomingConnection`` is ``{AETitleCaller, AETitleCalled, CallerIP}``.

Read policy: :func:`read_series` returns the record or raises :class:`SeriesJSONError`, one
exception for a missing file, an unreadable one, bad JSON and JSON that is not an object
(``missing`` tells the first apart). Its text names the file and the reason, never a value
from the file, so it may be logged. Readers of many records (:func:`iter_series`,
:func:`study_series`) skip a bad one with one warning and go on; a reader that must not go on
(detectStudyArrival's recount) lets the exception through.

This module imports no DICOM code, so the cron jobs that only read records start fast.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from fionagw.ops.atomic import write_json_atomic
from fionagw.paths import SitePaths

LOGGER = logging.getLogger(__name__)

SeriesRecord = dict[str, Any]
SUFFIX = ".json"
# The SeriesLevel types some image failed: they never come back into ClassifyType.
FAILED_KEY = "ClassifyTypeSeriesLevelFailed"


class SeriesJSONError(Exception):
    """A series JSON that cannot be used; str() is "<file>: <reason>" (no value of the file)."""

    def __init__(self, path: Path, reason: str, *, missing: bool = False) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason
        self.missing = missing


def read_series(path: Path) -> SeriesRecord:
    """The record in ``path``; SeriesJSONError if it is missing, unreadable or not an object."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SeriesJSONError(path, "no such file", missing=True) from None
    except OSError as exc:
        raise SeriesJSONError(path, f"cannot read: {exc.strerror or type(exc).__name__}") from None
    try:
        record = json.loads(data)
    except json.JSONDecodeError as exc:  # its text gives the position only
        raise SeriesJSONError(
            path, f"not valid JSON (line {exc.lineno}, column {exc.colno})"
        ) from None
    except ValueError:  # UnicodeDecodeError: its text would quote the bytes
        raise SeriesJSONError(path, "not UTF-8 text") from None
    if not isinstance(record, dict):
        raise SeriesJSONError(path, f"not a JSON object (a JSON {type(record).__name__})")
    return record


def write_series(path: Path, record: SeriesRecord, *, tmpdir: Path) -> None:
    """Replace ``path`` atomically (``tmpdir`` on the same filesystem, e.g. ``paths.temp``)."""
    write_json_atomic(path, record, tmpdir=tmpdir)


def series_files(study_dir: Path) -> list[Path]:
    """The series JSON files of one ``raw/<Study>`` folder, sorted by name ([] if none).

    Dot files are never records (temporary files of other tools)."""
    try:
        with os.scandir(study_dir) as entries:
            names = sorted(
                e.name for e in entries if e.name.endswith(SUFFIX) and not e.name.startswith(".")
            )
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [study_dir / name for name in names]


def newest_change(study_dir: Path) -> float | None:
    """When a series record of the study last changed (a late series, a recount); None if none."""
    times = []
    for path in series_files(study_dir):
        try:
            times.append(path.stat().st_mtime)
        except FileNotFoundError:  # replaced or removed while we looked
            continue
    return max(times) if times else None


def iter_series(files: Iterable[Path]) -> Iterator[tuple[Path, SeriesRecord]]:
    """(file, record) for each file that reads; the others are skipped with one warning."""
    for path in files:
        try:
            record = read_series(path)
        except SeriesJSONError as exc:
            LOGGER.warning("series JSON skipped", extra={"file": str(path), "reason": exc.reason})
            continue
        yield path, record


def study_series(paths: SitePaths, study_uid: str) -> list[tuple[Path, SeriesRecord]]:
    """Every readable series record of a study, in file-name order."""
    return list(iter_series(series_files(paths.raw_study_dir(study_uid))))


def raw_study_dirs(paths: SitePaths) -> list[Path]:
    """The study folders of raw/ (links and stray files left out), sorted by name."""
    try:
        with os.scandir(paths.raw) as entries:
            names = sorted(e.name for e in entries if e.is_dir(follow_symlinks=False))
    except FileNotFoundError:
        return []
    return [paths.raw / name for name in names]


# -- values, read the same way by every consumer --------------------------------------------------


def text_of(record: SeriesRecord, key: str) -> str:
    """The value as text: "" when absent, a list joined with backslashes (DICOM multi-value)."""
    return _text(record.get(key))


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "\\".join(str(v) for v in value)
    return "" if value is None else str(value)


def num_files(record: SeriesRecord) -> int:
    """NumFiles (stored as a string) as a number; 0 when absent or not a number."""
    try:
        return int(str(record.get("NumFiles")).strip())
    except ValueError:
        return 0


def _strings(value: Any) -> list[str]:
    if not value:
        return []
    return [str(v) for v in (value if isinstance(value, list) else [value])]


def classify_types(record: SeriesRecord) -> list[str]:
    """ClassifyType as a list of strings (a lone string counts as one type)."""
    return _strings(record.get("ClassifyType"))


def modalities(record: SeriesRecord) -> list[str]:
    """Modality as a list of strings (FIONA stores a one-element list)."""
    return _strings(record.get("Modality"))


def incoming_connection(record: SeriesRecord) -> tuple[str, str, str]:
    """(calling AE, called AE, caller IP) the series arrived with; "" for each one unknown."""
    conn = record.get("IncomingConnection")
    if not isinstance(conn, dict):
        return "", "", ""
    return (
        _text(conn.get("AETitleCaller")),
        _text(conn.get("AETitleCalled")),
        _text(conn.get("CallerIP")),
    )
