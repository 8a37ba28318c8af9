"""Is a process alive, and is it still the one we mean? Answered by the kernel (Linux /proc).

A pid is reused once its process has ended, so a recorded pid alone proves little: the lock
sidecars keep the holder's start time (:func:`start_ticks`), pid files are checked against
the program's command line (:func:`runs`). A zombie has ended: it only holds its pid until
its parent reaps it, so :func:`alive` and :func:`runs` count it as dead (only :func:`exists`
sees it).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from fionagw.ops import sysinfo


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat after the command name (which may hold spaces and parentheses)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def exists(pid: int) -> bool:
    """A process with this pid exists (ours or another user's); pids <= 0 never do."""
    # a pid read from a file may be anything; os.kill(0 or -1) would address whole groups
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by someone else
    return True


def start_ticks(pid: int) -> int | None:
    """When the process started, in clock ticks since boot (tells a reused pid apart)."""
    fields = _stat_fields(pid)
    try:
        return int(fields[19]) if fields is not None else None  # stat field 22, "starttime"
    except (ValueError, IndexError):
        return None


def is_zombie(pid: int) -> bool:
    """The process has ended and waits for its parent to reap it."""
    fields = _stat_fields(pid)
    return bool(fields and fields[0] == "Z")


def cmdline(pid: int) -> str:
    """The command line, arguments joined by spaces ("" when unknown or a kernel thread)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


def alive(pid: int, expected_start: int | None = None) -> bool:
    """The process runs (exists, not a zombie) and, when ``expected_start`` is given, is the
    one that started then."""
    if not exists(pid) or is_zombie(pid):
        return False
    if expected_start is None:
        return True
    ticks = start_ticks(pid)
    return ticks is None or ticks == expected_start


def runs(pid: int, program: str) -> bool:
    """The process is alive and its command line names ``program`` (a pid file's pid may have
    been reused by another program; an empty cmdline is a zombie or a kernel thread)."""
    if not alive(pid):
        return False
    cmd = cmdline(pid)
    return bool(cmd) and program in cmd


def uptime_s(pid: int) -> float | None:
    """Seconds since the process started."""
    ticks, boot = start_ticks(pid), sysinfo.uptime_s()
    if ticks is None or boot is None:
        return None
    return boot - ticks / os.sysconf("SC_CLK_TCK")


def wait_gone(pid: int, timeout: float) -> bool:
    """Wait up to ``timeout`` s for the process to end (a zombie has); True when it did."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False
