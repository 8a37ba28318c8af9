"""The receiver killed (SIGKILL) at random moments while four dcmtk storescu senders store.

After each kill the receiver is started again (its start-up recovery finishes the commit of
what was sealed); then every instance a sender saw answered Success must be in the archive
with the bytes it sent, and no file under a final name may hold anything else.
"""

from __future__ import annotations

import random
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.filereader import _read_file_meta_info, read_preamble
from pydicom.uid import generate_uid

from fionagw.config import load_config
from support.site import BIN, pydicom_test_file, read_log

ROUNDS = 20
SENDERS = 4
IMAGES = 60  # per sender (one study each)


def _body(path: Path) -> bytes:
    """The data set after the file meta: what storescu sends and we keep as received."""
    with open(path, "rb") as f:
        read_preamble(f, False)
        _read_file_meta_info(f)
        return f.read()


def _corpus(root: Path) -> tuple[list[Path], dict[str, bytes]]:
    """SENDERS studies of IMAGES small MR images; {'scp_<Study>/MR.<SOP>': body}."""
    ds = dcmread(pydicom_test_file("MR_small.dcm"))
    del ds[0xFFFCFFFC]  # its trailing padding, which storescu does not send
    dirs, expected = [], {}
    for s in range(SENDERS):
        folder = root / f"study{s}"
        folder.mkdir(parents=True)
        ds.StudyInstanceUID = generate_uid()
        for i in range(IMAGES):
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
            path = folder / f"{i:03d}.dcm"
            ds.save_as(path, enforce_file_format=True)
            expected[f"scp_{ds.StudyInstanceUID}/MR.{ds.SOPInstanceUID}"] = _body(path)
        dirs.append(folder)
    return dirs, expected


def _start_receiver(config: Path, log: Path) -> subprocess.Popen:
    with open(log, "ab") as err:
        proc = subprocess.Popen(
            [str(BIN / "storectl"), "--config", str(config), "foreground"],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    assert proc.stdout is not None
    assert "listening" in proc.stdout.readline(), log.read_text()[-2000:]
    return proc


def _acknowledged(stderr: str) -> set[str]:
    """The files storescu -v saw answered Success (each response follows its file's line)."""
    done, current = set(), None
    for line in stderr.splitlines():
        if m := re.search(r"Sending file: (.*)$", line):
            current = m.group(1).strip()
        elif "Received Store Response (Success)" in line and current:
            done.add(current)
            current = None
    return done


@pytest.mark.slow
def test_sigkill_loses_nothing_answered_success(site_config: Path, tmp_path: Path) -> None:
    cfg = load_config(site_config)
    cfg.paths.create()
    dirs, expected = _corpus(tmp_path / "corpus")
    name_of = {
        str(p): f"scp_{dcmread(p, stop_before_pixels=True).StudyInstanceUID}/MR."
        f"{dcmread(p, stop_before_pixels=True).SOPInstanceUID}"
        for d in dirs
        for p in d.iterdir()
    }
    log = tmp_path / "storectl.stderr"
    exe = shutil.which("storescu")
    assert exe
    rng = random.Random(14)
    acknowledged: set[str] = set()
    proc = _start_receiver(site_config, log)
    t_end = time.monotonic() + 55
    try:
        for _round in range(ROUNDS):
            senders = [
                subprocess.Popen(
                    [exe, "-v", "-aet", "CRASH", "-aec", "FIONA", "+sd", "+r", "127.0.0.1"]
                    + [str(cfg.dicom_port), str(d)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                for d in dirs
            ]
            time.sleep(rng.uniform(0.05, 0.6))
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            for s in senders:
                _out, err = s.communicate(timeout=30)
                acknowledged |= {name_of[f] for f in _acknowledged(err)}
            proc = _start_receiver(site_config, log)  # the recovery runs at start
            archive = {
                str(p.relative_to(cfg.paths.archive)): p
                for p in cfg.paths.archive.rglob("*")
                if p.is_file()
            }
            missing = acknowledged - archive.keys()
            assert not missing, f"round {_round + 1}: {len(missing)} answered Success, not archived"
            for rel, path in archive.items():
                assert rel in expected, f"unexpected file under a final name: {rel}"
                assert _body(path) == expected[rel], f"{rel}: bytes differ from what was sent"
            assert time.monotonic() < t_end, "the crash rounds took too long"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
    assert acknowledged, "no store was ever answered Success: the kills came too early"
    recovered = sum(
        e.get("recovered", 0)
        for e in read_log(cfg.paths.logfile("storescpd"))
        if e.get("message") == "receiver recovery"
    )
    assert recovered, "no kill fell between a Success and its move: the recovery went untested"
    leftovers = [p for p in cfg.paths.temp.iterdir() if p.name.startswith(".scp-")]
    assert not leftovers  # the stop recovered or removed every temp file
