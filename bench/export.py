"""Export benchmark (not a test): the PURE build + zip against `zip -r` of the same tree, and the
NIFTI build against running dcm2niix by hand on each series folder, on a synthetic study
(Siemens MR, 7 series). The PACS pull is left out (it is C-GET, timed by bench/send_cstore).
JSON in bench/results/export.json.

    bench/export [--images 60] [--keep]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))
sys.path.insert(0, str(ROOT / "tests"))

from fionagw.export import build  # noqa: E402
from support import synth  # noqa: E402


def _flat(files: list[Path], folder: Path) -> None:
    folder.mkdir(parents=True)
    for n, f in enumerate(files):
        shutil.copy(f, folder / f"{n:06d}.dcm")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=60, help="images per series")
    p.add_argument("--keep", action="store_true")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-export-"))
    try:
        files = synth.standard_mr_study(work / "study", "SIEMENS", n_per_series=args.images)
        mb = sum(f.stat().st_size for f in files) / 1e6
        about = {"project": "BENCH"}

        _flat(files, work / "in1")
        t = time.perf_counter()
        tree = build.build_pure(
            build.read_instances(work / "in1"), work / "pure", "P1", "E1", about
        )
        t_zip = time.perf_counter()
        build.write_zip(tree, work / "pure.zip")
        ours_zip = time.perf_counter() - t_zip
        ours_pure = time.perf_counter() - t
        t = time.perf_counter()
        subprocess.run(
            ["zip", "-q", "-r", str(work / "ref.zip"), "."], cwd=work / "pure", check=True
        )
        zip_r = time.perf_counter() - t

        _flat(files, work / "in2")
        t = time.perf_counter()
        build.build_nifti(
            build.read_instances(work / "in2"), work / "nii", work / "w", "P1", "E1", about
        )
        ours_nifti = time.perf_counter() - t
        t = time.perf_counter()
        for series in sorted((work / "study").iterdir()):
            out = work / "byhand" / series.name
            out.mkdir(parents=True)
            subprocess.run(
                ["dcm2niix", "-b", "y", "-z", "y", "-o", str(out), str(series)],
                capture_output=True,
                check=False,
            )
        by_hand = time.perf_counter() - t
        result = {
            "images": len(files),
            "megabytes": round(mb, 1),
            "pure_build_zip_s": round(ours_pure, 3),
            "pure_mb_s": round(mb / ours_pure, 1),
            "pure_zip_only_s": round(ours_zip, 3),
            "zip_only_vs_zip_r": round(ours_zip / zip_r, 2),
            "zip_r_s": round(zip_r, 3),
            "zip_r_mb_s": round(mb / zip_r, 1),
            "pure_vs_zip_r": round(ours_pure / zip_r, 2),  # with header reads, SHA-256, manifest
            "nifti_s": round(ours_nifti, 3),
            "dcm2niix_by_hand_s": round(by_hand, 3),
            "nifti_vs_by_hand": round(ours_nifti / by_hand, 2),
        }
        out = ROOT / "bench" / "results"
        out.mkdir(exist_ok=True)
        (out / "export.json").write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result, indent=2))
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
