"""What QC needs to know of a study, from the headers of its images (never the pixels).

One pass over ``raw/<Study>/<Series>/`` reads each file's header with the classifier's reader
(classify/series.py, which stops before the pixel data) and keeps, per series, what the checks
compare: instance numbers and SOP UIDs, transfer syntaxes, LossyImageCompression, the
geometry, the expected counts, the diffusion encoding of each image or frame, whether age
and sex are present. Nothing identifying is kept: age and sex only as present/valid, never
their values; descriptions are kept (the Assign page shows them too).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset

from fionagw.classify.elements import element_value
from fionagw.classify.series import NotDicomError, read_header
from fionagw.dicom.errors import CodecError
from fionagw.dicom.raw import read_part10
from fionagw.organize.series_json import classify_types, modalities, study_series, text_of
from fionagw.paths import SitePaths
from fionagw.qc import diffusion

_AGE = re.compile(r"^[0-9]{3}[DWMY]$")
_SEXES = ("M", "F", "O")


@dataclass
class SeriesFacts:
    series_uid: str
    number: str = ""
    description: str = ""
    modality: str = ""
    classify_type: list[str] = field(default_factory=list)
    manufacturer: str = ""
    images: int = 0  # files
    frames: int = 0  # images + extra frames of multi-frame files
    unreadable: int = 0
    instance_numbers: list[int] = field(default_factory=list)  # sorted, one per file
    duplicates: int = 0  # InstanceNumbers given to more than one SOP Instance UID
    syntaxes: list[str] = field(default_factory=list)
    lossy_flagged: int = 0  # images with LossyImageCompression "01"
    geometries: int = 0  # distinct (rows, columns, pixel spacing, orientation)
    positions: int = 0  # distinct slice positions
    expected: int = 0  # from ImagesInAcquisition or NumberOfTemporalPositions x slices
    expected_from: str = ""
    localizer: bool = False
    derived_diffusion: int = 0  # ADC/FA/trace images (not acquisitions)
    diffusion_encoding: str = ""  # standard, enhanced, siemens-csa, siemens, ge, philips
    # one entry per image or frame: [b-value, direction or None, slice position or None]
    diffusion: list[list[Any]] = field(default_factory=list)
    mosaic: bool = False  # Siemens mosaic: each image is a whole volume


@dataclass
class StudyFacts:
    study_uid: str
    study_description: str = ""
    age: str = "missing"  # "present", "derived" (from the birth date), "missing", "invalid"
    sex: str = "missing"
    series: list[SeriesFacts] = field(default_factory=list)

    @property
    def images(self) -> int:
        return sum(s.images for s in self.series)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StudyFacts:
        series = [SeriesFacts(**s) for s in data.get("series") or []]
        values = {k: v for k, v in data.items() if k != "series"}
        return cls(**values, series=series)


_TEXT_VRS = frozenset(("IS", "DS", "UI", "CS", "AS", "DA"))  # ASCII values, "\\" between


def _value(ds: Dataset, tag: int) -> Any:
    """The value of ``tag``: text VRs straight from their bytes (str, or a list of str for
    several values), which costs a fraction of pydicom's conversion; others through it."""
    raw = ds._dict.get(tag)
    if raw is None:
        return None
    if type(raw) is RawDataElement and raw.VR in _TEXT_VRS and type(raw.value) is bytes:
        text = raw.value.decode("latin-1").strip("\0 ")
        return text.split("\\") if "\\" in text else text
    try:
        return element_value(ds, tag)
    except Exception:  # noqa: BLE001 - a malformed element counts as absent
        return None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value).strip()


