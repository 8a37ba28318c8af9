"""Upload material: ZIPs of synthetic studies (and hostile ones), NIfTI sets with their sidecars."""

from __future__ import annotations

import gzip
import json
import stat
import struct
import zipfile
from pathlib import Path

from fionagw.upload.limits import UploadLimits
from support import synth

LIMITS = UploadLimits(max_bytes=50 * 1024 * 1024, max_entries=1000)


def make_zip(
    path: Path, entries: dict[str, bytes], *, symlinks: dict[str, str] | None = None
) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return path


def study_zip(
    tmp_path: Path, extra: dict[str, bytes] | None = None, **study: object
) -> tuple[Path, list[Path]]:
    files = synth.standard_mr_study(tmp_path / "study", n_per_series=2, **study)
    entries = {f"CD/{p.relative_to(tmp_path / 'study').as_posix()}": p.read_bytes() for p in files}
    entries.update(extra or {})
    return make_zip(tmp_path / "upload.zip", entries), files


def nifti_bytes(volumes: int, nx: int = 2) -> bytes:
    header = bytearray(352)
    struct.pack_into("<i", header, 0, 348)
    struct.pack_into("<8h", header, 40, 4, nx, nx, nx, volumes, 1, 1, 1)
    struct.pack_into("<hh", header, 70, 2, 8)  # uint8
    struct.pack_into("<f", header, 108, 352.0)
    header[344:348] = b"n+1\0"
    return bytes(header) + bytes(nx * nx * nx * volumes)


def nifti_set(
    root: Path,
    base: str = "sub-01_dwi",
    volumes: int = 3,
    bvals: int | None = None,
    gz: bool = True,
    sidecar: dict | None = None,
) -> None:
    root.mkdir(parents=True, exist_ok=True)
    data = nifti_bytes(volumes)
    (root / (base + (".nii.gz" if gz else ".nii"))).write_bytes(gzip.compress(data) if gz else data)
    n = volumes if bvals is None else bvals
    (root / f"{base}.bval").write_text(" ".join(["0"] + ["1000"] * (n - 1)) + "\n")
    (root / f"{base}.bvec").write_text("\n".join(" ".join(["0.5"] * n) for _ in range(3)) + "\n")
    (root / f"{base}.json").write_text(
        json.dumps(
            sidecar or {"PatientSex": "F", "PatientAge": "034Y", "StudyDescription": "DWI research"}
        )
    )
