"""C-STORE send benchmark (not a test): one study of N images sent to Orthanc by (a) dcmtk
storescu and (b) our dicom destination (DicomDestination.send_study, as anonymizeAndSend
sends), in the same run against the same Orthanc. Prints images/s of both, the ratio (goal
>= 0.9), and the peak RSS of each sender.

    bench/send_cstore [--images 2000] [--rounds 3] [--associations 1] [--max-pdu BYTES]
                      [--workdir DIR] [--keep]

What keeps the two sides comparable:

* the same files (the benchmarks' corpus, one study; read once beforehand so the page cache
  is warm), the same Orthanc, emptied (REST) before each side, each side timed from its
  start to its last answered C-STORE;
* both senders run as their own process (ours is this script with --child), so the RSS is the
  sender's alone (VmHWM); storescu runs with TCP_NODELAY=1 and its default 16 KiB PDUs
  (``-xf``-free, as FIONA ran it), ours with its configured max_pdu;
* --rounds N alternates which side goes first and reports the median ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))
sys.path.insert(0, str(ROOT / "tests"))

from corpus import make_corpus, warm  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def peak_rss_mb(status_text: str) -> float:
    for line in status_text.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def files_of(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


def run_storescu(port: int, aet: str, folder: Path) -> dict:
    env = {**os.environ, "TCP_NODELAY": "1"}
    start = time.monotonic()
    proc = subprocess.Popen(
        [
            "storescu",
            "-aet",
            "FIONA",
            "-aec",
            aet,
            "+sd",
            "+r",
            "127.0.0.1",
            str(port),
            str(folder),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    # VmHWM of a process that has exited is gone: read it just before the end via wait4
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(
            f"storescu failed ({proc.returncode}): {proc.stderr.read().decode()[-500:]}"
        )
    cpu_ms = (usage.ru_utime + usage.ru_stime) * 1000 / len(files_of(folder))
    return {"seconds": seconds, "rss_mb": usage.ru_maxrss / 1024, "cpu_ms_per_image": cpu_ms}


def run_ours(port: int, aet: str, folder: Path, associations: int, max_pdu: int) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        str(port),
        aet,
        str(folder),
        str(associations),
        str(max_pdu),
    ]
    out = subprocess.run(
        cmd, capture_output=True, text=True, env={**os.environ, "TCP_NODELAY": "1"}
    )
    if out.returncode != 0:
        raise SystemExit(f"our sender failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def child(port: int, aet: str, folder: Path, associations: int, max_pdu: int) -> int:
    """Our side: the dicom destination exactly as anonymizeAndSend builds it."""
    from fionagw.send.base import SendContext
    from fionagw.send.dicom import DicomDestination

    files = files_of(folder)
    dest = DicomDestination(
        "bench",
        "127.0.0.1",
        port,
        aet,
        "FIONA",
        verify=False,
        associations=associations,
        max_pdu=max_pdu,
    )
    start = time.monotonic()
    result = dest.send_study(files, SendContext("BENCH", "B001", "", "1.2.3"))
    seconds = time.monotonic() - start
    if not result.ok or result.sent != len(files):
        print(result.summary(), file=sys.stderr)
        return 1
    import resource

    rss = peak_rss_mb(Path("/proc/self/status").read_text())
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_ms = (usage.ru_utime + usage.ru_stime) * 1000 / len(files)  # start-up included
    print(json.dumps({"seconds": seconds, "rss_mb": rss, "cpu_ms_per_image": cpu_ms}))
    return 0


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        port, aet, folder, assocs, pdu = sys.argv[2:7]
        return child(int(port), aet, Path(folder), int(assocs), int(pdu))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--images", type=int, default=2000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--associations", type=int, default=1)
    p.add_argument("--max-pdu", type=int, default=1024 * 1024)
    p.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "fionagw-bench-send"
    )
    p.add_argument("--keep", action="store_true", help="keep Orthanc's storage afterwards")
    args = p.parse_args()
    if shutil.which("storescu") is None:
        raise SystemExit("bench/send_cstore needs dcmtk's storescu (apt-get install dcmtk)")

    from support.orthanc_peer import OrthancPeer

    corpus_dir = Path(tempfile.gettempdir()) / "fionagw-bench-corpus-send"
    [study] = make_corpus(corpus_dir, args.images, 1)
    n = len(files_of(study))
    mb = warm(study) / 1e6
    print(f"corpus: {n} images, {mb:.0f} MB, in {study}")
    orthanc = OrthancPeer(args.workdir / "orthanc", aet="ORTHANC").start()
    rounds = []
    try:
        for r in range(args.rounds):
            sides = ["storescu", "fionagw"] if r % 2 == 0 else ["fionagw", "storescu"]
            figures = {}
            for side in sides:
                orthanc.clear()
                if side == "storescu":
                    figures[side] = run_storescu(orthanc.dicom_port, orthanc.aet, study)
                else:
                    figures[side] = run_ours(
                        orthanc.dicom_port, orthanc.aet, study, args.associations, args.max_pdu
                    )
                stored = len(orthanc.instances())
                if stored != n:
                    raise SystemExit(f"{side}: Orthanc holds {stored} of {n} instances")
                figures[side]["images_per_s"] = n / figures[side]["seconds"]
            ratio = figures["fionagw"]["images_per_s"] / figures["storescu"]["images_per_s"]
            rounds.append({"figures": figures, "ratio": ratio})
            print(
                f"round {r + 1}: storescu {figures['storescu']['images_per_s']:.0f} images/s"
                f" (RSS {figures['storescu']['rss_mb']:.0f} MB,"
                f" CPU {figures['storescu']['cpu_ms_per_image']:.2f} ms/image), fionagw"
                f" {figures['fionagw']['images_per_s']:.0f} images/s"
                f" (RSS {figures['fionagw']['rss_mb']:.0f} MB,"
                f" CPU {figures['fionagw']['cpu_ms_per_image']:.2f} ms/image), ratio {ratio:.2f}"
            )
    finally:
        orthanc.stop()
        if not args.keep:
            shutil.rmtree(args.workdir / "orthanc", ignore_errors=True)
    median = statistics.median(r["ratio"] for r in rounds)
    print(f"median ratio fionagw/storescu: {median:.2f} (goal >= 0.9)")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"send_cstore-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(
        json.dumps(
            {
                "images": n,
                "megabytes": mb,
                "associations": args.associations,
                "max_pdu": args.max_pdu,
                "rounds": rounds,
                "median_ratio": median,
            },
            indent=2,
        )
    )
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
