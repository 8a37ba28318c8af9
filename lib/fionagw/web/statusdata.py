"""Figures for the Status page beyond fionagw.ops.status: cron freshness and the week's plots.

Images received per hour come from the archive's file times (the archive is the only copy of
what arrived); only study folders changed in the window are read, and each folder's hourly
counts are cached until the folder changes, so a page view costs a directory scan.
Transfers per day come from the tracker's transfer_date of each request.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections import Counter
from collections.abc import Iterable

from fionagw.config import SiteConfig
from fionagw.tracking.records import COMPLETE_ERROR, Transfer

HOUR, DAY = 3600, 86400
_cache: dict[str, tuple[int, Counter]] = {}  # study folder -> (mtime_ns, files per epoch hour)
_cache_lock = threading.Lock()


def _field_interval(field: str, unit: int) -> int | None:
    """Seconds between runs implied by one cron field: '*' -> unit, '*/N' -> N units."""
    if field == "*":
        return unit
    m = re.fullmatch(r"\*/(\d+)", field)
    return int(m.group(1)) * unit if m else None


def schedule_interval(schedule: str) -> int:
    """Roughly how often a five-field cron schedule runs, in seconds."""
    fields = schedule.split()
    if len(fields) != 5:
        return DAY
    minute, hour = fields[0], fields[1]
    step = _field_interval(minute, 60)
    if step is not None:
        return step
    step = _field_interval(hour, HOUR)
    return step if step is not None else DAY


def job_intervals() -> dict[str, int]:
    """bin/ program -> its shortest interval in cron/fiona.crontab."""
    from fionagw.ops.crontab import TEMPLATE, job_lines

    try:
        lines = job_lines(TEMPLATE.read_text(encoding="utf-8"))
    except OSError:
        return {}
    out: dict[str, int] = {}
    for line in lines:
        m = re.search(r"/bin/([A-Za-z]+)", line.command)
        if m:
            interval = schedule_interval(line.schedule)
            out[m.group(1)] = min(interval, out.get(m.group(1), interval))
    return out


def freshness(finished: float | None, interval: int | None, now: float) -> str:
    """'fresh', 'stale' (no run for twice the interval plus a minute) or 'never'."""
    if finished is None:
        return "never"
    if interval is None:
        return "fresh"
    return "fresh" if now - finished <= 2 * interval + 60 else "stale"


def _folder_hours(path: str) -> Counter:
    counts: Counter = Counter()
    try:
        with os.scandir(path) as it:
            for e in it:
                if e.name.startswith("."):
                    continue
                try:
                    counts[int(e.stat(follow_symlinks=False).st_mtime // HOUR)] += 1
                except FileNotFoundError:
                    continue
    except FileNotFoundError:
        pass
    return counts


def images_per_hour(
    cfg: SiteConfig, now: float | None = None, hours: int = 168
) -> tuple[list[int], int]:
    """Files received in each of the last ``hours`` hours (oldest first), and the first hour
    (epoch hour number) of the window."""
    now = time.time() if now is None else now
    last = int(now // HOUR)
    first = last - hours + 1
    totals = [0] * hours
    try:
        folders = [
            (e.path, e.stat().st_mtime_ns) for e in os.scandir(cfg.paths.archive) if e.is_dir()
        ]
    except FileNotFoundError:
        folders = []
    seen = set()
    for path, mtime_ns in folders:
        if mtime_ns // 10**9 < first * HOUR:
            continue  # nothing added to it in the window
        seen.add(path)
        with _cache_lock:
            cached = _cache.get(path)
        if cached is None or cached[0] != mtime_ns:
            cached = (mtime_ns, _folder_hours(path))
            with _cache_lock:
                _cache[path] = cached
        for hour, n in cached[1].items():
            if first <= hour <= last:
                totals[hour - first] += n
    with _cache_lock:
        for path in [p for p in _cache if p.startswith(str(cfg.paths.archive)) and p not in seen]:
            del _cache[path]
    return totals, first


def _day(text: str) -> str:
    return text.strip()[:10]


def transfers_per_day(
    transfers: Iterable[Transfer], now: float | None = None, days: int = 7
) -> tuple[list[str], list[int], list[int]]:
    """(dates oldest first, transfers sent per day, transfers failed per day) by transfer_date."""
    now = time.time() if now is None else now
    dates = [
        time.strftime("%Y-%m-%d", time.localtime(now - (days - 1 - i) * DAY)) for i in range(days)
    ]
    index = {d: i for i, d in enumerate(dates)}
    sent, failed = [0] * days, [0] * days
    for t in transfers:
        i = index.get(_day(t.transfer_date or ""))
        if i is None:
            continue
        if t.transfers_complete == COMPLETE_ERROR:
            failed[i] += 1
        else:
            sent[i] += 1
    return dates, sent, failed
