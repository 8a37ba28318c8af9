"""A simulated power loss under the receiver while four dcmtk storescu senders store.

The receiver runs in a process of this test suite whose ``os`` calls are recorded (file
creations, mkdir, renames, unlinks, fsyncs of files and folders; nothing is changed), and is
killed (SIGKILL) at a random moment. From the record the test builds what a disk could hold
after a power loss at that moment (nothing is promised but what was fsynced; a rename is
atomic, as on a journaling filesystem):

* the names: a creation, mkdir, rename or removal is kept if its folder was fsynced after
  it, else kept or lost at random (each on its own);
* the contents: a file keeps its bytes only if it was fsynced; any other file is left
  truncated at a random length, its extended attributes (the seal) kept: the worst case.

The real receiver is then started on that disk image (its recovery runs at start) and every
instance a sender saw answered Success must be in the archive with the bytes it sent, and no
final name may hold anything else.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fionagw.config import load_config
from support.crash import acknowledged as acknowledged_files
from support.crash import body, corpus
from support.site import BIN, ROOT, write_config

ROUNDS = 4

# The receiver (serve_scp) with its os calls recorded as JSON lines in argv[3].
_RECORDED_SCP = r"""
import json, os, stat, sys, threading
sys.path.insert(0, sys.argv[1])
log = os.open(sys.argv[3], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
root = sys.argv[4]
real = {n: getattr(os, n) for n in ("open", "mkdir", "rename", "unlink", "fsync")}

def record(**event):
    os.write(log, (json.dumps(event) + "\n").encode())

def mine(path):
    return os.path.abspath(os.fsdecode(path)).startswith(root)

def op_open(path, flags, mode=0o777, *a, **k):
    new = bool(flags & os.O_CREAT) and mine(path) and not os.path.lexists(path)
    fd = real["open"](path, flags, mode, *a, **k)
    if new:
        record(op="create", path=os.path.abspath(path), ino=os.fstat(fd).st_ino)
    return fd

def op_mkdir(path, *a, **k):
    real["mkdir"](path, *a, **k)
    if mine(path):
        record(op="mkdir", path=os.path.abspath(path))

def op_rename(src, dst, *a, **k):
    real["rename"](src, dst, *a, **k)
    if mine(dst):
        record(op="rename", src=os.path.abspath(src), dst=os.path.abspath(dst),
               ino=os.lstat(dst).st_ino)

def op_unlink(path, *a, **k):
    real["unlink"](path, *a, **k)
    if mine(path):
        record(op="unlink", path=os.path.abspath(path))

def op_fsync(fd):
    real["fsync"](fd)
    st = os.fstat(fd)
    if stat.S_ISDIR(st.st_mode):
        record(op="fsync_dir", path=os.readlink(f"/proc/self/fd/{fd}"))
    else:
        record(op="fsync_file", ino=st.st_ino)

os.open, os.mkdir, os.rename, os.unlink, os.fsync = op_open, op_mkdir, op_rename, op_unlink, op_fsync
from fionagw.config import load_config
from fionagw.receive.scp import serve_scp
serve_scp(load_config(sys.argv[2]), threading.Event(), lambda: print("listening", flush=True))
"""


def _parent(path: str) -> str:
    return os.path.dirname(path)


def _after_power_loss(
    events: list[dict], rng: random.Random, loss: float
) -> tuple[dict[str, int], set[int]]:
    """(durable names: path -> inode, or -1 for a folder; inodes whose data was fsynced).

    A name operation is on the disk for certain only if its folder (a rename's destination
    folder: renames are atomic) was fsynced after it; any other one is lost with probability
    ``loss`` (1.0: the worst disk, which keeps nothing it was not made to keep).
    """
    ops = [e for e in events if e["op"] in ("create", "mkdir", "rename", "unlink")]
    forced: set[int] = set()
    seen: list[tuple[int, str]] = []  # (op index, its folder), in order
    for e in events:
        if e["op"] in ("create", "mkdir", "rename", "unlink"):
            seen.append((len(seen), _parent(e.get("dst") or e["path"])))
        elif e["op"] == "fsync_dir":
            forced.update(i for i, folder in seen if folder == e["path"])
    names: dict[str, int] = {}
    for i, e in enumerate(ops):
        if i not in forced and rng.random() < loss:
            continue  # this one did not reach the disk
        if e["op"] == "create":
            names[e["path"]] = e["ino"]
        elif e["op"] == "mkdir":
            names[e["path"]] = -1
        elif e["op"] == "rename":
            names.pop(e["src"], None)
            names[e["dst"]] = e["ino"]
        else:
            names.pop(e["path"], None)
    synced = {e["ino"] for e in events if e["op"] == "fsync_file"}
    return names, synced


def _pending_rename(record: Path) -> bool:
    """Whether the record shows a rename into the archive whose folder is not fsynced yet."""
    pending: set[str] = set()
    for line in record.read_text().splitlines():
        try:
            e = json.loads(line)
        except ValueError:
            continue  # a line being written
        if e["op"] == "rename" and "/archive/" in e["dst"]:
            pending.add(_parent(e["dst"]))
        elif e["op"] == "fsync_dir":
            pending.discard(e["path"])
    return bool(pending)


def _kill_with_a_rename_pending(proc: subprocess.Popen, record: Path, not_before: float) -> None:
    """SIGKILL (the power goes) at a random moment after ``not_before`` seconds, at which an
    answered image's rename is not yet flushed: the case recovery exists for, made certain
    instead of left to the timing of a loaded machine."""
    time.sleep(not_before)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not _pending_rename(record):
        time.sleep(0.001)
    proc.send_signal(signal.SIGKILL)


def _build_disk(
    datadir: Path, image: Path, names: dict[str, int], synced: set[int], rng: random.Random
) -> None:
    """Copy the durable state of ``datadir`` (temp and archive) to ``image``."""
    now = {}  # inode -> where its bytes are now
    for p in datadir.rglob("*"):
        if p.is_file():
            now[p.lstat().st_ino] = p
    for sub in ("temp", "archive"):
        (image / "site" / sub).mkdir(parents=True, exist_ok=True)
    for path, ino in sorted(names.items()):
        rel = Path(path).relative_to(datadir)
        target = image / rel
        if ino == -1:
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        src = now.get(ino)
        data = src.read_bytes() if src is not None else b""
        if ino not in synced:
            data = data[: rng.randint(0, len(data))]  # not flushed: any part may be lost
        target.write_bytes(data)
        if src is not None:
            for attr in os.listxattr(src):
                os.setxattr(target, attr, os.getxattr(src, attr))  # the seal, worst case kept


@pytest.mark.slow
def test_power_loss_loses_nothing_answered_success(tmp_path: Path) -> None:
    dirs, expected = corpus(tmp_path / "corpus")
    from pydicom import dcmread

    name_of = {}
    for d in dirs:
        for p in d.iterdir():
            ds = dcmread(p, stop_before_pixels=True)
            name_of[str(p)] = f"scp_{ds.StudyInstanceUID}/MR.{ds.SOPInstanceUID}"
    exe = shutil.which("storescu")
    assert exe
    rng = random.Random(1414)
    recovered_any = False
    for n in range(ROUNDS):
        (tmp_path / f"round{n}").mkdir()
        config = write_config(tmp_path / f"round{n}")
        cfg = load_config(config)
        cfg.paths.create()
        os.sync()  # what exists now is on the disk
        record = tmp_path / f"round{n}.events"
        proc = subprocess.Popen(
            [sys.executable, "-c", _RECORDED_SCP, str(ROOT / "lib"), str(config), str(record)]
            + [str(cfg.paths.site_dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert proc.stdout is not None and "listening" in proc.stdout.readline()
        senders = [
            subprocess.Popen(
                [exe, "-v", "-aet", "POWER", "-aec", "FIONA", "+sd", "+r", "127.0.0.1"]
                + [str(cfg.dicom_port), str(d)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for d in dirs
        ]
        _kill_with_a_rename_pending(proc, record, rng.uniform(0.3, 1.2))
        proc.wait(10)
        acknowledged = set()
        for s in senders:
            _out, err = s.communicate(timeout=30)
            acknowledged |= {name_of[f] for f in acknowledged_files(err)}
        events = [json.loads(line) for line in record.read_text().splitlines() if line]
        names, synced = _after_power_loss(events, rng, 1.0 if n % 2 else 0.5)
        (tmp_path / f"image{n}").mkdir()
        image_config = write_config(tmp_path / f"image{n}")
        image = load_config(image_config)
        shutil.rmtree(image.paths.datadir, ignore_errors=True)
        _build_disk(cfg.paths.datadir, image.paths.datadir, names, synced, rng)
        image.paths.create()
        sealed_in_temp = [p for p in image.paths.temp.iterdir() if SEAL_NAME in os.listxattr(p)]
        recovered_any |= bool(sealed_in_temp)
        restarted = subprocess.Popen(
            [str(BIN / "storectl"), "--config", str(image_config), "foreground"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            assert restarted.stdout is not None and "listening" in restarted.stdout.readline()
        finally:
            restarted.send_signal(signal.SIGTERM)
            restarted.wait(20)
        archive = {
            str(p.relative_to(image.paths.archive)): p
            for p in image.paths.archive.rglob("*")
            if p.is_file()
        }
        missing = acknowledged - archive.keys()
        assert not missing, f"round {n + 1}: {len(missing)} answered Success, lost"
        for rel, path in archive.items():
            assert rel in expected, f"unexpected file under a final name: {rel}"
            assert body(path) == expected[rel], f"{rel}: a partial file under a final name"
    assert recovered_any, "no power loss fell between a Success and its move"


SEAL_NAME = "user.fionagw.seal"
