"""Ingest benchmark (not a test): the same corpus sent by dcmtk storescu to
(a) dcmtk storescp writing to disk (no flush: the ceiling), (b) Orthanc with
``SyncStorageArea: true`` (the durable reference), and (c) our SCP + processSingleFile,
until the last image is stored (ours: classified in raw/). Prints images/s for each, the
ratios, our flushes per image (counted by the receiver), each daemon's CPU time per image
and peak RSS.

    bench/ingest [--images 4000] [--studies 4] [--senders 1,4,8] [--rounds 1]
                 [--durability flush|os] [--no-orthanc] [--workdir DIR] [--keep]

--durability os runs our SCP with ``receiver.durability: os`` (no flush) to show what
durability costs. CPU ms/image is each daemon's user+system time while the corpus is sent
(start-up is printed apart). Flushes per image come from the receiver's "SCP stopped" log
line (receive/flushes.py counts every fsync it makes).

What keeps the sides comparable:

* the same corpus, read once beforehand (page cache warm), sent by the same storescu
  command line with TCP_NODELAY=1 (Orthanc gets TCP_NODELAY=1 too);
* os.sync() before each side: storescp does not fsync, and its hundreds of MB of dirty
  pages would otherwise be written back while the next side runs (and fsyncs);
* the received data lands in a fresh ext4 block group: the work folder is made under
  DIR (default $TMPDIR/fionagw-bench-work), which gets ext4's "top directory" flag
  (chattr +T) so that each run's folder is placed in a little-used group. Without a
  journal, ext4 skips inodes deleted in the last 60 s (up to 6 min while their inode
  table is not yet written back) whenever it allocates one, checking each: creating a
  file in a group where thousands were just deleted (the previous run, other tests)
  costs ~1 ms instead of ~30 us, for every side but not equally. The run also waits
  until its own last deletion is 65 s old;
* the progress of each side is polled cheaply (only folders that changed are listed
  again; Orthanc's /statistics), so the poller takes little CPU from the daemons;
* --rounds N repeats the sides N times per sender count, rotating which goes first, and
  reports every round and the median ratios;
* with --senders N > 1, storescp runs with --fork (a process per association), Orthanc
  with its default DICOM threads, our SCP serves associations in parallel.

On a shared VM disk the figures still vary from run to run (the host's load shows as
flush latency and steal time): compare the sides of one round, and repeat.
"""

from __future__ import annotations

import argparse
import array
import fcntl
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from corpus import make_corpus, warm  # noqa: E402

from fionagw.paths import SitePaths  # noqa: E402

SETTLE_AFTER_DELETE_S = 65  # ext4 (no journal) avoids reusing inodes deleted < 60 s ago
_FS_IOC_GETFLAGS, _FS_IOC_SETFLAGS, _FS_TOPDIR_FL = 0x80086601, 0x40086602, 0x00020000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def count_files(folder: Path) -> int:
    n = 0
    for _dirpath, _dirs, files in os.walk(folder):
        n += sum(1 for f in files if not f.startswith(".") and not f.endswith(".json"))
    return n


class FileCounter:
    """Counts the files under a folder (no dot files, no .json) while it fills, listing again
    only folders whose mtime moved in the last second (an older mtime cannot hide an entry
    added in the same clock tick)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._dirs: dict[str, tuple[int, int, list[str]]] = {}  # path -> (mtime, files, subdirs)

    def count(self) -> int:
        total, stack = 0, [str(self.folder)]
        recent = time.time_ns() - 1_000_000_000
        while stack:
            path = stack.pop()
            try:
                mtime = os.stat(path).st_mtime_ns
            except FileNotFoundError:
                continue
            cached = self._dirs.get(path)
            if cached is None or cached[0] != mtime or mtime > recent:
                files, subdirs = 0, []
                with os.scandir(path) as entries:
                    for entry in entries:
                        if entry.is_dir(follow_symlinks=False):
                            subdirs.append(entry.path)
                        elif not entry.name.startswith(".") and not entry.name.endswith(".json"):
                            files += 1
                cached = self._dirs[path] = (mtime, files, subdirs)
            total += cached[1]
            stack.extend(cached[2])
        return total


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
    """User + system CPU time of a live process so far, its ended children's included."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return sum(map(int, fields[11:15])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def steal_percent(before: list[int], after: list[int]) -> float:
    """Share of CPU time the hypervisor gave to others between two /proc/stat samples."""
    delta = [b - a for a, b in zip(before, after, strict=True)]
    return 100 * delta[7] / max(1, sum(delta))


