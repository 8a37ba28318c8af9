"""`fiona start|stop|restart|status|logs`: the management CLI in daemon mode."""

from __future__ import annotations

import re
import subprocess
import threading
from pathlib import Path

import pytest

from fionagw.config import load_config
from fionagw.ops import daemon
from fionagw.ops.jobstate import record_run
from support.site import BIN, run_bin, write_config

pytestmark = pytest.mark.slow


def test_start_status_restart_stop(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    cfg = load_config(config)
    try:
        down = run_bin("fiona", "status", config=config)
        assert down.returncode == 1 and "DOWN" in down.stdout, down.stdout + down.stderr

        r = run_bin("fiona", "start", config=config)
        assert r.returncode == 0, r.stdout + r.stderr
        cfg.paths.arrived.joinpath("A B 1.2.3.4 scp_1.2").write_text("")
        cfg.paths.incoming_list.write_text("1700000000 1.2\n1700000001 1.3\n")
        # one failed request leaves FIONA's two files: it counts once
        (cfg.paths.transfers_fail / "x.json_fail.log").write_text("{}")
        (cfg.paths.transfers_fail / "x.json_fail_messages.log").write_text('{"error": "e"}')
        record_run(cfg, "detectStudyArrival", True, 0.25, "2 series complete")
        record_run(cfg, "populateIncoming", False, 1.5, "tracker unavailable")

        st = run_bin("fiona", "status", config=config)
        assert st.returncode == 0, st.stdout + st.stderr
        out = st.stdout
        pids = dict(
            re.findall(r"^\s+(storectl|processSingleFile)\s+running\s+pid (\d+)", out, re.M)
        )
        assert set(pids) == {"storectl", "processSingleFile"}, out
        assert re.search(
            r"detectStudyArrival\s+\S+ \S+ \(.* ago\)\s+ok\s+0\.2 s\s+2 series complete", out
        ), out
        assert re.search(r"populateIncoming\s+.*FAILED\s+1\.5 s\s+tracker unavailable", out), out
        assert re.search(r"heartbeat\s+no run recorded", out), out
        assert "arrived jobs 1; transfer requests 0; failed transfers 1; incoming list 2" in out
        assert f"DATADIR {cfg.datadir}:" in out and "free of" in out

        r = run_bin("fiona", "restart", config=config)
        assert r.returncode == 0, r.stdout + r.stderr
        st = run_bin("fiona", "status", config=config)
        new = dict(
            re.findall(r"^\s+(storectl|processSingleFile)\s+running\s+pid (\d+)", st.stdout, re.M)
        )
        assert st.returncode == 0 and new["storectl"] != pids["storectl"]

        r = run_bin("fiona", "stop", config=config)
        assert r.returncode == 0, r.stdout + r.stderr
        st = run_bin("fiona", "status", config=config)
        # an operator's stop is not an outage: shown as such, and not counted as down
        stopped = re.findall(
            r"^\s+(storectl|processSingleFile)\s+stopped by operator", st.stdout, re.M
        )
        assert st.returncode == 0 and sorted(stopped) == ["processSingleFile", "storectl"], (
            st.stdout + st.stderr
        )
        # a crash (no stop marker) still is
        for _program, component in (
            ("processSingleFile", "processSingleFile"),
            ("storectl", "storescpd"),
        ):
            daemon.clear_stop(cfg.paths.pidfile(component))
        st = run_bin("fiona", "status", config=config)
        assert st.returncode == 1 and "down: processSingleFile, storectl" in st.stderr
    finally:
        run_bin("storectl", "stop", config=config)
        run_bin("processSingleFile", "stop", config=config)


def test_logs_pretty_prints_and_follows(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    cfg = load_config(config)
    assert run_bin("clearStaleLinks", config=config).returncode == 0
    r = run_bin("fiona", "logs", "-n", "5", "clearStaleLinks", config=config)
    assert r.returncode == 0, r.stderr
    assert re.search(r"^\d{4}-\d\d-\d\dT\S+ \w+\s+clearStaleLinks\[\d+\] ", r.stdout, re.M), (
        r.stdout
    )
    assert "{" not in r.stdout.splitlines()[0][:30]
    missing = run_bin("fiona", "logs", "nosuch", config=config)
    assert missing.returncode == 1 and "clearStaleLinks" in missing.stderr

    follow = subprocess.Popen(
        [str(BIN / "fiona"), "--config", str(config), "logs", "-f", "-n", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    guard = threading.Timer(30, follow.kill)  # never hang the suite on readline()
    guard.start()
    # `fiona logs -f` prints only what is written after it started, and it gives no sign when
    # that is (a loaded machine may take seconds): append the entry each second until it shows
    written = threading.Event()

    def write_until_read() -> None:
        log = cfg.paths.logfile("heartbeat")
        while not written.wait(1.0):
            with open(log, "a") as f:
                f.write(
                    '{"time": "2030-01-01T00:00:00.000", "level": "ERROR", '
                    '"component": "heartbeat", "pid": 7, "message": "receiver restarted", '
                    '"old_pid": 5}\n'
                )

    writer = threading.Thread(target=write_until_read, daemon=True)
    writer.start()
    try:
        assert follow.stdout is not None
        line = follow.stdout.readline()
        assert "ERROR" in line and "heartbeat[7] receiver restarted" in line and "old_pid=5" in line
    finally:
        written.set()
        guard.cancel()
        follow.terminate()
        follow.wait(10)
