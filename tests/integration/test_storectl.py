"""bin/storectl: the receiver daemon's start / status / stop, as cron and operators use it."""

from __future__ import annotations

import json
import os
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fionagw.config import load_config
from support.site import echoscu, pydicom_test_file, read_log, run_bin, storescu


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.fixture
def config(site_config: Path) -> Iterator[Path]:
    yield site_config
    run_bin("storectl", "stop", config=site_config)  # never leave a daemon behind


@pytest.mark.slow
def test_start_status_second_start_stop(config: Path) -> None:
    cfg = load_config(config)
    r = run_bin("storectl", "start", config=config)
    assert r.returncode == 0, r.stdout + r.stderr
    m = re.search(r"started \(pid (\d+)\)", r.stdout)
    assert m, r.stdout
    pid = int(m.group(1))
    assert alive(pid)
    assert cfg.paths.pidfile("storescpd").read_text().split()[0] == str(pid)

    status = run_bin("storectl", "status", config=config)
    assert status.returncode == 0
    assert f"running (pid {pid}" in status.stdout

    again = run_bin("storectl", "start", config=config)
    assert again.returncode == 0
    assert f"already running (pid {pid})" in again.stdout

    assert echoscu(cfg.dicom_port).returncode == 0
    sent = storescu(cfg.dicom_port, pydicom_test_file("MR_small.dcm"))
    assert sent.returncode == 0, sent.stderr
    assert len([p for p in cfg.paths.archive.rglob("MR.*") if p.is_file()]) == 1
    assert cfg.paths.fifo.is_fifo()
    entries = read_log(cfg.paths.logfile("storescpd"))
    assert any(e["message"] == "SCP listening" and e["pid"] == pid for e in entries)

    stop = run_bin("storectl", "stop", config=config)
    assert stop.returncode == 0
    assert f"stopped (pid {pid})" in stop.stdout
    deadline = time.monotonic() + 10
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pid)
    assert not cfg.paths.pidfile("storescpd").exists()
    after = run_bin("storectl", "status", config=config)
    assert after.returncode == 3 and "not running" in after.stdout
    assert echoscu(cfg.dicom_port).returncode != 0
    entries = read_log(cfg.paths.logfile("storescpd"))
    assert any(e["message"] == "SCP stopped" for e in entries)


def test_stop_when_not_running_is_fine(config: Path) -> None:
    r = run_bin("storectl", "stop", config=config)
    assert r.returncode == 0 and "not running" in r.stdout


@pytest.mark.slow
def test_enabled_file_zero_disables_start(config: Path) -> None:
    cfg = load_config(config)
    cfg.paths.config_dir.mkdir(parents=True)
    cfg.paths.enabled_file.write_text("0 receiver off\n")
    r = run_bin("storectl", "start", config=config)
    assert r.returncode == 0
    assert "disabled" in r.stdout
    assert not cfg.paths.pidfile("storescpd").exists()
    assert echoscu(cfg.dicom_port).returncode != 0

    cfg.paths.enabled_file.write_text("1\n")
    r = run_bin("storectl", "start", config=config)
    assert r.returncode == 0 and "started" in r.stdout


def test_port_in_use_fails_with_one_line(config: Path) -> None:
    cfg = load_config(config)
    with socket.socket() as s:
        s.bind((cfg.dicom_ip, cfg.dicom_port))
        s.listen()
        r = run_bin("storectl", "start", config=config)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert str(config) in lines[0]
    assert "DICOMPORT" in lines[0]
    assert str(cfg.dicom_port) in lines[0] and "in use" in lines[0]
    assert not cfg.paths.pidfile("storescpd").exists()


def test_bad_config_json_names_file_line_and_column(tmp_path: Path) -> None:
    bad = tmp_path / "config.json"
    bad.write_text(json.dumps({"DATADIR": str(tmp_path / "data")}, indent=2)[:-2] + ",\n}")
    r = run_bin("storectl", "start", config=bad)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert str(bad) in lines[0]
    assert re.search(r"line \d+ column \d+", lines[0]), lines[0]