def cpu_times() -> list[int]:
    return [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]


def send(port: int, dirs: list[Path], senders: int) -> list[subprocess.Popen]:
    groups = [dirs[i::senders] for i in range(senders)]
    return [
        subprocess.Popen(
            [
                "storescu",
                "-aet",
                "BENCH",
                "-aec",
                "FIONA",
                "+sd",
                "+r",
                "127.0.0.1",
                str(port),
                *map(str, g),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for g in groups
        if g
    ]


def wait_count(
    counter: FileCounter, expected: int, senders: list[subprocess.Popen], timeout: float
) -> float:
    start = time.perf_counter()
    while True:
        n = counter.count()
        if n >= expected:
            return time.perf_counter()
        for p in senders:
            if p.poll() not in (None, 0):
                raise SystemExit(
                    f"storescu failed: {p.stderr.read().decode()[-500:] if p.stderr else ''}"
                )
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


def wait_fifo_reader(fifo: Path, timeout: float = 30) -> None:
    """Until processSingleFile reads its pipe (lines written before that wait for the
    reconcile, a minute later, and would be measured as slowness)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"processSingleFile does not read {fifo}")


def mark_top_directory(folder: Path) -> bool:
    """ext4's FS_TOPDIR_FL (chattr +T): folders made inside are spread to fresh block groups."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return False
    try:
        flags = array.array("i", [0])
        fcntl.ioctl(fd, _FS_IOC_GETFLAGS, flags, True)
        if not flags[0] & _FS_TOPDIR_FL:
            flags[0] |= _FS_TOPDIR_FL
            fcntl.ioctl(fd, _FS_IOC_SETFLAGS, flags, True)
        return True
    except OSError:  # not ext4, or not allowed: the runs still work, less isolated
        return False
    finally:
        os.close(fd)


def settle_after_delete(base: Path) -> None:
    stamp = base / ".last-delete"
    try:
        age = time.time() - stamp.stat().st_mtime
    except FileNotFoundError:
        return
    if age < SETTLE_AFTER_DELETE_S:
        wait = SETTLE_AFTER_DELETE_S - age
        print(f"waiting {wait:.0f} s: the last run deleted its data {age:.0f} s ago")
        time.sleep(wait)


def remove(folder: Path, base: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    os.sync()
    (base / ".last-delete").touch()


def bench_storescp(dirs: list[Path], expected: int, work: Path, senders: int) -> dict:
    out = work / "storescp"
    out.mkdir()
    port = free_port()
    # Several senders: storescp forks per association, as our SCP serves them in parallel.
    fork = ["--fork"] if senders > 1 else []
    proc = subprocess.Popen(
        [
            "storescp",
            "-aet",
            "FIONA",
            *fork,
            "--sort-on-study-uid",
            "scp",
            "-od",
            str(out),
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port)
        os.sync()
        cpu0, stat0 = cpu_seconds(proc.pid), cpu_times()
        t0 = time.perf_counter()
        procs = send(port, dirs, senders)
        t1 = wait_count(FileCounter(out), expected, procs, 600)
        for p in procs:
            p.wait()
        time.sleep(0.2 if fork else 0)  # forked children end and are counted (CPU)
        rss = peak_rss_mb(proc.pid)
        cpu = cpu_seconds(proc.pid) - cpu0
        steal = steal_percent(stat0, cpu_times())
    finally:
        proc.terminate()
        proc.wait()
    return {
        "seconds": t1 - t0,
        "images_per_s": expected / (t1 - t0),
        "peak_rss_mb": {"storescp": rss},
        "cpu_ms_per_image": {"storescp": 1000 * cpu / expected},
        "steal_percent": steal,
    }


ORTHANC = "/usr/sbin/Orthanc"


def orthanc_instances(url: str) -> int:
    with urllib.request.urlopen(url + "/statistics", timeout=5) as r:
        return int(json.load(r)["CountInstances"])


def bench_orthanc(dirs: list[Path], expected: int, work: Path, senders: int) -> dict:
    """Orthanc with SyncStorageArea true (its default): fdatasync of every stored file."""
    port, http = free_port(), free_port()
    config = work / "orthanc.json"
    config.write_text(
        json.dumps(
            {
                "Name": "fionagw-bench",
                "StorageDirectory": str(work / "storage"),
                "IndexDirectory": str(work / "index"),
                "DicomAet": "FIONA",
                "DicomPort": port,
                "DicomCheckCalledAet": False,
                "HttpPort": http,
                "RemoteAccessAllowed": False,
                "AuthenticationEnabled": False,
                "DicomAlwaysAllowStore": True,
                "SyncStorageArea": True,
                "Plugins": [],
                "SaveJobs": False,
            }
        )
    )
    url = f"http://127.0.0.1:{http}"
    with open(work / "orthanc.log", "wb") as log:
        proc = subprocess.Popen(
            [ORTHANC, "--no-jobs", str(config)], cwd=work, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        wait_port(port)
        deadline = time.monotonic() + 30
        while True:
            try:
                orthanc_instances(url)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("Orthanc does not answer its REST API") from None
                time.sleep(0.05)
        os.sync()
        cpu0, stat0 = cpu_seconds(proc.pid), cpu_times()
        t0 = time.perf_counter()
        procs = send(port, dirs, senders)
        while (n := orthanc_instances(url)) < expected:
            for p in procs:
                if p.poll() not in (None, 0):
                    raise SystemExit("storescu failed against Orthanc")
            if time.perf_counter() - t0 > 900:
                raise SystemExit(f"timeout: Orthanc has {n} of {expected} instances")
            time.sleep(0.05)
        t1 = time.perf_counter()
        for p in procs:
            p.wait()
        rss = peak_rss_mb(proc.pid)
        cpu = cpu_seconds(proc.pid) - cpu0
        steal = steal_percent(stat0, cpu_times())
    finally:
        proc.terminate()
        proc.wait()
    return {
        "seconds": t1 - t0,
        "images_per_s": expected / (t1 - t0),
        "peak_rss_mb": {"orthanc": rss},
        "cpu_ms_per_image": {"orthanc": 1000 * cpu / expected},
        "steal_percent": steal,
    }


def stopped_flushes(log: Path) -> dict:
    """The flush counts of the receiver's last "SCP stopped" line."""
    found: dict = {}
    try:
        for line in log.read_text(errors="replace").splitlines():
            if '"SCP stopped"' in line:
                entry = json.loads(line)
                found = {
                    k: entry.get(k)
                    for k in ("stored", "file_flushes", "folder_flushes", "flushes_per_image")
                }
    except (OSError, ValueError):
        pass
    return found


def bench_fionagw(
    dirs: list[Path], expected: int, work: Path, senders: int, durability: str = "flush"
) -> dict:
    port = free_port()
    cfg = work / "config.json"
    datadir = work / "data"
    cfg.write_text(
        json.dumps(
            {
                "DATADIR": str(datadir),
                "DICOMIP": "127.0.0.1",
                "DICOMPORT": port,
                "DICOMAETITLE": "FIONA",
                "CLASSIFY_RULES": str(ROOT / "config" / "classifyRules.json"),
                "logging": {"level": "INFO"},
                "receiver": {"durability": durability},
            }
        )
    )
    py = sys.executable
    commands = {
        name: [py, str(ROOT / "bin" / name), "--config", str(cfg), "foreground"]
        for name in ("processSingleFile", "storectl")
    }
    procs = {
        name: subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for name, command in commands.items()
    }
    paths = SitePaths(datadir)
    try:
        wait_port(port)
        wait_fifo_reader(paths.fifo)
        os.sync()
        startup = {name: cpu_seconds(p.pid) for name, p in procs.items()}
        stat0 = cpu_times()
        t0 = time.perf_counter()
        senders_p = send(port, dirs, senders)
        # time to last image archived, then to last image classified in raw/
        t_arch = wait_count(FileCounter(paths.archive), expected, senders_p, 900)
        t1 = wait_count(FileCounter(paths.raw), expected, senders_p, 900)
        for p in senders_p:
            p.wait()
        rss = {name: peak_rss_mb(p.pid) for name, p in procs.items()}
        cpu = {
            name: 1000 * (cpu_seconds(p.pid) - startup[name]) / expected
            for name, p in procs.items()
        }
        steal = steal_percent(stat0, cpu_times())
    finally:
        for p in procs.values():
            p.terminate()
        for p in procs.values():
            p.wait()
    return {
        "flushes": stopped_flushes(paths.logfile("storescpd")),
        "seconds": t1 - t0,
        "images_per_s": expected / (t1 - t0),
        "archived_images_per_s": expected / (t_arch - t0),
        "peak_rss_mb": rss,
        "cpu_ms_per_image": cpu,
        "startup_cpu_s": startup,
        "steal_percent": steal,
    }


def run_round(
    dirs: list[Path], expected: int, work: Path, args: argparse.Namespace, senders: int, turn: int
) -> dict:
    order = ["fionagw", "storescp"] + ([] if args.no_orthanc else ["orthanc"])
    order = order[turn % len(order) :] + order[: turn % len(order)]
    sides = {}
    for side in order:
        folder = work / side
        folder.mkdir()
        if side == "storescp":
            sides[side] = bench_storescp(dirs, expected, folder, senders)
        elif side == "orthanc":
            sides[side] = bench_orthanc(dirs, expected, folder, senders)
        else:
            sides[side] = bench_fionagw(dirs, expected, folder, senders, args.durability)
    ref, ours = sides["storescp"], sides["fionagw"]
    ratio = ours["images_per_s"] / ref["images_per_s"]
    print(
        f"(a) dcmtk storescp{' --fork' if senders > 1 else '':7s}   {ref['images_per_s']:8.1f} images/s"
        f"  ({ref['seconds']:.2f} s)  peak RSS {ref['peak_rss_mb']['storescp']:.0f} MB"
        f"  CPU {ref['cpu_ms_per_image']['storescp']:.2f} ms/image  steal {ref['steal_percent']:.1f}%"
    )
    orthanc_ratio = None
    if "orthanc" in sides:
        o = sides["orthanc"]
        orthanc_ratio = ours["images_per_s"] / o["images_per_s"]
        print(
            f"(b) Orthanc SyncStorageArea  {o['images_per_s']:8.1f} images/s  ({o['seconds']:.2f} s)"
            f"  peak RSS {o['peak_rss_mb']['orthanc']:.0f} MB"
            f"  CPU {o['cpu_ms_per_image']['orthanc']:.2f} ms/image  steal {o['steal_percent']:.1f}%"
        )
    rss = ", ".join(f"{k} {v:.0f} MB" for k, v in ours["peak_rss_mb"].items())
    label = f"(c) fionagw ({args.durability})"
    print(
        f"{label:27s}  {ours['images_per_s']:8.1f} images/s  ({ours['seconds']:.2f} s)"
        f"  archived at {ours['archived_images_per_s']:.1f}/s  peak RSS {rss}"
        f"  steal {ours['steal_percent']:.1f}%"
    )
    cpu = ", ".join(f"{k} {v:.2f}" for k, v in ours["cpu_ms_per_image"].items())
    startup = ", ".join(f"{k} {v:.2f} s" for k, v in ours["startup_cpu_s"].items())
    fl = ours["flushes"]
    print(f"    CPU ms/image: {cpu}  (start-up CPU: {startup})")
    print(
        f"    flushes: {fl.get('file_flushes')} file + {fl.get('folder_flushes')} folder for"
        f" {fl.get('stored')} images = {fl.get('flushes_per_image')} per image"
        + (
            " (the file flush is the one on the critical path)"
            if args.durability == "flush"
            else ""
        )
    )
    vs_orthanc = f", (c)/(b) {orthanc_ratio:.2f}" if orthanc_ratio else ""
    print(f"ratio (c)/(a) {ratio:.2f}{vs_orthanc}  (first: {order[0]})")
    return {
        **sides,
        "ratio": ratio,
        "ratio_orthanc": orthanc_ratio,
        "first": order[0],
    }


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--images", type=int, default=4000)
    ap.add_argument("--studies", type=int, default=4)
    ap.add_argument(
        "--senders",
        default="1",
        help="parallel storescu processes (studies split among them); a list runs each: 1,4,8",
    )
    ap.add_argument(
        "--rounds", type=int, default=1, help="both sides this many times, alternating the order"
    )
    ap.add_argument(
        "--corpus", type=Path, default=Path(tempfile.gettempdir()) / "fionagw-bench-corpus"
    )
    ap.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "fionagw-bench-work",
        help="where the received data goes (a folder on the filesystem to measure)",
    )
    ap.add_argument(
        "--durability",
        choices=("flush", "os"),
        default="flush",
        help="our receiver.durability (os: no flush; to measure what durability costs)",
    )
    ap.add_argument("--no-orthanc", action="store_true", help="leave the Orthanc side out")
    ap.add_argument("--keep", action="store_true", help="keep the received data")
    args = ap.parse_args()
    if not shutil.which("storescu") or not shutil.which("storescp"):
        raise SystemExit("dcmtk is needed: apt-get install dcmtk")
    if not args.no_orthanc and not os.path.exists(ORTHANC):
        raise SystemExit("Orthanc is needed (apt-get install orthanc), or --no-orthanc")
    try:
        sender_counts = [int(n) for n in args.senders.split(",")]
    except ValueError:
        raise SystemExit(f"--senders: not a list of numbers: {args.senders!r}") from None
    os.environ["TCP_NODELAY"] = "1"
    t = time.perf_counter()
    dirs = make_corpus(args.corpus, args.images, args.studies)
    expected = count_files(args.corpus)
    size = warm(args.corpus)
    print(
        f"corpus: {expected} files in {len(dirs)} studies, {size / 1e6:.0f} MB read"
        f" ({time.perf_counter() - t:.1f} s to prepare)"
    )
    base = args.workdir
    base.mkdir(parents=True, exist_ok=True)
    if not mark_top_directory(base):
        print(f"note: {base} could not get ext4's top-directory flag; runs share block groups")
    settle_after_delete(base)
    work = Path(tempfile.mkdtemp(prefix="run-", dir=base))
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    summary = {}
    turn = 0
    try:
        for senders in sender_counts:
            rounds = []
            for i in range(args.rounds):
                print(f"-- {senders} sender(s), round {i + 1} of {args.rounds}")
                folder = Path(tempfile.mkdtemp(prefix=f"s{senders}-r{i + 1}-", dir=work))
                rounds.append(run_round(dirs, expected, folder, args, senders, turn))
                turn += 1
            ratios = [r["ratio"] for r in rounds]
            middle = sorted(rounds, key=lambda r: r["ratio"])[(len(rounds) - 1) // 2]
            if len(rounds) > 1:
                print(f"ratios (c)/(a): {', '.join(f'{r:.2f}' for r in ratios)}")
            summary[str(senders)] = {"median": middle, "rounds": rounds}
        print("== summary (images/s; median round)")
        for senders, entry in summary.items():
            m = entry["median"]
            line = (
                f"{senders:>2} sender(s): storescp {m['storescp']['images_per_s']:.0f}"
                f"  ours {m['fionagw']['images_per_s']:.0f} ({m['ratio']:.2f}x storescp"
            )
            if m.get("orthanc"):
                line += f", {m['ratio_orthanc']:.2f}x Orthanc {m['orthanc']['images_per_s']:.0f})"
            else:
                line += ")"
            fl = m["fionagw"]["flushes"]
            line += (
                f"  flushes/image {fl.get('flushes_per_image')}"
                f"  storectl peak RSS {m['fionagw']['peak_rss_mb']['storectl']:.0f} MB"
            )
            print(line)
        out = results / f"ingest-{time.strftime('%Y%m%dT%H%M%S')}.json"
        out.write_text(
            json.dumps(
                {
                    "images": expected,
                    "durability": args.durability,
                    "senders": summary,
                },
                indent=2,
            )
        )
        print(f"results: {out}")
    finally:
        if not args.keep:
            remove(work, base)
    return 0


if __name__ == "__main__":
    sys.exit(main())
