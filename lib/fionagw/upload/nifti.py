"""NIfTI sets (``.nii``/``.nii.gz`` + ``.bvec`` + ``.bval`` + ``.json`` of one base name): checked
(header readable, volumes = b-values = b-vector columns) and kept as uploaded under
``DATADIR/uploads/<id>/files``. Converting NIfTI into DICOM is not done (yet)."""

from __future__ import annotations

import gzip
import os
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path

from fionagw.config import SiteConfig

from .errors import UploadError
from .metadata import merge_metadata, read_sidecar, sidecar_metadata
from .records import Skipped, UploadRecord

NIFTI_SUFFIXES = (".nii.gz", ".nii", ".bvec", ".bval", ".json")


@dataclass
class NiftiSet:
    base: str  # relative path without the extension
    image: Path
    bvec: Path | None = None
    bval: Path | None = None
    sidecar: Path | None = None


def nifti_base(name: str) -> tuple[str, str] | None:
    lower = name.lower()
    for ext in NIFTI_SUFFIXES:
        if lower.endswith(ext):
            return name[: -len(ext)], ext
    return None


def nifti_volumes(path: Path) -> int:
    """Volumes (dim[4]) of a NIfTI-1/-2 image, from its header; UploadError if unreadable."""
    try:
        opener = gzip.open if path.name.lower().endswith(".gz") else open
        with opener(path, "rb") as f:
            head = f.read(544)
    except (OSError, EOFError) as exc:
        raise UploadError(
            f"{path.name}: cannot read the NIfTI header ({exc})", "bad NIfTI set"
        ) from None
    for endian in ("<", ">"):
        if len(head) >= 348 and struct.unpack_from(endian + "i", head, 0)[0] == 348:
            if head[344:348] not in (b"n+1\0", b"ni1\0"):
                break
            dims = struct.unpack_from(endian + "8h", head, 40)
            return max(1, dims[4]) if dims[0] >= 4 else 1
        if len(head) >= 540 and struct.unpack_from(endian + "i", head, 0)[0] == 540:
            if head[4:8] not in (b"n+2\0", b"ni2\0"):
                break
            dims = struct.unpack_from(endian + "8q", head, 16)
            return max(1, dims[4]) if dims[0] >= 4 else 1
    raise UploadError(f"{path.name}: not a NIfTI-1 or NIfTI-2 image (bad header)", "bad NIfTI set")


def _numbers(path: Path, name: str) -> list[list[float]]:
    try:
        rows = [
            line.split() for line in path.read_text(encoding="ascii").splitlines() if line.strip()
        ]
        return [[float(v) for v in row] for row in rows]
    except (OSError, UnicodeDecodeError, ValueError):
        raise UploadError(
            f"{name}: expected rows of numbers separated by spaces", "bad NIfTI set"
        ) from None


def validate_nifti_set(s: NiftiSet, root: Path) -> int:
    """Check a set (all four files, consistent counts); returns the number of volumes."""
    name = s.image.relative_to(root).as_posix()
    missing = [
        ext for ext, p in ((".bvec", s.bvec), (".bval", s.bval), (".json", s.sidecar)) if p is None
    ]
    if missing:
        raise UploadError(
            f"{name}: the NIfTI set is incomplete: missing {', '.join(s.base + m for m in missing)} "
            f"(a set is .nii/.nii.gz + .bvec + .bval + .json with one base name)",
            "bad NIfTI set",
        )
    assert s.bvec is not None and s.bval is not None and s.sidecar is not None
    volumes = nifti_volumes(s.image)
    bvals = _numbers(s.bval, s.bval.name)
    if len(bvals) != 1:
        raise UploadError(
            f"{s.bval.name}: expected one row of b-values, got {len(bvals)} rows", "bad NIfTI set"
        )
    bvecs = _numbers(s.bvec, s.bvec.name)
    if len(bvecs) != 3 or len({len(r) for r in bvecs}) != 1:
        raise UploadError(
            f"{s.bvec.name}: expected 3 rows of equal length (x, y, z of each volume)",
            "bad NIfTI set",
        )
    if not len(bvals[0]) == len(bvecs[0]) == volumes:
        raise UploadError(
            f"{name}: {volumes} volumes, but {len(bvals[0])} b-values and "
            f"{len(bvecs[0])} b-vectors: they must be equal",
            "bad NIfTI set",
        )
    read_sidecar(s.sidecar, s.sidecar.name)
    return volumes


def keep_nifti_sets(
    cfg: SiteConfig,
    record: UploadRecord,
    sets: dict[str, NiftiSet],
    sidecars: list[tuple[str, Path]],
    form_meta: dict[str, str],
    root: Path,
) -> None:
    """Validate every set, take its metadata (form > the sets' sidecars) and move its files to
    ``DATADIR/uploads/<id>/files``; ``sidecars`` are the JSON files no set claimed."""
    record.kind = "nifti"
    record.note = "NIfTI kept as uploaded; conversion to DICOM is not available yet"
    for s in sets.values():
        record.volumes += validate_nifti_set(s, root)
    sidecar: dict[str, str] = {}
    for s in sets.values():
        assert s.sidecar is not None
        name = s.sidecar.relative_to(root).as_posix()
        for key, value in sidecar_metadata(read_sidecar(s.sidecar, name), name).items():
            sidecar.setdefault(key, value)
    record.metadata = merge_metadata(form_meta, sidecar)
    record.skipped += [Skipped(n, "JSON file without a matching .nii/.nii.gz") for n, _ in sidecars]
    target = cfg.paths.upload_files(record.upload_id)
    for s in sets.values():
        for path in (s.image, s.bvec, s.bval, s.sidecar):
            assert path is not None
            rel = path.relative_to(root)
            dest = target / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(path, dest)
            _fsync_file(dest)
            record.files.append(rel.as_posix())


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