def _int(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _rounded(value: Any, places: int = 3) -> tuple[float, ...]:
    if isinstance(value, str):
        value = [value]
    try:
        return tuple(round(float(v), places) for v in value)
    except (TypeError, ValueError):
        return ()


def demographics_state(age: Any, sex: Any) -> tuple[str, str]:
    """(age, sex) as "present", "missing" or "invalid" (DICOM AS ``nnnY``, CS M/F/O)."""
    a, s = _text(age).upper(), _text(sex).upper()
    age_state = "missing" if not a else ("present" if _AGE.match(a) else "invalid")
    sex_state = "missing" if not s else ("present" if s in _SEXES else "invalid")
    return age_state, sex_state


_HEAD = 1 << 14  # the elements before group 0029 fit in this for nearly every file


class _Before:
    """Tags at and after ``limit`` (as ``stop`` of the element walker)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def __contains__(self, tag: object) -> bool:
        return isinstance(tag, int) and tag >= self.limit


_BEFORE_CSA = _Before(0x00290000)


def _read(path: Path, whole: bool) -> Dataset:
    """The header; without ``whole`` only the elements before group 0029 (no CSA headers and
    vendor diffusion tags, which only a diffusion series needs), from the file's first bytes."""
    if not whole:
        with open(path, "rb") as f:
            data = f.read(_HEAD)
        try:
            return read_part10(data, str(path), lazy_sequences=True, stop=_BEFORE_CSA)
        except CodecError:  # truncated at _HEAD, or a file the reader leaves to pydicom
            pass
    return read_header(path)


class _SeriesScan:
    def __init__(self, facts: SeriesFacts) -> None:
        self.facts = facts
        self.numbers: dict[int, set[str]] = {}
        self.syntaxes: set[str] = set()
        self.geometries: set[tuple[Any, ...]] = set()
        self.positions: set[tuple[float, ...]] = set()
        self.images_in_acquisition = 0
        self.temporal = 0
        self.whole = True  # read every element: until the first image shows no diffusion

    def read(self, path: Path) -> Dataset:
        return _read(path, self.whole)

    def add(self, ds: Dataset) -> None:
        f = self.facts
        f.images += 1
        meta = getattr(ds, "file_meta", None)
        self.syntaxes.add(_text(_value(meta, 0x00020010)) if meta is not None else "")
        sop = _text(_value(ds, 0x00080018))
        number = _int(_value(ds, 0x00200013))
        if number is not None:
            self.numbers.setdefault(number, set()).add(sop)
        if _text(_value(ds, 0x00282110)) == "01":
            f.lossy_flagged += 1
        self.geometries.add(
            (
                _int(_value(ds, 0x00280010)),
                _int(_value(ds, 0x00280011)),
                _rounded(_value(ds, 0x00280030) or ()),
                _rounded(_value(ds, 0x00200037) or ()),
            )
        )
        position = _rounded(_value(ds, 0x00200032) or (), 2)
        if position:
            self.positions.add(position)
        if "MOSAIC" in _text(_value(ds, 0x00080008)).upper():
            f.mosaic = True
        n_frames = _int(_value(ds, 0x00280008)) or 1
        f.frames += n_frames
        self.images_in_acquisition = max(
            self.images_in_acquisition, _int(_value(ds, 0x00201002)) or 0
        )
        self.temporal = max(self.temporal, _int(_value(ds, 0x00200105)) or 0)
        image_type = _text(_value(ds, 0x00080008)).upper()
        if "LOCALIZER" in image_type or "SCOUT" in image_type:
            f.localizer = True
        if f.modality and f.modality != "MR":
            self.whole = False
            return
        if diffusion.is_derived(ds):
            if _value(ds, diffusion.B_VALUE) is not None or "DIFFUSION" in image_type:
                f.derived_diffusion += 1
            return
        entries = list(diffusion.frames(ds)) if n_frames > 1 or _value(ds, 0x52009230) else []
        if entries:
            f.diffusion_encoding = "enhanced"
            f.diffusion.extend([b, list(d) if d else None, None] for b, d in entries)
            return
        found = diffusion.image_diffusion(ds)
        if found is None and not f.diffusion:
            self.whole = False  # not a diffusion series: the rest needs no vendor tags
        if found is not None:
            b, d, encoding = found
            f.diffusion_encoding = f.diffusion_encoding or encoding
            f.diffusion.append([b, list(d) if d else None, list(position) or None])

    def finish(self) -> SeriesFacts:
        f = self.facts
        f.instance_numbers = sorted(self.numbers)
        f.duplicates = sum(1 for sops in self.numbers.values() if len(sops) > 1)
        f.syntaxes = sorted(self.syntaxes)
        f.geometries = len(self.geometries)
        f.positions = len(self.positions)
        if self.images_in_acquisition:
            f.expected, f.expected_from = self.images_in_acquisition, "ImagesInAcquisition"
        elif self.temporal > 1 and (f.mosaic or f.positions == f.images):
            # a mosaic image, or an image per position, is a whole volume
            f.expected, f.expected_from = self.temporal, "NumberOfTemporalPositions"
        elif self.temporal > 1 and f.positions > 1:
            f.expected = self.temporal * f.positions
            f.expected_from = "NumberOfTemporalPositions x slices"
        return f


def scan_series(files: Iterable[Path], facts: SeriesFacts) -> SeriesFacts:
    """The facts of one series from its files (what :func:`scan_study` does per series)."""
    scan = _SeriesScan(facts)
    for path in files:
        try:
            scan.add(scan.read(path))
        except (NotDicomError, OSError):
            facts.unreadable += 1
    return scan.finish()


def _series_files(folder: Path) -> Iterable[Path]:
    try:
        with os.scandir(folder) as entries:
            return sorted(Path(e.path) for e in entries if not e.name.startswith("."))
    except FileNotFoundError:
        return []


def scan_study(paths: SitePaths, study_uid: str) -> StudyFacts:
    """The facts of the study as filed in ``raw/`` (its series JSON and its images' headers)."""
    facts = StudyFacts(study_uid)
    demographics_seen = False
    for json_path, record in study_series(paths, study_uid):
        series_uid = json_path.stem
        classified = classify_types(record)
        f = SeriesFacts(
            series_uid,
            number=text_of(record, "SeriesNumber"),
            description=text_of(record, "SeriesDescription"),
            modality=(modalities(record) or [""])[0],
            classify_type=classified,
            manufacturer=text_of(record, "Manufacturer"),
            localizer=any("localizer" in c.lower() for c in classified),
        )
        if not facts.study_description:
            facts.study_description = text_of(record, "StudyDescription")
        scan = _SeriesScan(f)
        for path in _series_files(paths.raw_series_dir(study_uid, series_uid)):
            try:
                ds = scan.read(path)
            except (NotDicomError, OSError):
                f.unreadable += 1
                continue
            if not demographics_seen:
                facts.age, facts.sex = demographics_state(
                    _value(ds, 0x00101010), _value(ds, 0x00100040)
                )
                if facts.age == "missing" and _text(_value(ds, 0x00100030)).isdigit():
                    facts.age = "derived"  # from PatientBirthDate and the study date
                demographics_seen = True
            scan.add(ds)
        facts.series.append(scan.finish())
    _expect_mpps_counts(paths, facts)
    facts.series.sort(key=lambda s: (_int(s.number) or 0, s.series_uid))
    return facts


def _expect_mpps_counts(paths: SitePaths, facts: StudyFacts) -> None:
    """The scanner's own count of a series (its MPPS, when it sent one) beats what the
    headers say: a series with fewer instances than that is incomplete."""
    from fionagw.pacs.mpps_records import mpps_counts

    counts = mpps_counts(paths, facts.study_uid)
    for f in facts.series:
        n = counts.get(f.series_uid, 0)
        if n > (f.expected or 0) and f.frames == f.images:  # instances, not frames
            f.expected, f.expected_from = n, "MPPS"
