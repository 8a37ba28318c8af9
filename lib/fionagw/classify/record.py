"""The series record as image headers make it: what one image contributes, and the merge.

The record keeps FIONA's keys and types (docs/architecture.md lists them; organize/series_json.py
reads and writes the file):
almost every value is the text of the first image's element; NumFiles is a string; Modality
a one-element list; ClassifyType a list. Merge rule for each further image: the stored record
wins; keys it lacks are filled from this image (FIONA left them missing); SliceLocation keeps
the minimum; MeasID takes this image's value; siemensDiffusionInformation gains this image's
entry once (keyed by SOPInstanceUID, so a resend or a rebuild changes nothing); ClassifyType
is the union, minus the SeriesLevel types some image failed (kept under
ClassifyTypeSeriesLevelFailed so they never come back).

Named tags in the rules read this merged record. FIONA classified against the record stored
before the image, so ClassifyType-based rules lagged one image (a 3-image three-plane
localizer never became "localizer"); that lag is fixed, not reproduced: ClassifyType reads
the types gained so far, including this image's (see rules.py).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from fionagw.classify import csa
from fionagw.classify.elements import element_value
from fionagw.organize.series_json import FAILED_KEY, SeriesRecord

if TYPE_CHECKING:
    from fionagw.classify.rules import RuleSet
    from fionagw.classify.series import Connection

LOGGER = logging.getLogger(__name__)

# (key, tag): the text of the element when present (FIONA wraps each in try/except).
# FIONA writes this word for an absent StudyDescription; the file format keeps it, pages do not
NO_DESCRIPTION = "missing"

_TEXT_FIELDS: tuple[tuple[str, int], ...] = (
    ("Manufacturer", 0x00080070),
    ("ManufacturerModelName", 0x00081090),
    ("SoftwareVersion", 0x00181020),
    ("AcquisitionMatrix", 0x00181310),
    ("AcquisitionLength", 0x0051100A),
    ("StudyInstanceUID", 0x0020000D),
    ("SeriesInstanceUID", 0x0020000E),
    ("SeriesTime", 0x00080031),
    ("PatientID", 0x00100020),
    ("PatientName", 0x00100010),
    ("PatientSex", 0x00100040),
    ("InstitutionName", 0x00080080),
    ("OperatorsName", 0x00081070),
    ("StationName", 0x00081010),
    ("SOPClassUID", 0x00080016),
    ("StudyDate", 0x00080020),
    ("StudyID", 0x00200010),
    ("SeriesDescription", 0x0008103E),
    ("SequenceName", 0x00180024),
    ("EchoTime", 0x00180081),
    ("RepetitionTime", 0x00180080),
    ("SeriesNumber", 0x00200011),
    ("InstanceNumber", 0x00200013),
    ("SliceThickness", 0x00180050),
    ("ImageType", 0x00080008),
    ("SliceSpacing", 0x00180088),
    ("Slices", 0x0021104F),
    ("ScanningSequence", 0x00180020),
    ("SequenceVariant", 0x00180021),
    ("SequenceType", 0x20011020),
    ("PulseSequenceName", 0x0019109C),
    ("ActiveCoils", 0x0051100F),
    ("Private0019_105a", 0x0019105A),
    ("SliceLocation", 0x00201041),
    ("ImagesInAcquisition", 0x00201002),
    ("AccessionNumber", 0x00080050),
    ("NumberOfTemporalPositions", 0x00200105),
    ("StudyTime", 0x00080030),
    ("Private0019_10BB", 0x001910BB),
    ("Private0043_1039", 0x00431039),
)
_RELEASE = re.compile(r'release:(?P<os>[^_"\\\s]+)')


def _value(ds: Dataset, tag: int) -> Any:
    """The element's value, or None when absent or unreadable (logged)."""
    try:
        return element_value(ds, tag)
    except KeyError:
        return None
    except Exception as exc:  # the exception's text may quote the value: name its type only
        LOGGER.debug("cannot read %08X: %s", tag, type(exc).__name__)
        return None


def _text(value: Any) -> str:
    # FIONA stores str() of the pydicom value ("['ORIGINAL', 'PRIMARY']" for multi-values).
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("latin-1").rstrip("\0 ")
    return str(value)


_MERGED = frozenset({"SliceLocation", "MeasID", "siemensDiffusionInformation", "StudyInstanceUID"})


