"""Ingest benchmark (not a test): the same corpus sent by dcmtk storescu to
(a) dcmtk storescp writing to disk, and (b) our SCP + processSingleFile, until the last
image is classified in raw/. Prints images/s for both, the ratio, and each daemon's peak RSS.

    bench/ingest [--images 4000] [--studies 4] [--senders 1] [--no-fsync] [--keep]

--no-fsync runs our SCP with durable=False (through serve_scp directly: there is no
production switch for that) to show what the fsyncs cost. CPU ms/image is each daemon's
user+system time (start-up included) over the corpus.

On a shared VM disk the figures vary a lot from run to run (storescp alone 330-810
images/s here): compare (a) and (b) of one run, and repeat. On ext4 without a journal,
creating files is slow for about a minute after many deletions in the same block group,
so leave a minute between runs (each run deletes its received data at the end).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from fionagw import synth  # noqa: E402

VENDORS = ("SIEMENS", "GE", "PHILIPS", "SIEMENS")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_corpus(folder: Path, images: int, studies: int) -> list[Path]:
    """4 studies x 1,000 MR images of ~128 KiB by default; cached between runs."""
    stamp = folder / f".complete-{images}-{studies}"
    if stamp.exists():
        return sorted(p for p in folder.iterdir() if p.is_dir())
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    per_study = images // studies
    dirs = []
    for i in range(studies):
        d = folder / f"study{i}"
        vendor = VENDORS[i % len(VENDORS)]
        series = synth.standard_mr_series(vendor, 1)
        k = len(series)
        specs = [synth.with_changes(s, n_images=per_study // k + (1 if j < per_study % k else 0))
                 for j, s in enumerate(series)]
        synth.write_study(d, vendor=vendor, series=specs, pixel_bytes=128 * 1024, seed=i,
                          patient_id=f"BENCH{i:03d}", accession=f"BENCHACC{i:03d}")
        dirs.append(d)
    stamp.touch()
    return dirs


def count_files(folder: Path) -> int:
    n = 0
    for _dirpath, _dirs, files in os.walk(folder):
        n += sum(1 for f in files if not f.startswith(".") and not f.endswith(".json"))
    return n


def peak_rss_mb(pid: int) -> float:
    """VmHWM of a live process (peak resident set), in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def send(port: int, dirs: list[Path], senders: int) -> list[subprocess.Popen]:
    groups = [dirs[i::senders] for i in range(senders)]
    return [
        subprocess.Popen(["storescu", "-aet", "BENCH", "-aec", "FIONA", "+sd", "+r", "127.0.0.1", str(port),
                          *map(str, g)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for g in groups if g
    ]


def wait_count(folder: Path, expected: int, senders: list[subprocess.Popen], timeout: float) -> float:
    start = time.perf_counter()
    while True:
        n = count_files(folder)
        if n >= expected:
            return time.perf_counter()
        for p in senders:
            if p.poll() not in (None, 0):
                raise SystemExit(f"storescu failed: {p.stderr.read().decode()[-500:] if p.stderr else ''}")
        if time.perf_counter() - start > timeout:
            raise SystemExit(f"timeout: {n} of {expected} files after {timeout} s")
        time.sleep(0.05)


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


def bench_storescp(dirs: list[Path], expected: int, work: Path, senders: int) -> dict:
    out = work / "storescp"
    out.mkdir()
    port = free_port()
    proc = subprocess.Popen(["storescp", "-aet", "FIONA", "--sort-on-study-uid", "scp", "-od", str(out), str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        t0 = time.perf_counter()
        procs = send(port, dirs, senders)
        t1 = wait_count(out, expected, procs, 600)
        for p in procs:
            p.wait()
        rss = peak_rss_mb(proc.pid)
        cpu = cpu_seconds(proc.pid)
    finally:
        proc.terminate()
        proc.wait()
    return {"seconds": t1 - t0, "images_per_s": expected / (t1 - t0), "peak_rss_mb": {"storescp": rss},
            "cpu_ms_per_image": {"storescp": 1000 * cpu / expected}}


# Our SCP without fsync, for --no-fsync only: serve_scp(durable=False) until SIGTERM.
_NO_FSYNC_SCP = """
import signal, sys, threading
sys.path.insert(0, sys.argv[1])
from fionagw.config import load_config
from fionagw.receive.scp import serve_scp
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
serve_scp(load_config(sys.argv[2]), stop, lambda: None, durable=False)
"""


def bench_fionagw(dirs: list[Path], expected: int, work: Path, senders: int,
                  durable: bool = True) -> dict:
    port = free_port()
    cfg = work / "config.json"
    cfg.write_text(json.dumps({
        "DATADIR": str(work / "data"), "DICOMIP": "127.0.0.1", "DICOMPORT": port,
        "DICOMAETITLE": "FIONA", "CLASSIFY_RULES": str(ROOT / "config" / "classifyRules.json"),
        "logging": {"level": "INFO"},
    }))
    py = sys.executable
    commands = {name: [py, str(ROOT / "bin" / name), "--config", str(cfg), "foreground"]
                for name in ("processSingleFile", "storectl")}
    if not durable:
        commands["storectl"] = [py, "-c", _NO_FSYNC_SCP, str(ROOT / "lib"), str(cfg)]
    procs = {
        name: subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for name, command in commands.items()
    }
    raw = work / "data" / "site" / "raw"
    try:
        wait_port(port)
        t0 = time.perf_counter()
        senders_p = send(port, dirs, senders)
        t_arch = None
        archive = work / "data" / "site" / "archive"
        # time to last image archived, then to last image classified in raw/
        t_arch = wait_count(archive, expected, senders_p, 900)
        t1 = wait_count(raw, expected, senders_p, 900)
        for p in senders_p:
            p.wait()
        rss = {name: peak_rss_mb(p.pid) for name, p in procs.items()}
        cpu = {name: 1000 * cpu_seconds(p.pid) / expected for name, p in procs.items()}
    finally:
        for p in procs.values():
            p.terminate()
        for p in procs.values():
            p.wait()
    return {"seconds": t1 - t0, "images_per_s": expected / (t1 - t0),
            "archived_images_per_s": expected / (t_arch - t0), "peak_rss_mb": rss,
            "cpu_ms_per_image": cpu}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=4000)
    ap.add_argument("--studies", type=int, default=4)
    ap.add_argument("--senders", type=int, default=1, help="parallel storescu processes (studies split among them)")
    ap.add_argument("--corpus", type=Path, default=Path(tempfile.gettempdir()) / "fionagw-bench-corpus")
    ap.add_argument("--no-fsync", action="store_true",
                    help="our SCP without fsync (not durable; to measure what durability costs)")
    ap.add_argument("--keep", action="store_true", help="keep the received data")
    args = ap.parse_args()
    if not shutil.which("storescu") or not shutil.which("storescp"):
        raise SystemExit("dcmtk is needed: apt-get install dcmtk")
    os.environ["TCP_NODELAY"] = "1"
    t = time.perf_counter()
    dirs = make_corpus(args.corpus, args.images, args.studies)
    expected = count_files(args.corpus)
    print(f"corpus: {expected} files in {len(dirs)} studies ({time.perf_counter() - t:.1f} s to prepare)")
    work = Path(tempfile.mkdtemp(prefix="fionagw-bench-"))
    try:
        ref = bench_storescp(dirs, expected, work, args.senders)
        print(f"(a) dcmtk storescp          {ref['images_per_s']:8.1f} images/s  ({ref['seconds']:.2f} s)"
              f"  peak RSS {ref['peak_rss_mb']['storescp']:.0f} MB"
              f"  CPU {ref['cpu_ms_per_image']['storescp']:.2f} ms/image")
        ours = bench_fionagw(dirs, expected, work, args.senders, durable=not args.no_fsync)
        rss = ", ".join(f"{k} {v:.0f} MB" for k, v in ours["peak_rss_mb"].items())
        label = "(b) fionagw SCP + classify" + (" NO FSYNC" if args.no_fsync else "")
        print(f"{label:27s} {ours['images_per_s']:8.1f} images/s  ({ours['seconds']:.2f} s)"
              f"  archived at {ours['archived_images_per_s']:.1f}/s  peak RSS {rss}")
        cpu = ", ".join(f"{k} {v:.2f}" for k, v in ours["cpu_ms_per_image"].items())
        print(f"    CPU ms/image: {cpu}")
        ratio = ours["images_per_s"] / ref["images_per_s"]
        print(f"ratio (b)/(a): {ratio:.2f}  (goal >= 0.70; peak RSS goal < 150 MB per daemon)")
        results = ROOT / "bench" / "results"
        results.mkdir(exist_ok=True)
        out = results / f"ingest-{time.strftime('%Y%m%dT%H%M%S')}.json"
        out.write_text(json.dumps({"images": expected, "senders": args.senders,
                                   "durable": not args.no_fsync, "storescp": ref,
                                   "fionagw": ours, "ratio": ratio}, indent=2))
        print(f"results: {out}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
