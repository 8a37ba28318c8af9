"""bin/heartbeat: a hung (SIGSTOPped) receiver is restarted; a cron job over its limit is killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fionagw.config import load_config
from fionagw.ops import daemon
from fionagw.ops.jobstate import last_run
from fionagw.ops.locks import info_path, lock_info
from support.site import ROOT, echoscu, read_log, run_bin, write_config


def _age(path: Path, seconds: float) -> None:
    t = time.time() - seconds
    os.utime(path, (t, t))


@pytest.fixture
def config(tmp_path: Path):  # type: ignore[no-untyped-def]
    path = write_config(tmp_path, heartbeat={"echo_timeout_s": 2, "grace_seconds": 1})
    yield path
    cfg = load_config(path)
    pid = daemon.read_pid(cfg.paths.pidfile("storescpd"), "storectl")
    if pid:
        os.kill(pid, signal.SIGCONT)
    run_bin("storectl", "stop", config=path)


@pytest.mark.slow
def test_heartbeat_restarts_a_stopped_receiver(config: Path) -> None:
    cfg = load_config(config)
    r = run_bin("storectl", "start", config=config)
    assert r.returncode == 0, r.stdout + r.stderr
    old = daemon.read_pid(cfg.paths.pidfile("storescpd"), "storectl")
    assert old and echoscu(cfg.dicom_port).returncode == 0

    # Healthy and quiet: the echo answers, nothing is done.
    for p in (cfg.paths.logfile("storescpd"), cfg.paths.archive):
        _age(p, 60)
    hb = run_bin("heartbeat", "-v", config=config)
    assert hb.returncode == 0, hb.stdout + hb.stderr
    assert "receiver alive" in hb.stdout
    assert daemon.read_pid(cfg.paths.pidfile("storescpd"), "storectl") == old

    os.kill(old, signal.SIGSTOP)
    # Recent receiver activity: heartbeat must not echo (it could clash with a transfer).
    os.utime(cfg.paths.logfile("storescpd"))
    hb = run_bin("heartbeat", "-v", config=config)
    assert "receiver busy" in hb.stdout
    assert daemon.read_pid(cfg.paths.pidfile("storescpd"), "storectl") == old

    for p in (cfg.paths.logfile("storescpd"), cfg.paths.archive):
        _age(p, 60)
    hb = run_bin("heartbeat", config=config)
    assert hb.returncode == 0, hb.stdout + hb.stderr
    assert "receiver restarted" in hb.stdout
    new = daemon.read_pid(cfg.paths.pidfile("storescpd"), "storectl")
    assert new and new != old
    assert not Path(f"/proc/{old}").exists() or daemon.wait_gone(old, 5)
    assert echoscu(cfg.dicom_port).returncode == 0
    entries = read_log(cfg.paths.logfile("heartbeat"))
    assert any(
        e["message"].startswith("receiver did not answer") and e["pid"] == old for e in entries
    )
    assert any(e["message"] == "receiver restarted" and e["pid"] == new for e in entries)
    run = last_run(cfg, "heartbeat")
    assert run and run.ok and "restarted" in run.summary


HOLDER = """
import sys, time
sys.path.insert(0, {lib!r})
from fionagw.config import load_config
from fionagw.ops.locks import cron_lock
cfg = load_config({config!r})
with cron_lock(cfg, "detectStudyArrival"):
    print("locked", flush=True)
    time.sleep(600)
"""


@pytest.mark.slow
def test_heartbeat_kills_a_job_over_its_limit(config: Path) -> None:
    cfg = load_config(config)
    cfg.paths.create()
    with open(cfg.paths.enabled_file, "w") as f:  # receiver off: only the job check runs
        f.write("0")
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER.format(lib=str(ROOT / "lib"), config=str(config))],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        info = lock_info(cfg, "detectStudyArrival")
        assert info is not None and info.pid == proc.pid

        # Under its limit: left alone.
        hb = run_bin("heartbeat", "-v", config=config)
        assert proc.poll() is None and "killed" not in hb.stdout

        # Aged past the default limit of 3600 s.
        sidecar = info_path(cfg, "detectStudyArrival")
        data = json.loads(sidecar.read_text())
        data["started"] -= 3700
        sidecar.write_text(json.dumps(data))
        hb = run_bin("heartbeat", config=config)
        assert hb.returncode == 0, hb.stdout + hb.stderr
        assert "killed detectStudyArrival" in hb.stdout
        assert proc.wait(10) != 0
        assert lock_info(cfg, "detectStudyArrival") is None
        assert not sidecar.exists()
        # The lock is free: the next run takes it.
        from fionagw.ops.locks import cron_lock

        with cron_lock(cfg, "detectStudyArrival", exit_if_busy=False) as lock:
            assert lock.acquired
        entries = read_log(cfg.paths.logfile("heartbeat"))
        killed = [e for e in entries if e["message"].startswith("cron job ran longer")]
        assert (
            killed and killed[0]["job"] == "detectStudyArrival" and killed[0]["lock_free"] is True
        )
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_heartbeat_per_job_limit(tmp_path: Path) -> None:
    path = write_config(tmp_path, heartbeat={"job_limits": {"sendFiles": 7200}})
    cfg = load_config(path)
    assert cfg.heartbeat.limit_for("sendFiles") == 7200
    assert cfg.heartbeat.limit_for("detectStudyArrival") == 3600
    bad = write_config(tmp_path, heartbeat={"job_limits": {"sendFiles": "long"}})
    r = run_bin("heartbeat", config=bad)
    assert r.returncode != 0 and "heartbeat.job_limits.sendFiles" in r.stderr
