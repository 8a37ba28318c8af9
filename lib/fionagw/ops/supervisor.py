"""Supervision for `fiona run` (:mod:`fionagw.ops.gateway`): start, restart and stop children.

Children (receiver, processSingleFile, the web server) are the same bin/ programs in
`foreground` mode, restarted with backoff when they exit, unless an operator stopped them
(`storectl stop`, `fiona stop` leave a stop marker, see :mod:`fionagw.ops.daemon`): such a
child is held down until the marker goes (`storectl start`), then started at once; a crash
(no marker) is restarted as before. They get PR_SET_PDEATHSIG, so even a SIGKILLed
supervisor leaves no orphan behind. Services are threads of this process (the
scheduler of cron/fiona.crontab, the metrics endpoint, the heartbeat POST) with start()/stop().

On SIGINT/SIGTERM: services stop first (the scheduler ends its running jobs), then every child
gets SIGTERM, then SIGKILL after a grace period. A daemon that a job started behind our back
during the run (heartbeat's `storectl start` after a hung receiver) is stopped too.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from fionagw.ops import daemon
from fionagw.ops.atomic import write_bytes_atomic
from fionagw.paths import BIN_DIR

BIN = BIN_DIR
PR_SET_PDEATHSIG = 1

log = logging.getLogger("fionagw.supervisor")


def die_with_parent() -> None:
    """In a child: receive SIGTERM when the process (thread) that started it dies."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


