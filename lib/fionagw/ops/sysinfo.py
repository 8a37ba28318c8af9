"""The host's figures from /proc: uptime, memory, CPU time (Linux; None or empty elsewhere)."""

from __future__ import annotations

import time
from pathlib import Path


def uptime_s() -> float | None:
    """Seconds since boot."""
    try:
        return float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def meminfo() -> dict[str, int]:
    """/proc/meminfo in bytes ("MemTotal", "MemAvailable", "SwapFree", ...)."""
    out = {}
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, _, rest = line.partition(":")
            parts = rest.split()
            if parts and parts[0].isdigit():
                out[key] = int(parts[0]) * 1024
    except OSError:
        pass
    return out


def cpu_times() -> tuple[int, int] | None:
    """(all, idle) CPU ticks since boot, every core (idle includes iowait)."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return sum(values), idle


def cpu_percent(interval: float = 0.25) -> float | None:
    """Busy CPU share over ``interval`` seconds, all cores."""
    a = cpu_times()
    time.sleep(interval)
    b = cpu_times()
    if a is None or b is None or b[0] == a[0]:
        return None
    return round(100.0 * (1 - (b[1] - a[1]) / (b[0] - a[0])), 1)
