"""The NIfTI bundle check: .nii.gz + .bvec + .bval + JSON sidecar, read with nibabel."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel
import numpy as np

from fionagw.qc.nifti import check_nifti_folder


def bundle(
    folder: Path, volumes: int = 4, bvals: int | None = None, sidecar: dict | None = None
) -> None:  # type: ignore[type-arg]
    folder.mkdir(parents=True, exist_ok=True)
    img = nibabel.Nifti1Image(np.zeros((2, 2, 2, volumes), dtype=np.int16), np.eye(4))
    nibabel.save(img, str(folder / "dwi.nii.gz"))
    n = volumes if bvals is None else bvals
    (folder / "dwi.bval").write_text(" ".join(["0"] + ["1000"] * (n - 1)) + "\n")
    (folder / "dwi.bvec").write_text(
        "\n".join(" ".join(["0.5"] * volumes) for _ in range(3)) + "\n"
    )
    meta = {"PatientAge": 45, "PatientSex": "F"} if sidecar is None else sidecar
    (folder / "dwi.json").write_text(json.dumps(meta))


def test_consistent_bundle_passes(tmp_path: Path) -> None:
    bundle(tmp_path)
    result = check_nifti_folder(tmp_path)
    assert result.status == "pass" and result.summary == "1 NIfTI bundle(s) complete and consistent"


def test_bval_count_mismatch_fails(tmp_path: Path) -> None:
    bundle(tmp_path, volumes=4, bvals=3)
    result = check_nifti_folder(tmp_path)
    assert result.status == "fail"
    assert result.details == ["dwi: 4 volumes, 3 b-values, 4 b-vectors: they must be equal"]


def test_missing_parts_and_demographics_fail(tmp_path: Path) -> None:
    bundle(tmp_path / "a", sidecar={"patient_age": "45"})
    bundle(tmp_path / "b")
    (tmp_path / "b" / "dwi.bvec").unlink()
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "other.bval").write_text("0\n")
    details = check_nifti_folder(tmp_path).details
    assert "a/dwi.json: no sex (PatientAge, PatientSex)" in details
    assert "b/dwi: missing b/dwi.bvec" in details
    assert "c/other: no .nii/.nii.gz image for .bval" in details


def test_no_nifti_is_not_applicable(tmp_path: Path) -> None:
    assert check_nifti_folder(tmp_path).status == "n/a"