class Service(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


@dataclass
class Child:
    name: str
    argv: list[str]
    url: str = ""  # where it serves (printed, and shown by `fiona status`)
    pidfile: Path | None = None  # its pid file, to notice a copy started outside the supervisor
    program: str = ""  # the bin/ name in that process's command line
    stop_argv: list[str] | None = None  # how to stop such an outside copy
    proc: subprocess.Popen | None = None
    restarts: int = 0
    next_start: float = 0.0
    started_at: float = field(default=0.0)
    outside_pid: int | None = None  # a copy that runs outside us (we wait instead of restarting)
    held: bool = False  # stopped by an operator: not restarted until the stop marker goes

    def stopped_by_operator(self) -> bool:
        return self.pidfile is not None and daemon.stopped_by_operator(self.pidfile) is not None

    def start(self) -> None:
        self.proc = subprocess.Popen(self.argv, preexec_fn=die_with_parent)
        self.started_at = time.monotonic()

    def running_outside(self) -> int | None:
        if self.pidfile is None:
            return None
        pid = daemon.read_pid(self.pidfile, self.program or self.name)
        ours = self.proc.pid if self.proc is not None else None
        return pid if pid is not None and pid != ours else None


def write_state(
    path: Path | None, children: Sequence[Child], extra: dict[str, dict[str, object]]
) -> None:
    """Record our pid and the children `fiona status` should list (those with a URL)."""
    if path is None:
        return
    listed: dict[str, dict[str, object]] = {
        c.name: {"pid": c.proc.pid if c.proc is not None else None, "url": c.url}
        for c in children
        if c.url
    }
    listed.update(extra)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(
            path,
            json.dumps({"pid": os.getpid(), "started": time.time(), "children": listed}).encode(),
            durable=False,
        )
    except OSError as exc:
        log.warning(
            "cannot write the run state file", extra={"file": str(path), "error": exc.strerror}
        )


def supervise(
    children: list[Child],
    *,
    services: Sequence[Service] = (),
    state_file: Path | None = None,
    state_extra: dict[str, dict[str, object]] | None = None,
    poll: float = 0.5,
    grace: float = 15.0,
    restart_file: Path | None = None,
) -> int:
    """Run until SIGINT/SIGTERM; restart a child that exits, with backoff up to 60 s.
    ``restart_file``: a JSON list of child names to restart now (the Settings page writes it)."""
    stopping = False
    extra = state_extra or {}

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    started: list[Service] = []
    try:
        for c in children:
            c.start()
        write_state(state_file, children, extra)
        for svc in services:
            if stopping:
                break
            svc.start()
            started.append(svc)
        while not stopping:
            time.sleep(poll)
            if restart_file is not None and restart_file.exists():
                _restart_requested(restart_file, children, grace, state_file, extra)
            for c in children:
                if stopping:
                    break
                if c.held:
                    _maybe_release(c, state_file, children, extra)
                elif c.proc is not None and c.proc.poll() is not None:
                    _child_exited(c, state_file, children, extra)
                elif c.proc is not None and c.stopped_by_operator():
                    # a stop that came while we were starting the child (it had no pid file
                    # yet, so `stop` found nothing to signal): carry it out ourselves
                    c.proc.terminate()
    finally:
        for svc in reversed(started):
            try:
                svc.stop()
            except Exception:  # noqa: BLE001 - one failing service must not leave children behind
                log.exception("service did not stop cleanly")
        _stop_children(children, grace)
        if state_file is not None:
            try:
                if json.loads(state_file.read_text()).get("pid") == os.getpid():
                    state_file.unlink()
            except (OSError, ValueError):
                pass
        for s, h in old.items():
            signal.signal(s, h)
    return 0


def _child_exited(
    c: Child,
    state_file: Path | None,
    children: Sequence[Child],
    extra: dict[str, dict[str, object]],
) -> None:
    assert c.proc is not None
    now = time.monotonic()
    outside = c.running_outside()
    if outside is not None:
        # e.g. heartbeat restarted a hung receiver as a daemon: let it serve, stop it at the end
        if c.outside_pid != outside:
            c.outside_pid = outside
            log.warning(
                "daemon runs outside fiona run; not starting another copy",
                extra={"child": c.name, "pid": outside},
            )
        c.next_start = 0.0
        return
    if c.stopped_by_operator():
        c.held, c.next_start, c.restarts = True, 0.0, 0
        log.warning(
            "child stopped by an operator; not restarting it until it is started again",
            extra={"child": c.name, "exit_code": c.proc.returncode, "start": f"{c.name} start"},
        )
        return
    if c.next_start == 0.0:
        # Quick deaths in a row back off; a long healthy run resets the count.
        if now - c.started_at > 300:
            c.restarts = 0
        delay = min(60.0, 2.0**c.restarts)
        c.next_start = now + delay
        log.error(
            "child exited; restarting",
            extra={"child": c.name, "exit_code": c.proc.returncode, "delay_s": delay},
        )
    elif now >= c.next_start:
        c.restarts += 1
        c.next_start = 0.0
        c.start()
        write_state(state_file, children, extra)
        log.warning(
            "child restarted", extra={"child": c.name, "pid": c.proc.pid, "restarts": c.restarts}
        )


def _maybe_release(
    c: Child,
    state_file: Path | None,
    children: Sequence[Child],
    extra: dict[str, dict[str, object]],
) -> None:
    """A held child whose stop marker is gone (`storectl start`) starts at once."""
    if c.stopped_by_operator():
        return
    c.held = False
    c.start()
    write_state(state_file, children, extra)
    assert c.proc is not None
    log.info("child started again by an operator", extra={"child": c.name, "pid": c.proc.pid})


def _stop_children(children: Sequence[Child], grace: float) -> None:
    for c in children:
        if c.proc and c.proc.poll() is None:
            c.proc.terminate()
    deadline = time.monotonic() + grace
    for c in children:
        if c.proc is None:
            continue
        try:
            c.proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            c.proc.kill()
            c.proc.wait()
    for c in children:  # daemons that a job started during the run
        pid = c.running_outside()
        if pid is not None and c.stop_argv:
            log.warning(
                "stopping a daemon that was started outside fiona run during the run",
                extra={"child": c.name, "pid": pid},
            )
            subprocess.run(c.stop_argv, stdin=subprocess.DEVNULL, timeout=60, check=False)


def _restart_requested(
    restart_file: Path,
    children: Sequence[Child],
    grace: float,
    state_file: Path | None,
    extra: dict[str, dict[str, object]],
) -> None:
    """Restart the children the request file names (after a configuration change), each
    stopped with SIGTERM (SIGKILL after ``grace``) and started at once; then remove the file."""
    try:
        names = json.loads(restart_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        names = []
        log.warning("unreadable restart request ignored", extra={"error": str(exc)})
    try:
        restart_file.unlink()
    except FileNotFoundError:
        pass
    wanted = [c for c in children if isinstance(names, list) and c.name in names]
    for c in wanted:
        if c.held:
            continue  # an operator stopped it: their start, not a config change, brings it back
        if c.proc is not None and c.proc.poll() is None:
            c.proc.terminate()
            try:
                c.proc.wait(grace)
            except subprocess.TimeoutExpired:
                c.proc.kill()
                c.proc.wait()
        c.restarts, c.next_start = 0, 0.0
        c.start()
        assert c.proc is not None
        log.warning("child restarted on request", extra={"child": c.name, "pid": c.proc.pid})
    if wanted:
        write_state(state_file, children, extra)
