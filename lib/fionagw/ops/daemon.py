"""Run a long-lived component (SCP, processSingleFile) as a daemon or in the foreground.

A component is a function ``run(stop, ready)``: it serves until the ``stop`` event is
set, and calls ``ready()`` once it is listening, so that ``start`` can tell the
operator whether the daemon came up (a port in use fails ``start``, not silently).
Pid files live in DATADIR/.pids; ``start`` on a running daemon is a no-op with exit 0.

``stop`` is an operator's intent, not only a signal: it leaves a stop marker beside the pid
file (``<component><site>.stopped``) that the `fiona run` supervisor honours (it does not
restart a daemon stopped that way, but does restart one that crashed) and `fiona status`
shows; ``start`` clears it.
"""

from __future__ import annotations

import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import daemon

from fionagw.ops import process
from fionagw.ops.atomic import write_bytes_atomic
from fionagw.ops.log_filter import exception_message
from fionagw.ops.perms import UMASK
from fionagw.ops.process import wait_gone

Component = Callable[[threading.Event, Callable[[], None]], None]


@dataclass
class DaemonStatus:
    running: bool
    pid: int | None = None
    uptime_s: float | None = None


def read_pid(pidfile: Path, program: str) -> int | None:
    """The pid in ``pidfile`` if that process is alive and is ``program`` (not a reused pid)."""
    try:
        pid = int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if process.runs(pid, program) else None


def stop_marker(pidfile: Path) -> Path:
    """Where ``stop`` records that an operator stopped the daemon of ``pidfile``."""
    return pidfile.with_suffix(".stopped")


def stopped_by_operator(pidfile: Path) -> float | None:
    """When an operator stopped this daemon (epoch seconds), or None."""
    try:
        return stop_marker(pidfile).stat().st_mtime
    except OSError:
        return None


def clear_stop(pidfile: Path) -> None:
    """Forget an operator's stop (every start does this)."""
    try:
        stop_marker(pidfile).unlink()
    except FileNotFoundError:
        pass


def _mark_stopped(pidfile: Path) -> None:
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(stop_marker(pidfile), f"{time.time():.0f}\n".encode(), durable=False)


def status(pidfile: Path, program: str) -> DaemonStatus:
    pid = read_pid(pidfile, program)
    if pid is None:
        return DaemonStatus(False)
    return DaemonStatus(True, pid, process.uptime_s(pid))


def _write_pidfile(pidfile: Path) -> None:
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(pidfile, f"{os.getpid()}\n".encode(), durable=False)


def _remove_pidfile(pidfile: Path) -> None:
    try:
        if int(pidfile.read_text().split()[0]) == os.getpid():
            pidfile.unlink()
    except (OSError, ValueError, IndexError):
        pass


def _serve(component: Component, pidfile: Path, ready: Callable[[], None]) -> None:
    """Run ``component`` in this process with pidfile and SIGTERM/SIGINT handling."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    _write_pidfile(pidfile)
    try:
        component(stop, ready)
    finally:
        _remove_pidfile(pidfile)


def run_foreground(component: Component, pidfile: Path, program: str, announce: str = "") -> int:
    """Serve in the foreground (for `fiona run` and systemd) until SIGTERM or Ctrl-C."""
    pid = read_pid(pidfile, program)
    if pid is not None:
        print(f"{program}: already running (pid {pid})", file=sys.stderr)
        return 1

    def ready() -> None:
        if announce:
            print(announce, flush=True)

    _serve(component, pidfile, ready)
    return 0


def start(
    component: Component,
    pidfile: Path,
    program: str,
    *,
    start_log: Path,
    working_dir: Path,
    announce: str = "",
    timeout: float = 30.0,
) -> int:
    """Daemonize ``component``; return 0 once it reports ready (or is already running)."""
    clear_stop(pidfile)
    pid = read_pid(pidfile, program)
    if pid is not None:
        print(f"{program}: already running (pid {pid})")
        return 0
    start_log.parent.mkdir(parents=True, exist_ok=True)
    r, w = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the daemon
        os.close(r)
        log = open(start_log, "a", buffering=1)  # noqa: SIM115 - kept open for the daemon's life
        try:
            with daemon.DaemonContext(
                working_directory=str(working_dir),
                umask=UMASK,
                files_preserve=[w, log],
                stdout=log,
                stderr=log,
                signal_map={},
                detach_process=True,
            ):

                def ready() -> None:
                    os.write(w, b"ok\n")

                try:
                    _serve(component, pidfile, ready)
                except BaseException as exc:  # tell the parent, then die
                    # the start log is a log: no message that may quote data (log_filter.py)
                    told = exception_message(exc)
                    try:
                        os.write(w, f"error: {told}\n".encode())
                    except OSError:
                        pass
                    print(f"{time.strftime('%F %T')} {program} failed: {told}", file=log)
                    raise
        finally:
            os._exit(0)
    os.close(w)
    os.waitpid(child, 0)
    deadline = time.monotonic() + timeout
    buf = b""
    while time.monotonic() < deadline and b"\n" not in buf:
        ready_fds, _, _ = select.select([r], [], [], max(0.0, deadline - time.monotonic()))
        if not ready_fds:
            break
        chunk = os.read(r, 4096)
        if not chunk:
            break
        buf += chunk
    os.close(r)
    message = buf.decode(errors="replace").strip()
    if message == "ok":
        pid = read_pid(pidfile, program)
        print(f"{program}: started (pid {pid}){' ' + announce if announce else ''}")
        return 0
    print(
        f"{program}: failed to start: {message or 'no answer (see ' + str(start_log) + ')'}",
        file=sys.stderr,
    )
    return 1


def stop(pidfile: Path, program: str, grace: float = 10.0) -> int:
    """SIGTERM, wait up to ``grace`` seconds, then SIGKILL. Exit 0 also when not running.

    The stop marker is written first, so that a supervisor that sees the process exit already
    knows it was meant."""
    _mark_stopped(pidfile)
    pid = read_pid(pidfile, program)
    if pid is None:
        print(f"{program}: not running")
        try:
            pidfile.unlink()
        except FileNotFoundError:
            pass
        return 0
    os.kill(pid, signal.SIGTERM)
    if not wait_gone(pid, grace):
        os.kill(pid, signal.SIGKILL)
        wait_gone(pid, 5.0)
        print(f"{program}: killed (pid {pid}) after {grace:.0f} s")
        try:
            pidfile.unlink()
        except FileNotFoundError:
            pass
    else:
        print(f"{program}: stopped (pid {pid})")
    return 0
