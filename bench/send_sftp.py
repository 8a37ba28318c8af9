"""SFTP delivery benchmark (not a test): one package of incompressible bytes (default 256 MB)
sent over loopback to OpenSSH's sshd (Debian's openssh-server, started here on a free port
with its own keys, as in the tests) by

* ``bin/sendFiles`` as cron runs it: the .md5sum check, upload to a temporary name, read-back
  of the remote copy (size and MD5), rename; its log gives the upload and read-back times;
* OpenSSH's own ``sftp`` client: ``put`` of the same archive (upload only, no verification),
  and ``put`` then ``get`` to /dev/null (the same bytes on the wire as our upload + read-back).

Each tool runs ``--runs`` times (default 3; the remote copy is removed between runs, the page
cache is warm) and the best run counts. Prints MB/s, peak RSS (the tool's process; for sftp
the largest of sftp and its ssh) and the ratios of our whole delivery to sftp's put and to its
put + get, and of our upload phase to its put; writes bench/results/send-sftp-<time>.json.

    bench/send_sftp [--mb 256] [--runs 3] [--work DIR]

On a machine shared with other work the figures move from run to run: compare one run's ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))
sys.path.insert(0, str(ROOT / "tests"))

from fionagw.send.package import Package, repair_md5sum  # noqa: E402
from support.sshd import Sshd  # noqa: E402 - the same sshd set-up as the tests


def run_measured(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Run ``cmd``; (seconds, peak RSS MB via wait4, stdout). Fails loudly on a non-zero exit."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"{cmd[0]} failed ({proc.returncode}): {err.strip()[-500:]}")
    return seconds, usage.ru_maxrss / 1024, out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--mb", type=int, default=256, help="package size in MB (default 256)")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--work", type=Path, default=ROOT / "bench" / ".work" / "send_sftp")
    a = p.parse_args()
    shutil.rmtree(a.work, ignore_errors=True)
    a.work.mkdir(parents=True)
    sshd = Sshd(a.work / "sshd")
    sshd.start()
    try:
        config = a.work / "config.json"
        datadir = a.work / "data"
        config.write_text(
            json.dumps(
                {
                    "DATADIR": str(datadir),
                    "PROCESSING_USER": "",
                    "DICOMIP": "127.0.0.1",
                    "DICOMPORT": 11112,
                    "DICOMAETITLE": "FIONA",
                    "CLASSIFY_RULES": str(ROOT / "config" / "classifyRules.json"),
                    "destinations": {"remote": sshd.destination()},
                }
            )
        )
        outbox = datadir / "packages" / "remote" / "outbox"
        sent = datadir / "packages" / "remote" / "sent"
        outbox.mkdir(parents=True)
        pkg = Package(outbox, "BENCH_P001_1.2.826.0.1.3680043.10.99")
        size = a.mb * 1_000_000
        with pkg.archive.open("wb") as fh:
            left = size
            while left:
                chunk = os.urandom(min(left, 1 << 22))
                fh.write(chunk)
                left -= len(chunk)
        repair_md5sum(pkg)
        pkg.manifest.write_text(json.dumps({"format": 1, "file_count": 0}))
        pkg.write_state({})
        log = datadir / "logs" / "sendFiles.log"

        ours: list[dict[str, float]] = []
        for _ in range(a.runs):
            for f in sshd.upload.iterdir():
                f.unlink()
            if (sent / pkg.manifest.name).exists():
                Package(sent, pkg.stem).move_to(outbox)
            seconds, rss, out = run_measured(
                [str(ROOT / "bin" / "sendFiles"), "--config", str(config)]
            )
            assert "1 sent" in out, out
            m = re.findall(
                rf"{re.escape(pkg.archive.name)}: sent, \d+ bytes verified \(upload ([\d.]+) s, "
                r"read-back ([\d.]+) s\)",
                log.read_text(),
            )
            upload, readback = map(float, m[-1])
            ours.append(
                {"seconds": seconds, "upload_s": upload, "readback_s": readback, "rss_mb": rss}
            )

        if (sent / pkg.manifest.name).exists():
            pkg = Package(sent, pkg.stem).move_to(outbox)
        batch = a.work / "put.batch"
        batch.write_text(f"put {pkg.archive} {sshd.remote_dir}/{pkg.archive.name}\n")
        # put, and put then get (to /dev/null): the same bytes on the wire as upload + read-back
        both = a.work / "put-get.batch"
        both.write_text(batch.read_text() + f"get {sshd.remote_dir}/{pkg.archive.name} /dev/null\n")
        theirs: list[dict[str, float]] = []
        for _ in range(a.runs):
            run: dict[str, float] = {}
            for label, script in (("put", batch), ("put_get", both)):
                for f in sshd.upload.iterdir():
                    f.unlink()
                cmd = ["sftp", "-q", "-b", str(script), "-P", str(sshd.port)]
                cmd += ["-i", str(sshd.user_key), "-o", f"UserKnownHostsFile={sshd.known_hosts}"]
                cmd += ["-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"]
                seconds, rss, _ = run_measured([*cmd, f"{sshd.user}@127.0.0.1"])
                assert (sshd.upload / pkg.archive.name).stat().st_size == size
                run[f"{label}_s"] = seconds
                run["rss_mb"] = max(run.get("rss_mb", 0.0), rss)
            theirs.append(run)
    finally:
        sshd.close()

    best = min(ours, key=lambda r: r["seconds"])
    mb = size / 1e6
    s = {
        "mb_s": mb / best["seconds"],
        "upload_mb_s": mb / min(r["upload_s"] for r in ours),
        "readback_s": best["readback_s"],
        "peak_rss_mb": max(r["rss_mb"] for r in ours),
        "all": ours,
    }
    o = {
        "put_mb_s": mb / min(r["put_s"] for r in theirs),
        "put_get_mb_s": mb / min(r["put_get_s"] for r in theirs),
        "peak_rss_mb": max(r["rss_mb"] for r in theirs),
        "all": theirs,
    }
    result = {
        "package_mb": mb,
        "runs": a.runs,
        "sendFiles": s,
        "openssh_sftp": o,
        "ratio_delivery_to_put": s["mb_s"] / o["put_mb_s"],
        "ratio_delivery_to_put_get": s["mb_s"] / o["put_get_mb_s"],
        "ratio_upload_to_put": s["upload_mb_s"] / o["put_mb_s"],
    }
    print(f"package {mb:.0f} MB over loopback SFTP, best of {a.runs}")
    print(
        f"  sendFiles     {s['mb_s']:7.1f} MB/s whole delivery (upload {s['upload_mb_s']:.1f} MB/s,"
        f" read-back {s['readback_s']:.2f} s)  peak RSS {s['peak_rss_mb']:.0f} MB"
    )
    print(
        f"  OpenSSH sftp  {o['put_mb_s']:7.1f} MB/s put, {o['put_get_mb_s']:.1f} MB/s put + get"
        f"  peak RSS {o['peak_rss_mb']:.0f} MB"
    )
    print(
        "  ratios ours/sftp (goal >= 0.8):"
        f" delivery/put {result['ratio_delivery_to_put']:.2f},"
        f" delivery/(put + get) {result['ratio_delivery_to_put_get']:.2f},"
        f" upload/put {result['ratio_upload_to_put']:.2f}"
    )
    out = ROOT / "bench" / "results" / f"send-sftp-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"  written: {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
