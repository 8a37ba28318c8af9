"""Study metadata of an upload: study name, accession number, age and sex.

Precedence: the form, else a JSON sidecar in the upload (BIDS/dcm2niix keys or short names),
else the DICOM header as it is; the stored header is only changed where the form or the
sidecar gives a value. Values are normalized to what DICOM allows (AS ages, CS sexes, lengths).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pydicom

from .errors import UploadError

FIELDS = ("study_description", "accession", "age", "sex")
# field -> (DICOM keyword, VR, longest value)
DICOM_FIELDS = {
    "study_description": ("StudyDescription", "LO", 64),
    "accession": ("AccessionNumber", "SH", 16),
    "age": ("PatientAge", "AS", 4),
    "sex": ("PatientSex", "CS", 16),
}
# sidecar keys (compared case-insensitively, without "_" and " ") for each field
SIDECAR_KEYS = {
    "study_description": ("studydescription", "studyname", "study"),
    "accession": ("accessionnumber", "accession"),
    "age": ("patientage", "age"),
    "sex": ("patientsex", "sex"),
}
LABELS = {
    "study_description": "Study name",
    "accession": "Accession number",
    "age": "Age",
    "sex": "Sex",
}
_AGE = re.compile(r"^\s*([0-9]{1,3})\s*([DWMY]|DAYS?|WEEKS?|MONTHS?|YEARS?)?\s*$", re.IGNORECASE)
_SEX = {"M": "M", "MALE": "M", "F": "F", "FEMALE": "F", "O": "O", "OTHER": "O"}


def normalize_age(value: object, where: str = "age") -> str:
    """A DICOM AS value (``045Y``); plain numbers are years; "90+" (Safe Harbor) is 090Y."""
    text = str(value).strip()
    if isinstance(value, float) and value.is_integer():
        text = str(int(value))
    if text.endswith("+") and text[:-1].strip().isdigit() and int(text[:-1]) >= 90:
        return "090Y"
    m = _AGE.match(text)
    if not m:
        raise UploadError(
            f"{where}: {text!r} is not an age (give years, e.g. 45, or a DICOM age "
            f"such as 045Y, 006M, 010W, 003D)",
            "bad metadata",
        )
    unit = (m.group(2) or "Y")[0].upper()
    return f"{int(m.group(1)):03d}{unit}"


def normalize_sex(value: object, where: str = "sex") -> str:
    text = str(value).strip().upper()
    if text not in _SEX:
        raise UploadError(f"{where}: {str(value)!r} is not a sex (M, F or O)", "bad metadata")
    return _SEX[text]


def _normalize(name: str, value: object, where: str) -> str:
    if name == "age":
        return normalize_age(value, where)
    if name == "sex":
        return normalize_sex(value, where)
    text = " ".join(str(value).split())
    limit = DICOM_FIELDS[name][2]
    if len(text) > limit:
        raise UploadError(
            f"{where}: at most {limit} characters (DICOM {DICOM_FIELDS[name][0]}), got {len(text)}",
            "bad metadata",
        )
    if "\\" in text:
        raise UploadError(f"{where}: a backslash is not allowed", "bad metadata")
    return text


def form_metadata(form: dict[str, str]) -> dict[str, str]:
    """The metadata fields the form filled in, validated (UploadError names the field)."""
    out: dict[str, str] = {}
    for name in FIELDS:
        value = (form.get(name) or "").strip()
        if value:
            out[name] = _normalize(name, value, LABELS[name])
    return out


def sidecar_metadata(data: dict[str, Any], source: str) -> dict[str, str]:
    """The metadata fields a JSON sidecar gives (BIDS/dcm2niix keys or short names)."""
    keys = {k.lower().replace("_", "").replace(" ", ""): v for k, v in data.items()}
    out: dict[str, str] = {}
    for name, aliases in SIDECAR_KEYS.items():
        for alias in aliases:
            value = keys.get(alias)
            if value is not None and str(value).strip():
                out[name] = _normalize(name, value, f"{source}: {alias}")
                break
    return out


def merge_metadata(form: dict[str, str], sidecar: dict[str, str]) -> dict[str, str]:
    """Precedence form > sidecar; a field neither gives is absent (the header keeps its value)."""
    return {**sidecar, **form}


def read_sidecar(path: Path, source: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UploadError(f"{source}: not a readable JSON file ({exc})", "bad sidecar") from None
    if not isinstance(data, dict):
        raise UploadError(f"{source}: a JSON sidecar must be an object", "bad sidecar")
    return data


def apply_metadata(ds: pydicom.Dataset, meta: dict[str, str]) -> bool:
    """Set the header elements ``meta`` gives; True if anything changed."""
    changed = False
    for name, value in meta.items():
        keyword = DICOM_FIELDS[name][0]
        if str(ds.get(keyword, "")) != value:
            setattr(ds, keyword, value)
            changed = True
    return changed


def merged_sidecars(sidecars: list[tuple[str, Path]]) -> tuple[dict[str, str], list[str]]:
    """Merge the metadata of every JSON file in a DICOM upload; conflicting values refuse."""
    merged: dict[str, str] = {}
    origin: dict[str, str] = {}
    used = []
    for name, path in sidecars:
        values = sidecar_metadata(read_sidecar(path, name), name)
        for key, value in values.items():
            if key in merged and merged[key] != value:
                raise UploadError(
                    f"{name}: {LABELS[key]} {value!r} differs from {merged[key]!r} "
                    f"in {origin[key]} (give the value in the form instead)",
                    "conflicting sidecars",
                )
            merged[key], origin[key] = value, name
        if values:
            used.append(name)
    return merged, used
