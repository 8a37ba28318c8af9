"""De-identification benchmark (not a test): one corpus of synthetic MR (4,000 images of
~128 KiB, 4 patients, 7 series each, PHI in names, IDs, dates, sequences and private tags)
de-identified, page cache warm, each tool writing to its own output folder, by

* fionagw, one process (``deidentify_files(..., processes=1)``: de-identify, release check
  against the study's identifiers, atomic write) and over all cores (``processes=None``);
  the header pass that collects each study's identifiers (``collect_identifiers``) is timed
  separately and added to fionagw's figures, since a real transfer needs it;
* dicognito, its CLI (``dicognito --quiet --output-directory OUT CORPUS``);
* pydicom/deid, ``replace_identifiers(files, save=True, output_folder=...)`` with its
  default recipe, one call per series folder (it names outputs by the input's base name);
* dcmtk ``dcmodify`` (native reference) on a copy of the corpus, in place, with the tag
  edits printed by the bench: patient name/ID replaced, birth date, accession and the
  physician/operator/address/phone/institution names emptied or erased (in sequences too),
  study/series/SOP instance UIDs replaced by random ones (not consistent across files), dates
  emptied, every private element erased. It does far less than a basic profile (no tag table,
  no shifted dates, no UID references); it shows what native code costs per file.

Each Python tool runs in its own process; its time is measured inside it, after its imports,
from listing the files to the last file written. Peer packages are installed into
``bench/.peers-venv`` (never into the project venv). Prints files/s, peak RSS (largest
process of the tool) and the ratios ours / each peer; writes bench/results/deid-<time>.json.

    bench/deid [--images 4000] [--studies 4] [--work DIR] [--only fionagw-1,dicognito,...]

The corpus is generated once (about 15 s) and kept in bench/.work/deid/corpus. Tools:
fionagw-1, fionagw-all, dicognito, deid, dcmodify. On a machine shared with other work the
figures move from run to run: compare the tools of one run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))


from corpus import make_corpus, warm  # noqa: E402

PEERS_VENV = ROOT / "bench" / ".peers-venv"
PEER_PACKAGES = ("dicognito==0.19.0", "deid==0.4.13")
TOOLS = ("fionagw-1", "fionagw-all", "dicognito", "deid", "dcmodify")


def corpus_files(study: Path) -> list[Path]:
    return sorted(p for p in study.rglob("*.dcm"))


def series_dirs(corpus: Path) -> list[Path]:
    return sorted(p for p in corpus.glob("study*/S*") if p.is_dir())


def count_outputs(folder: Path) -> int:
    return sum(1 for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


# --- fionagw (runs in its own process: bench/deid.py --worker) -------------------------------


def fionagw_worker(corpus: Path, out: Path, processes: int | None, result: Path) -> None:
    """De-identify the corpus study by study, as anonymizeAndSend does: the study's identifiers
    from the first header of each series, then deidentify_files with the release check."""
    from pydicom import dcmread

    from fionagw.deid import DeidSettings, collect_identifiers
    from fionagw.deid.batch import deidentify_files

    settings = DeidSettings(project="BENCH", secret="bench-secret")
    collect = deid = 0.0
    written = failed = hits = 0
    start = time.perf_counter()
    for study in sorted(p for p in corpus.iterdir() if p.is_dir()):
        t0 = time.perf_counter()
        series = sorted(p for p in study.iterdir() if p.is_dir())
        firsts = [min(s.glob("*.dcm")) for s in series]
        ids = collect_identifiers([dcmread(f, stop_before_pixels=True) for f in firsts])
        jobs = [(f, out / f.relative_to(corpus)) for s in series for f in sorted(s.glob("*.dcm"))]
        t1 = time.perf_counter()
        batch = deidentify_files(
            jobs, settings, f"SUBJ{study.name[-1]}", "baseline", ids, processes
        )
        collect += t1 - t0
        deid += time.perf_counter() - t1
        written, failed, hits = (
            written + len(batch.written),
            failed + len(batch.failed),
            hits + len(batch.hits),
        )
    result.write_text(
        json.dumps(
            {
                "seconds": time.perf_counter() - start,
                "collect_seconds": collect,
                "batch_seconds": deid,
                "written": written,
                "failed": failed,
                "hits": hits,
            }
        )
    )


# --- peers (run in bench/.peers-venv) ----------------------------------------------------------

_DICOGNITO = """
import json, sys, time
from dicognito.__main__ import main  # the CLI's entry point
out, result, *sources = sys.argv[1:]
start = time.perf_counter()
main(["--quiet", "--output-directory", out, *sources])
json.dump({"seconds": time.perf_counter() - start}, open(result, "w"))
"""

_DEID = """
import json, os, sys, time
from deid.dicom import replace_identifiers
out, result, *series = sys.argv[1:]
start = time.perf_counter()
for folder in series:  # outputs are named by the input's base name: one call per series
    files = sorted(os.path.join(folder, n) for n in os.listdir(folder) if n.endswith(".dcm"))
    target = os.path.join(out, *folder.split(os.sep)[-2:])
    os.makedirs(target, exist_ok=True)
    replace_identifiers(dicom_files=files, save=True, output_folder=target)
