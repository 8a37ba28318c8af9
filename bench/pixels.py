"""Burned-in text benchmark (not a test): deid/pixels.py ``clean_files`` on generated
ultrasound-like frames with names, IDs and dates drawn in (tests/support/burned.py), one
frame per file, for each frame size, in one process and over all cores. The time is
everything a transfer spends: read, decode, OCR (three image variants), judge, mask, the
verification OCR, write. Prints frames/s and the recall of the planted identifying strings;
writes bench/results/pixels-<time>.json.

    bench/pixels [--frames 6] [--sizes 512x512,1024x768] [--processes 1,2]
    bench/pixels --files DIR_OR_FILE ...   # real files: what was found and masked in each

OCR dominates (Tesseract, one core per call: OMP_THREAD_LIMIT=1), so frames/s scales with
cores until memory bandwidth does not; on a machine shared with other work the figures move.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))
sys.path.insert(0, str(ROOT / "tests"))

import pydicom  # noqa: E402

from fionagw.deid.pixels import PixelSettings, Terms, clean_file, clean_files  # noqa: E402
from support import burned  # noqa: E402


def make(work: Path, rows: int, cols: int, n: int) -> tuple[list[Path], list]:
    paths, planted = [], []
    for i in range(n):
        img, items = burned.draw(
            burned.background(rows, cols, 100 + i), burned.layout(rows, cols, 100 + i)
        )
        ds = burned.us_dataset([img])
        path = work / f"{rows}x{cols}-{i}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
        planted.append((img, items))
    return paths, planted


def run_size(rows: int, cols: int, frames: int, processes: list[int]) -> dict:
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for procs in processes:
            work = Path(tmp) / f"p{procs}"
            work.mkdir()
            paths, planted = make(work, rows, cols, frames)
            terms = Terms.build([pydicom.dcmread(paths[0], stop_before_pixels=True)])
            start = time.monotonic()
            results = clean_files(paths, terms, PixelSettings(), processes=procs)
            seconds = time.monotonic() - start
            score = burned.Score()
            for (path, result), (img, items) in zip(results, planted, strict=True):
                after = pydicom.dcmread(path).pixel_array
                score.add(burned.score(img[None], after[None], result.boxes, [items]))
            out[procs] = {
                "frames": frames,
                "seconds": round(seconds, 2),
                "frames_per_s": round(frames / seconds, 3),
                "recall": round(score.recall, 3),
                "precision": round(score.precision, 3),
                "held_back": sum(1 for _, r in results if r.reason),
            }
            print(
                f"{rows}x{cols}: {procs} process(es): {frames} frames in {seconds:.1f} s = "
                f"{frames / seconds:.2f} frames/s (recall {score.recall:.2f}, precision "
                f"{score.precision:.2f})",
                flush=True,
            )
    return out


def run_files(items: list[str]) -> None:
    """Each file copied, cleaned with its own header as the identifying values, reported."""
    files = []
    for item in items:
        p = Path(item)
        files += sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    with tempfile.TemporaryDirectory() as tmp:
        for f in files:
            try:
                ds = pydicom.dcmread(f)
            except Exception as exc:
                print(f"{f.name}: not DICOM ({type(exc).__name__})")
                continue
            if "PixelData" not in ds:
                continue
            copy = Path(tmp) / f.name
            copy.write_bytes(f.read_bytes())
            result = clean_file(copy, Terms.build([ds]), PixelSettings())
            after = pydicom.dcmread(copy)
            ts = ds.file_meta.get("TransferSyntaxUID", "?")
            print(
                f"{f.name}: {ds.get('Modality', '?')} {ds.get('Rows')}x{ds.get('Columns')} "
                f"x{result.frames} {getattr(ts, 'name', ts)} -> "
                f"{getattr(after.file_meta.TransferSyntaxUID, 'name', '?')}: "
                f"{result.regions} region(s), {result.overlays} overlay(s), "
                f"{'verified' if result.verified else 'HELD: ' + result.reason}, "
                f"{result.seconds:.1f} s",
                flush=True,
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=6)
    ap.add_argument("--sizes", default="512x512,1024x768")
    ap.add_argument("--processes", default=f"1,{os.cpu_count() or 1}")
    ap.add_argument("--files", nargs="+")
    args = ap.parse_args()
    if args.files:
        run_files(args.files)
        return
    processes = sorted({int(p) for p in args.processes.split(",")})
    out = {"cpus": os.cpu_count(), "sizes": {}}
    for size in args.sizes.split(","):
        rows, cols = (int(v) for v in size.lower().split("x"))
        out["sizes"][size] = run_size(rows, cols, args.frames, processes)
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / f"pixels-{time.strftime('%Y%m%dT%H%M%S')}.json").write_text(json.dumps(out))


if __name__ == "__main__":
    main()
