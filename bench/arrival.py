"""Arrival benchmark (not a test): detectStudyArrival on one 10,000-image study.

Builds a site whose raw/ tree holds a synthetic 10,000-image MR study (tests/support/synth.py,
~128 KiB per image, archived and filed by the real Organizer), ages the job files, runs
bin/detectStudyArrival as cron would and prints the seconds, with quarantine on and off.
With --compare it also times other ways of making the same quarantine tgz + md5 (python
tarfile at level 1, tar -h | gzip -1, tar -h | pigz --fast when installed).

    bench/arrival [--images 10000] [--compare] [--keep]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))
sys.path.insert(0, str(ROOT / "tests"))  # the synthetic studies of the test support package

from fionagw.arrival.quarantine import series_members, write_tgz  # noqa: E402
from fionagw.classify import Connection, RuleSet, read_header  # noqa: E402
from fionagw.config import load_config  # noqa: E402
from fionagw.organize.tree import Organizer  # noqa: E402
from fionagw.receive.notify import touch_study_job  # noqa: E402
from fionagw.tracking.factory import open_tracker  # noqa: E402
from support import synth  # noqa: E402

CALLING, CALLED, IP = "BENCH", "FIONA", "127.0.0.1"
GOAL_S = 10.0


def make_corpus(folder: Path, images: int) -> list[Path]:
    """One SIEMENS MR study of ``images`` images in 7 series; cached between runs."""
    stamp = folder / f".complete-{images}"
    if stamp.exists():
        return sorted(p for p in folder.rglob("*.dcm"))
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    series = synth.standard_mr_series("SIEMENS", 1)
    k = len(series)
    specs = [
        synth.with_changes(s, n_images=images // k + (1 if j < images % k else 0))
        for j, s in enumerate(series)
    ]
    files = synth.write_study(
        folder,
        vendor="SIEMENS",
        series=specs,
        pixel_bytes=128 * 1024,
        seed=7,
        patient_id="BENCHARR",
        accession="BENCHARR1",
    )
    stamp.touch()
    return files


def write_config(work: Path, quarantine: bool) -> Path:
    path = work / "config.json"
    path.write_text(
        json.dumps(
            {
                "DATADIR": str(work / "data"),
                "DICOMIP": "127.0.0.1",
                "DICOMPORT": 11112,
                "DICOMAETITLE": "FIONA",
                "CLASSIFY_RULES": str(ROOT / "config" / "classifyRules.json"),
                "logging": {"level": "INFO"},
                "arrival": {"quarantine": quarantine},
            }
        )
    )
    return path


def build_site(work: Path, files: list[Path]) -> tuple[Path, str]:
    """Archive (hard links named <MOD>.<SOP>) + raw/ tree + series JSON, as the daemons leave it."""
    config = write_config(work, True)
    cfg = load_config(config)
    cfg.paths.create()
    organizer = Organizer(cfg, RuleSet.load(cfg.classify_rules))
    conn = Connection(CALLING, CALLED, IP)
    study = ""
    for f in files:
        ds = read_header(f)
        study = str(ds.StudyInstanceUID)
        target = cfg.paths.archive_study_dir(study) / f"MR.{ds.SOPInstanceUID}"
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(f, target)
        organizer.process(target, conn)
        organizer.flush(force=False)
    organizer.flush(force=True)
    touch_study_job(cfg.paths, CALLING, CALLED, IP, study)
    return config, study


def make_jobs(config: Path, study: str, age_s: float) -> int:
    """(Re)create the study and series jobs and age them past the quiet period."""
    cfg = load_config(config)
    jobs = [cfg.paths.study_job(CALLING, CALLED, IP, study)]
    jobs += [
        cfg.paths.series_job(CALLING, CALLED, IP, study, p.stem)
        for p in cfg.paths.raw_study_dir(study).glob("*.json")
    ]
    past = time.time() - age_s
    for job in jobs:
        job.touch()
        os.utime(job, (past, past))
    return len(jobs)


def run_job(config: Path, program: str, *args: str) -> float:
    """Seconds one cron program takes, started as cron starts it."""
    t0 = time.perf_counter()
    r = subprocess.run(
        [str(ROOT / "bin" / program), "--config", str(config), *args],
        capture_output=True,
        text=True,
    )
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"{program} failed ({r.returncode}): {r.stderr[-2000:]}")
    return dt


def run_detect(config: Path) -> float:
    return run_job(config, "detectStudyArrival")


def md5_file(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def compare(config: Path, study: str, out: Path) -> dict[str, float]:
    """Seconds to write every series' tgz and its md5, by method."""
    cfg = load_config(config)
    series = sorted(p.stem for p in cfg.paths.raw_study_dir(study).glob("*.json"))
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, float] = {}

    def timed(name: str, one) -> None:  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        for s in series:
            dest = out / f"{name}-{s}.tgz"
            one(s, dest)
            dest.unlink()
        results[name] = time.perf_counter() - t0
        print(f"  {name:28s} {results[name]:7.2f} s")

    def rel_args(s: str) -> list[str]:
        return [f"site/raw/{study}/{s}/", f"site/raw/{study}/{s}.json"]

    def ours(s: str, dest: Path) -> None:
        write_tgz(dest, series_members(cfg, study, s))

    def py_tarfile(s: str, dest: Path) -> None:
        with tarfile.open(dest, "w:gz", compresslevel=1, dereference=True) as tar:
            for m in series_members(cfg, study, s):
                tar.add(m.path, arcname=m.arcname, recursive=False)
        md5_file(dest)

    def pipe(compressor: list[str]):  # type: ignore[no-untyped-def]
        def one(s: str, dest: Path) -> None:
            with open(dest, "wb") as f:
                tar = subprocess.Popen(
                    ["tar", "-h", "-c", "-f", "-", "-C", str(cfg.datadir), *rel_args(s)],
                    stdout=subprocess.PIPE,
                )
                gz = subprocess.run(compressor, stdin=tar.stdout, stdout=f)
                tar.stdout.close()  # type: ignore[union-attr]
                if tar.wait() or gz.returncode:
                    raise SystemExit(f"{compressor[0]} pipeline failed")
            subprocess.run(["md5sum", "-b", str(dest)], capture_output=True, check=True)

        return one

    timed("fionagw write_tgz (threads)", ours)
    if shutil.which("pigz"):
        timed("tar -h | pigz --fast", pipe(["pigz", "--fast"]))
    else:
        print("  tar -h | pigz --fast         (pigz not installed: apt-get install pigz)")
    timed("tar -h | gzip -1", pipe(["gzip", "-1"]))
    timed("python tarfile w:gz level 1", py_tarfile)
    return results


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--images", type=int, default=10000)
    ap.add_argument(
        "--corpus", type=Path, default=Path(tempfile.gettempdir()) / "fionagw-bench-arrival-corpus"
    )
    ap.add_argument(
        "--compare", action="store_true", help="also time tarfile, tar|gzip -1, tar|pigz --fast"
    )
    ap.add_argument("--keep", action="store_true", help="keep the site (printed)")
    args = ap.parse_args()
    t = time.perf_counter()
    files = make_corpus(args.corpus, args.images)
    size = sum(f.stat().st_size for f in files)
    print(
        f"corpus: {len(files)} images, {size / 1e9:.2f} GB ({time.perf_counter() - t:.1f} s to prepare)"
    )
    work = Path(tempfile.mkdtemp(prefix="fionagw-bench-arrival-"))
    try:
        t = time.perf_counter()
        config, study = build_site(work, files)
        print(f"site: archive + raw/ + series JSON built in {time.perf_counter() - t:.1f} s")
        cfg = load_config(config)
        # page cache warm, as right after reception
        subprocess.run(["cat", *map(str, files)], stdout=subprocess.DEVNULL, check=True)

        n = make_jobs(config, study, 60)
        with_q = run_detect(config)
        tgzs = list(cfg.paths.quarantine.glob("*.tgz"))
        tgz_bytes = sum(p.stat().st_size for p in tgzs)
        assert len(tgzs) == n - 1, f"{len(tgzs)} tgz for {n - 1} series"
        print(
            f"detectStudyArrival, quarantine on:  {with_q:6.2f} s  ({n - 1} series, "
            f"{tgz_bytes / 1e9:.2f} GB of tgz, ratio {tgz_bytes / size:.3f})"
        )
        for p in cfg.paths.quarantine.iterdir():
            p.unlink()
        write_config(work, False)
        make_jobs(config, study, 60)
        without_q = run_detect(config)
        assert not list(cfg.paths.quarantine.glob("*.tgz"))
        print(f"detectStudyArrival, quarantine off: {without_q:6.2f} s")
        populate = run_job(config, "populateIncoming", "--settle", "0")
        studies = open_tracker(cfg).get_studies([study])
        assert study in studies and len(studies[study].series) == n - 1, "study not recorded"
        print(f"populateIncoming (local tracker):   {populate:6.2f} s  ({n - 1} series recorded)")
        slowest = max(with_q, populate)
        print(
            f"goal: each < {GOAL_S:.0f} s for a {args.images}-image study -> "
            f"{'met' if slowest < GOAL_S else 'NOT met'}"
        )
        results = {
            "images": len(files),
            "bytes": size,
            "quarantine_on_s": with_q,
            "quarantine_off_s": without_q,
            "tgz_bytes": tgz_bytes,
            "populate_incoming_s": populate,
        }
        if args.compare:
            print("quarantine tgz + md5 of every series, by method:")
            write_config(work, True)
            results["compare_s"] = compare(config, study, work / "compare")
        out = ROOT / "bench" / "results"
        out.mkdir(exist_ok=True)
        path = out / f"arrival-{time.strftime('%Y%m%dT%H%M%S')}.json"
        path.write_text(json.dumps(results, indent=2))
        print(f"results: {path}")
    finally:
        if args.keep:
            print(f"kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
