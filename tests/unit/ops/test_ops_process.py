"""ops/process.py against real processes: this one, a running child, a zombie, a reaped one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from fionagw.ops import daemon, process


def _sleeper() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def test_this_process_is_alive_and_is_the_one_that_started_then() -> None:
    pid = os.getpid()
    ticks = process.start_ticks(pid)
    assert ticks is not None
    assert process.exists(pid) and process.alive(pid) and process.alive(pid, ticks)
    assert not process.alive(pid, ticks + 1)  # another process that was given the same pid
    assert not process.is_zombie(pid)
    uptime = process.uptime_s(pid)
    assert uptime is not None and uptime >= 0


def test_command_line_of_a_child() -> None:
    child = _sleeper()
    try:
        deadline = time.monotonic() + 10
        while not process.cmdline(child.pid) and time.monotonic() < deadline:
            time.sleep(0.02)  # empty for a moment while the kernel runs the exec
        assert process.cmdline(child.pid) == f"{sys.executable} -c import time; time.sleep(60) "
    finally:
        child.kill()
        child.wait()


def test_pids_that_address_process_groups_are_never_alive() -> None:
    for pid in (0, -1):
        assert not process.exists(pid) and not process.alive(pid)


def test_a_zombie_holds_its_pid_until_reaped_but_counts_as_gone() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 30
    while not process.is_zombie(child.pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert process.is_zombie(child.pid)
    assert process.exists(child.pid) and not process.alive(child.pid)
    assert process.wait_gone(child.pid, 0.5)
    child.wait()
    assert not process.exists(child.pid)
    assert process.start_ticks(child.pid) is None and process.cmdline(child.pid) == ""
    assert process.uptime_s(child.pid) is None


def test_wait_gone_waits_for_a_process_that_ends_and_times_out_on_one_that_does_not() -> None:
    child = _sleeper()
    try:
        t0 = time.monotonic()
        assert not process.wait_gone(child.pid, 0.3)
        assert time.monotonic() - t0 >= 0.3
        child.terminate()
        assert process.wait_gone(child.pid, 10)  # ended (a zombie until we reap it below)
    finally:
        child.kill()
        child.wait()


def _killed_unreaped() -> subprocess.Popen:
    """A child killed with SIGKILL and not reaped: a zombie with an empty /proc/PID/cmdline."""
    child = _sleeper()
    deadline = time.monotonic() + 10
    while not process.cmdline(child.pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    while not process.is_zombie(child.pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert process.is_zombie(child.pid) and process.cmdline(child.pid) == ""
    return child


def test_runs_needs_a_live_process_whose_command_line_names_the_program() -> None:
    child = _sleeper()
    try:
        deadline = time.monotonic() + 10
        while not process.cmdline(child.pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert process.runs(child.pid, "time.sleep(60)")
        assert not process.runs(child.pid, "processSingleFile")  # a reused pid
    finally:
        child.kill()
        child.wait()


def test_a_killed_daemon_left_as_a_zombie_with_a_stale_pidfile_is_not_running(
    tmp_path: Path,
) -> None:
    child = _killed_unreaped()
    try:
        pidfile = tmp_path / "processSingleFile.pid"
        pidfile.write_text(f"{child.pid}\n")
        assert not process.alive(child.pid) and not process.runs(child.pid, "python")
        assert daemon.read_pid(pidfile, "python") is None
        assert daemon.status(pidfile, "python") == daemon.DaemonStatus(False)
    finally:
        child.wait()