def image_record(ds: Dataset, connection: Connection, known: Collection[str] = ()) -> SeriesRecord:
    """The series record as the first image of a series would make it (no ClassifyType).

    Keys in ``known`` are skipped (the stored record keeps its own values): converting
    ~40 header values is most of the cost of an image, and later images need few of them.
    """
    record: SeriesRecord = {}
    if "IncomingConnection" not in known:
        record["IncomingConnection"] = {
            "AETitleCaller": connection.calling,
            "AETitleCalled": connection.called,
            "CallerIP": connection.ip,
        }
    present = ds._dict
    for key, tag in _TEXT_FIELDS:
        if tag in present and key not in known:
            record[key] = _text(_value(ds, tag))
    if "Modality" not in known:
        modality = _value(ds, 0x00080060)
        if modality is not None:
            record["Modality"] = [_text(modality)]
    if "StudyDescription" not in known:
        description = _value(ds, 0x00081030)
        record["StudyDescription"] = NO_DESCRIPTION if description is None else _text(description)
    if "OSLevel" not in known:
        versions = _value(ds, 0x00181020)
        if isinstance(versions, MultiValue | list | tuple):
            versions = "\\".join(map(str, versions))
        match = _RELEASE.search(_text(versions))
        if match:
            record["OSLevel"] = match.group("os")
    image, series, has_image_csa = csa.siemens_fields(ds)
    for (
        key,
        value,
    ) in series.items():  # siemensUUID, OSLevel (wins over release:), NumSlices, MeasID
        if key not in known:
            record[key] = value
    for key in ("PhaseEncodingDirectionPositive", "NumberOfImagesInMosaic"):
        if key in image and key not in known:
            record[key] = image[key]
    if has_image_csa:
        record["siemensDiffusionInformation"] = _diffusion_entries(ds, image)
    return record


def _diffusion_entries(ds: Dataset, image: dict[str, Any]) -> list[dict[str, Any]]:
    # FIONA appends an entry only when the image CSA names a DiffusionDirectionality.
    if not image.get("DiffusionDirectionality"):
        return []
    entry: dict[str, Any] = {"DiffusionDirectionality": image["DiffusionDirectionality"]}
    if "B_value" in image:
        entry["B_value"] = image["B_value"]
        entry["SOPInstanceUID"] = _text(_value(ds, 0x00080018))
        entry["InstanceNumber"] = _text(_value(ds, 0x00200013))
    if "DiffusionGradientDirection" in image:
        entry["DiffusionGradientDirection"] = image["DiffusionGradientDirection"]
    return [entry]


def _min_location(stored: Any, current: Any) -> Any:
    try:
        return current if float(current) < float(stored) else stored
    except (TypeError, ValueError):
        return stored if stored not in (None, "") else current


def update_series(
    stored: SeriesRecord | None,
    ds: Dataset,
    connection: Connection,
    rules: RuleSet,
    num_files: int,
) -> SeriesRecord:
    """The series record after this image (``stored`` is not modified).

    ``num_files`` is the caller's count of images in the series folder; it is stored as a
    string (FIONA's NumFiles). Classification sees the merged record for named tags.
    """
    current = image_record(ds, connection, stored.keys() - _MERGED if stored else ())
    if not stored:
        record = current
    else:
        record = dict(stored)
        for key, value in current.items():
            record.setdefault(key, value)  # first image wins; missing keys are filled
        if "SliceLocation" in current:
            record["SliceLocation"] = _min_location(
                stored.get("SliceLocation"), current["SliceLocation"]
            )
        if "MeasID" in current:
            record["MeasID"] = current["MeasID"]
        if "siemensDiffusionInformation" in current:
            merged = list(stored.get("siemensDiffusionInformation") or [])
            seen = {e.get("SOPInstanceUID") for e in merged if isinstance(e, dict)}
            for entry in current["siemensDiffusionInformation"]:
                uid = entry.get("SOPInstanceUID")
                if (uid is None or uid not in seen) and entry not in merged:
                    merged.append(entry)
            record["siemensDiffusionInformation"] = merged
        if "StudyInstanceUID" in current:
            record["StudyInstanceUID"] = current["StudyInstanceUID"]
    record["NumFiles"] = str(num_files)
    stored_types = list(stored.get("ClassifyType") or []) if stored else []
    stored_failed = list(stored.get(FAILED_KEY) or []) if stored else []
    result = rules.classify(ds, record, types=stored_types, failed=stored_failed)
    record["ClassifyType"] = result.types
    if result.failed:
        record[FAILED_KEY] = result.failed
    else:
        record.pop(FAILED_KEY, None)
    return record


def classify_file(path: Path, rules: RuleSet) -> SeriesRecord:
    """The series record (with ClassifyType) that ``path`` alone would make, as the first
    image of its series from an unknown sender; nothing is written (processSingleFile test).
    NotDicomError and OSError as :func:`~fionagw.classify.series.read_header`."""
    from fionagw.classify.series import Connection, read_header

    unknown = Connection("unknown", "unknown", "unknown")
    return update_series(None, read_header(path), unknown, rules, 1)
