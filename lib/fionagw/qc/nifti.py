"""The QC check of NIfTI bundles: ``.nii``/``.nii.gz`` + ``.bvec`` + ``.bval`` + JSON sidecar.

Per base name: all four files present; volumes (the image's 4th dimension, read with nibabel)
= b-value count = b-vector columns (3 rows); the sidecar readable with age and sex (its
BIDS/dcm2niix keys or short names, as the upload reads them: upload/metadata.py). Names that
share no base with an image are reported too (a bundle whose parts were renamed apart).
"""

from __future__ import annotations

from pathlib import Path

import nibabel

from fionagw.qc.results import FAIL, NOT_APPLICABLE, PASS, CheckResult
from fionagw.upload.errors import UploadError
from fionagw.upload.metadata import read_sidecar, sidecar_metadata
from fionagw.upload.nifti import nifti_base


def _numbers(path: Path) -> list[list[float]] | None:
    try:
        rows = [ln.split() for ln in path.read_text(encoding="ascii").splitlines() if ln.strip()]
        return [[float(v) for v in row] for row in rows]
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def _bundle(base: str, parts: dict[str, Path]) -> list[str]:
    """The problems of one bundle (none: consistent)."""
    image = parts.get(".nii.gz") or parts.get(".nii")
    missing = [ext for ext in (".bvec", ".bval", ".json") if ext not in parts]
    if image is None:
        return [f"{base}: no .nii/.nii.gz image for {', '.join(sorted(parts))}"]
    if missing:
        return [f"{base}: missing {', '.join(base + m for m in missing)}"]
    problems = []
    try:
        shape = nibabel.load(str(image)).shape
        volumes = shape[3] if len(shape) >= 4 else 1
    except Exception as exc:  # noqa: BLE001 - nibabel raises many kinds for a bad file
        return [f"{image.name}: not a readable NIfTI image ({type(exc).__name__})"]
    bvals = _numbers(parts[".bval"])
    bvecs = _numbers(parts[".bvec"])
    if bvals is None or len(bvals) != 1:
        problems.append(f"{base}.bval: expected one row of numbers")
    if bvecs is None or len(bvecs) != 3 or len({len(r) for r in bvecs}) != 1:
        problems.append(f"{base}.bvec: expected 3 rows of equal length")
    if not problems:
        assert bvals is not None and bvecs is not None
        if not volumes == len(bvals[0]) == len(bvecs[0]):
            problems.append(
                f"{base}: {volumes} volumes, {len(bvals[0])} b-values, {len(bvecs[0])} "
                "b-vectors: they must be equal"
            )
    try:
        meta = sidecar_metadata(read_sidecar(parts[".json"], parts[".json"].name), base)
        absent = [k for k in ("age", "sex") if k not in meta]
        if absent:
            problems.append(f"{base}.json: no {' and no '.join(absent)} (PatientAge, PatientSex)")
    except UploadError as exc:
        problems.append(str(exc))
    return problems


def check_nifti_folder(folder: Path) -> CheckResult:
    """Every bundle below ``folder``; n/a when it holds no NIfTI file at all."""
    bundles: dict[str, dict[str, Path]] = {}
    for path in sorted(folder.rglob("*")):
        found = nifti_base(path.name) if path.is_file() else None
        if found:
            base, ext = found
            rel = str(path.parent.relative_to(folder) / base)
            bundles.setdefault(rel, {})[ext.lower()] = path
    images = [b for b, parts in bundles.items() if ".nii" in parts or ".nii.gz" in parts]
    if not images:
        return CheckResult("nifti", NOT_APPLICABLE, "no NIfTI image")
    problems = [p for base, parts in bundles.items() for p in _bundle(base, parts)]
    if problems:
        return CheckResult("nifti", FAIL, f"{len(problems)} problem(s) in NIfTI bundles", problems)
    return CheckResult("nifti", PASS, f"{len(images)} NIfTI bundle(s) complete and consistent")
