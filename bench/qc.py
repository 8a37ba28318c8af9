"""QC benchmark (not a test): `fiona qc run` of one 2,000-image study, header reads only.

Builds a site whose raw/ tree holds a synthetic 2,000-image Siemens MR study (7 series with
a diffusion series, ~128 KiB per image, filed by the real Organizer), then times
qc.run.check_study (scan of every header + every check + the stored result) cold and warm,
and the whole `bin/fiona qc run` as a program. Goal: under 2 s. JSON in bench/results/.

    bench/qc [--images 2000] [--runs 3] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))
sys.path.insert(0, str(ROOT / "tests"))

from fionagw.classify import Connection, RuleSet  # noqa: E402
from fionagw.config import load_config  # noqa: E402
from fionagw.organize.tree import Organizer  # noqa: E402
from fionagw.qc.run import check_study  # noqa: E402
from support import synth  # noqa: E402

GOAL_S = 2.0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=2000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--keep", action="store_true", help="keep the work folder")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-qc-"))
    try:
        config = work / "config.json"
        config.write_text(
            json.dumps(
                {
                    "DATADIR": str(work / "data"),
                    "DICOMIP": "127.0.0.1",
                    "DICOMPORT": 11112,
                    "DICOMAETITLE": "FIONA",
                    "CLASSIFY_RULES": str(ROOT / "config" / "classifyRules.json"),
                }
            )
        )
        cfg = load_config(config)
        cfg.paths.create()
        series = synth.standard_mr_series("SIEMENS", 1)
        k = len(series)
        specs = [
            synth.with_changes(s, n_images=args.images // k + (1 if j < args.images % k else 0))
            for j, s in enumerate(series)
        ]
        files = synth.write_study(
            work / "in", vendor="SIEMENS", series=specs, pixel_bytes=128 * 1024, seed=11
        )
        organizer = Organizer(cfg, RuleSet.load(cfg.classify_rules), touch_jobs=False)
        study = ""
        for f in files:
            ds = synth_header(f)
            study = ds[0]
            target = cfg.paths.archive / f"scp_{study}" / f"MR.{ds[1]}"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, target)
            organizer.process(target, Connection("BENCH", "FIONA", "127.0.0.1"))
        organizer.flush()
        subprocess.run(["sync"], check=False)
        times, cpu = [], []
        for _ in range(args.runs):
            t0, c0 = time.perf_counter(), time.process_time()
            result = check_study(cfg, study)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        t0 = time.perf_counter()
        r = subprocess.run(
            [str(ROOT / "bin" / "fiona"), "--config", str(config), "qc", "run", study],
            capture_output=True,
            text=True,
        )
        program = time.perf_counter() - t0
        out = {
            "images": result.facts.images,
            "series": len(result.facts.series),
            "check_study_seconds": [round(t, 3) for t in times],
            # on a shared machine the wall time includes waiting for a core; this does not
            "check_study_cpu_seconds": [round(t, 3) for t in cpu],
            "load_average": list(os.getloadavg()),
            "fiona_qc_run_seconds": round(program, 3),
            "fiona_qc_run_exit": r.returncode,
            "goal_seconds": GOAL_S,
            "met": max(times[1:] or times) < GOAL_S,
        }
        print(json.dumps(out, indent=2))
        results = ROOT / "bench" / "results"
        results.mkdir(exist_ok=True)
        (results / f"qc-{time.strftime('%Y%m%dT%H%M%S')}.json").write_text(json.dumps(out))
        return 0 if out["met"] else 1
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def synth_header(path: Path) -> tuple[str, str]:
    from fionagw.classify import read_header

    ds = read_header(path)
    return str(ds.StudyInstanceUID), str(ds.SOPInstanceUID)


if __name__ == "__main__":
    raise SystemExit(main())
