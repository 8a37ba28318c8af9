"""What each staged file is: DICOM (Part 10 or a bare data set), part of a NIfTI set, a JSON
sidecar, or something left out with its reason (never silently dropped)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pydicom

from .nifti import NiftiSet, nifti_base
from .records import Skipped

_MEDIA_DIRECTORY = "1.2.840.10008.1.3.10"  # DICOMDIR
_UID = re.compile(r"^[0-9]+(\.[0-9]+)+$")


@dataclass
class Sorted:
    dicom: list[tuple[str, Path, str]] = field(default_factory=list)  # (relative name, path, kind)
    sidecars: list[tuple[str, Path]] = field(default_factory=list)
    nifti: dict[str, NiftiSet] = field(default_factory=dict)
    # .bvec/.bval waiting for a set
    nifti_parts: list[tuple[str, Path]] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def dicom_kind(path: Path) -> str:
    """ "part10" (preamble + DICM), "dataset" (a bare DICOM data set), "dicomdir" or ""."""
    try:
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError:
        return ""
    if len(head) == 132 and head[128:132] == b"DICM":
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPClassUID"])
        except Exception:
            # a broken header is still DICOM to the archive: processSingleFile decides
            return "part10"
        if str(ds.file_meta.get("MediaStorageSOPClassUID", "")) == _MEDIA_DIRECTORY:
            return "dicomdir"
        return "part10"
    try:
        ds = pydicom.dcmread(path, force=True, stop_before_pixels=True)
    except Exception:
        return ""
    uids = [str(ds.get(k, "")) for k in ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID")]
    return "dataset" if all(_UID.match(u) for u in uids) else ""


def sort_files(root: Path) -> Sorted:
    """Classify every staged file below ``root``."""
    result = Sorted()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
        name = path.relative_to(root).as_posix()
        parts = name.split("/")
        if parts[0] == "__MACOSX" or parts[-1] in (".DS_Store", "Thumbs.db", "desktop.ini"):
            result.skipped.append(Skipped(name, "operating-system metadata, not data"))
            continue
        nifti = nifti_base(name)
        if nifti and nifti[1] in (".nii", ".nii.gz"):
            result.nifti.setdefault(nifti[0], NiftiSet(nifti[0], path)).image = path
            continue
        if nifti and nifti[1] == ".json":
            result.sidecars.append((name, path))
            continue
        if nifti and nifti[1] in (".bvec", ".bval"):
            result.nifti_parts.append((name, path))
            continue
        kind = dicom_kind(path)
        if kind in ("part10", "dataset"):
            result.dicom.append((name, path, kind))
        elif kind == "dicomdir":
            result.skipped.append(Skipped(name, "DICOMDIR (an index of the media, not an image)"))
        else:
            result.skipped.append(Skipped(name, "not a DICOM file"))
    return result


def attach_nifti_parts(found: Sorted) -> None:
    """Give each NIfTI set its .bvec, .bval and .json; leftovers are reported."""
    sidecars = []
    for name, path in found.sidecars:
        base = name[: -len(".json")]
        if base in found.nifti:
            found.nifti[base].sidecar = path
        else:
            sidecars.append((name, path))
    found.sidecars = sidecars
    for name, path in found.nifti_parts:
        base, ext = nifti_base(name) or ("", "")
        if base in found.nifti:
            setattr(found.nifti[base], ext[1:], path)
        else:
            found.skipped.append(Skipped(name, f"{ext} file without a matching .nii/.nii.gz"))
    found.nifti_parts = []