json.dump({"seconds": time.perf_counter() - start}, open(result, "w"))
"""

# dcmodify: a fixed set of edits comparable in reach to a basic profile (see module doc)
DCMODIFY_EDITS = [
    "-ma",
    "(0010,0010)=ANONYMIZED",
    "-ma",
    "(0010,0020)=SUBJ",
    "-ma",
    "(0008,0050)=",
    *[
        arg
        for tag in (
            "0008,0020",
            "0008,0021",
            "0008,0022",
            "0008,0023",
            "0008,0012",
            "0010,0030",
            "0040,0244",
        )
        for arg in ("-ma", f"({tag})=")
    ],
    *[
        arg
        for tag in (
            "0008,0080",
            "0008,0081",
            "0008,0090",
            "0008,1010",
            "0008,1030",
            "0008,103E",
            "0008,1050",
            "0008,1060",
            "0008,1070",
            "0008,1110",
            "0010,0021",
            "0010,1000",
            "0010,1002",
            "0010,1040",
            "0010,2154",
            "0010,4000",
            "0032,1032",
            "0040,0275",
        )
        for arg in ("-ea", f"({tag})")
    ],
    "-ep",
    "-gst",
    "-gse",
    "-gin",
]
DCMODIFY_OPTIONS = ["-nb", "-ie", "-imt", "-q"]


def ensure_peers() -> Path:
    """bench/.peers-venv with dicognito and deid (pinned), created on first use."""
    python = PEERS_VENV / "bin" / "python"
    check = [str(python), "-c", "import dicognito, deid"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python
    print(f"installing the peers into {PEERS_VENV} ...")
    venv.create(PEERS_VENV, with_pip=True, clear=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *PEER_PACKAGES], check=True)
    return python


def peer_versions(python: Path) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json; "
        "print(json.dumps({p: m.version(p) for p in ('dicognito', 'deid', 'pydicom')}))"
    )
    return json.loads(
        subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True).stdout
    )


def run_measured(cmd: list[str], log: Path) -> dict:
    """Run ``cmd``; wall seconds, CPU seconds and peak RSS (MB, the largest process of the
    tree: Linux reports the maximum over the process and its waited-for children)."""
    start = time.perf_counter()
    with open(log, "ab") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, cwd=log.parent)
        _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        tail = log.read_text(errors="replace")[-1500:]
        raise SystemExit(f"{cmd[0]} failed (exit {code}); end of {log}:\n{tail}")
    return {
        "wall_seconds": wall,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,
    }


def bench_tool(name: str, corpus: Path, work: Path, expected: int, peers: Path | None) -> dict:
    out = work / f"out-{name}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    result = work / f"{name}.json"
    log = work / f"{name}.log"
    log.write_bytes(b"")
    studies = [str(p) for p in sorted(corpus.iterdir()) if p.is_dir()]
    if name.startswith("fionagw"):
        processes = "1" if name == "fionagw-1" else "0"
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--worker",
            str(corpus),
            str(out),
            processes,
            str(result),
        ]
    elif name == "dicognito":
        cmd = [str(peers), "-I", "-c", _DICOGNITO, str(out), str(result), *studies]
    elif name == "deid":
        cmd = [str(peers), "-I", "-c", _DEID, str(out), str(result), *map(str, series_dirs(corpus))]
    else:
        return bench_dcmodify(corpus, out, expected, log)
    measured = run_measured(cmd, log)
    measured.update(json.loads(result.read_text()))
    measured["files"] = count_outputs(out)
    shutil.rmtree(out, ignore_errors=True)
    return measured


def bench_dcmodify(corpus: Path, out: Path, expected: int, log: Path) -> dict:
    """dcmodify edits in place: copy the corpus first (not timed), then time the edits."""
    shutil.rmtree(out)
    shutil.copytree(corpus, out)
    files = sorted(str(p) for p in out.rglob("*.dcm"))
    total = {"seconds": 0.0, "cpu_seconds": 0.0, "peak_rss_mb": 0.0}
    for i in range(0, len(files), 1000):  # a few invocations keep the command line short
        m = run_measured(
            ["dcmodify", *DCMODIFY_OPTIONS, *DCMODIFY_EDITS, *files[i : i + 1000]], log
        )
        total["seconds"] += m["wall_seconds"]
        total["cpu_seconds"] += m["cpu_seconds"]
        total["peak_rss_mb"] = max(total["peak_rss_mb"], m["peak_rss_mb"])
    total["wall_seconds"] = total["seconds"]
    total["files"] = sum(1 for f in files if Path(f).exists())
    shutil.rmtree(out, ignore_errors=True)
    return total


LABELS = {
    "fionagw-1": "fionagw, 1 process",
    "fionagw-all": f"fionagw, {os.cpu_count()} processes",
    "dicognito": "dicognito (CLI)",
    "deid": "pydicom/deid (default recipe)",
    "dcmodify": "dcmtk dcmodify (native)",
}


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--images", type=int, default=4000)
    ap.add_argument("--studies", type=int, default=4)
    ap.add_argument(
        "--work",
        type=Path,
        default=ROOT / "bench" / ".work" / "deid",
        help="corpus cache and output folders (default bench/.work/deid)",
    )
    ap.add_argument("--only", default=",".join(TOOLS), help=f"subset of {','.join(TOOLS)}")
    ap.add_argument(
        "--worker",
        nargs=4,
        metavar=("CORPUS", "OUT", "PROCESSES", "RESULT"),
        help=argparse.SUPPRESS,
    )
    args = ap.parse_args()
    if args.worker:
        corpus, out, processes, result = args.worker
        fionagw_worker(Path(corpus), Path(out), int(processes) or None, Path(result))
        return 0
    tools = [t for t in args.only.split(",") if t]
    unknown = set(tools) - set(TOOLS)
    if unknown:
        raise SystemExit(f"--only: unknown tool(s) {', '.join(sorted(unknown))}")
    if "dcmodify" in tools and not shutil.which("dcmodify"):
        raise SystemExit("dcmodify is needed: apt-get install dcmtk")
    peers = ensure_peers() if {"dicognito", "deid"} & set(tools) else None
    corpus = args.work / "corpus"
    t = time.perf_counter()
    make_corpus(corpus, args.images, args.studies)
    expected = sum(1 for _ in corpus.rglob("*.dcm"))
    size = sum(p.stat().st_size for p in corpus.rglob("*.dcm")) / expected / 1024
    print(
        f"corpus: {expected} files of {size:.0f} KiB in {args.studies} studies, "
        f"{len(series_dirs(corpus))} series ({time.perf_counter() - t:.1f} s to prepare)"
    )
    warm(corpus)
    results: dict[str, dict] = {}
    for tool in tools:
        results[tool] = r = bench_tool(tool, corpus, args.work, expected, peers)
        r["files_per_s"] = expected / r["seconds"]
        note = ""
        if tool.startswith("fionagw"):
            note = (
                f"  (identifiers {r['collect_seconds']:.2f} s; failed {r['failed']}, "
                f"release hits {r['hits']})"
            )
        print(
            f"{LABELS[tool]:32s} {r['files_per_s']:8.1f} files/s  {r['seconds']:7.2f} s"
            f"  peak RSS {r['peak_rss_mb']:5.0f} MB  CPU {1000 * r['cpu_seconds'] / expected:5.2f}"
            f" ms/file  {r['files']} files out{note}"
        )
        if r["files"] != expected:
            print(f"    warning: {LABELS[tool]} wrote {r['files']} of {expected} files")
    ratios = {
        f"{ours}/{peer}": results[ours]["files_per_s"] / results[peer]["files_per_s"]
        for ours in ("fionagw-all", "fionagw-1")
        if ours in results
        for peer in ("dicognito", "deid", "dcmodify")
        if peer in results
    }
    for key, value in ratios.items():
        print(f"ratio {key:24s} {value:6.2f}")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    path = out / f"deid-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(
        json.dumps(
            {
                "images": expected,
                "studies": args.studies,
                "kib_per_image": size,
                "cpus": os.cpu_count(),
                "versions": peer_versions(peers) if peers else {},
                "dcmodify_command": ["dcmodify", *DCMODIFY_OPTIONS, *DCMODIFY_EDITS, "FILE..."],
                "tools": results,
                "ratios": ratios,
            },
            indent=2,
        )
    )
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
