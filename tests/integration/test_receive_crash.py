"""The receiver killed (SIGKILL) at random moments while four dcmtk storescu senders store.

After each kill the receiver is started again (its start-up recovery finishes the commit of
what was sealed); then every instance a sender saw answered Success must be in the archive
with the bytes it sent, and no file under a final name may hold anything else.
"""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from pydicom import dcmread

from fionagw.config import load_config
from support.crash import acknowledged, body, corpus
from support.site import BIN

ROUNDS = 20


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


@pytest.mark.slow
def test_sigkill_loses_nothing_answered_success(site_config: Path, tmp_path: Path) -> None:
    cfg = load_config(site_config)
    cfg.paths.create()
    dirs, expected = corpus(tmp_path / "corpus")
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
    answered: set[str] = set()
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
                answered |= {name_of[f] for f in acknowledged(err)}
            proc = _start_receiver(site_config, log)  # the recovery runs at start
            archive = {
                str(p.relative_to(cfg.paths.archive)): p
                for p in cfg.paths.archive.rglob("*")
                if p.is_file()
            }
            missing = answered - archive.keys()
            assert not missing, f"round {_round + 1}: {len(missing)} answered Success, not archived"
            for rel, path in archive.items():
                assert rel in expected, f"unexpected file under a final name: {rel}"
                assert body(path) == expected[rel], f"{rel}: bytes differ from what was sent"
            assert time.monotonic() < t_end, "the crash rounds took too long"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
    assert answered, "no store was ever answered Success: the kills came too early"
    leftovers = [p for p in cfg.paths.temp.iterdir() if p.name.startswith(".scp-")]
    assert not leftovers  # the stop recovered or removed every temp file
