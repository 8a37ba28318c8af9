"""Search, follow and export the components' JSON-lines logs under DATADIR/logs (Logs page).

Each component writes ``<component><site>.log`` (rotated to ``.log.1`` ... by size; see
fionagw.ops.log). A line that is not JSON (a daemon's start-up error, a traceback in a
``*-start.log``) is kept as an entry with only a message and the time of the line before it,
and no level filter hides it (such lines are usually errors), so nothing in a log is hidden.
Times are the logs' own local-time text ("2025-01-31T12:00:00.123"); a filter bound such as
"2025-01-31T12:00" compares as text, which orders correctly for that format.
"""

from __future__ import annotations

import bisect
import csv
import io
import json
import os
import re
import time
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from fionagw.config import SiteConfig

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_RANK = {name: i for i, name in enumerate(LEVELS)}
BASE_FIELDS = ("time", "level", "component", "pid", "message")
_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}(:\d{2}(:\d{2}(\.\d+)?)?)?)?$")


class FilterError(ValueError):
    """A filter value that cannot be used; str() says which and why."""


@dataclass(frozen=True)
class LogFilter:
    min_level: str = ""  # "" = every level; else that level and above
    components: tuple[str, ...] = ()  # () = every component
    since: str = ""  # "YYYY-MM-DDTHH:MM[:SS]" local time, inclusive
    until: str = ""  # exclusive
    text: str = ""  # case-insensitive, anywhere in the line

    @classmethod
    def from_form(cls, form: Any) -> LogFilter:
        """Validated filter from a submitted form (keys min_level, component (repeated), since,
        until, text)."""
        level = (form.get("min_level") or "").upper()
        if level and level not in _RANK:
            raise FilterError(f"unknown level {level!r} (one of {', '.join(LEVELS)})")
        bounds = []
        for key in ("since", "until"):
            value = (form.get(key) or "").strip().replace(" ", "T")
            if value and not _TIME.match(value):
                raise FilterError(
                    f"{key}: expected a date and time like 2025-01-31T12:00, got {value!r}"
                )
            bounds.append(value)
        components = tuple(sorted({c for c in form.getlist("component") if c}))
        return cls(level, components, bounds[0], bounds[1], (form.get("text") or "").strip()[:200])

    def as_dict(self) -> dict[str, Any]:
        return {
            "min_level": self.min_level,
            "components": list(self.components),
            "since": self.since,
            "until": self.until,
            "text": self.text,
        }

    @classmethod
    def from_dict(cls, data: Any) -> LogFilter:
        if not isinstance(data, dict):
            return cls()
        return cls(
            str(data.get("min_level") or ""),
            tuple(data.get("components") or ()),
            str(data.get("since") or ""),
            str(data.get("until") or ""),
            str(data.get("text") or ""),
        )

    @property
    def active(self) -> bool:
        return bool(self.min_level or self.components or self.since or self.until or self.text)

    def line_may_match(self, line: str) -> bool:
        """Cheap test on the raw line before parsing it."""
        return not self.text or self.text.lower() in line.lower()

    def matches(self, entry: dict[str, Any]) -> bool:
        if (
            self.min_level
            and _RANK.get(str(entry.get("level", "")).upper(), len(LEVELS)) < _RANK[self.min_level]
        ):
            return False
        t = str(entry.get("time", ""))
        if self.since and t and t < self.since:
            return False
        if self.until and t and t >= self.until:
            return False
        return True


def parse_line(line: str, component: str) -> dict[str, Any]:
    """One log line as an entry; a non-JSON line becomes {"message": line} of the component."""
    try:
        entry = json.loads(line)
    except ValueError:
        entry = None
    if not isinstance(entry, dict):
        return {"time": "", "level": "", "component": component, "message": line}
    entry.setdefault("component", component)
    return entry


def details(entry: dict[str, Any]) -> str:
    """The entry's extra fields as "key=value" text (what is not time/level/component/pid/message)."""
    parts = []
    for key, value in entry.items():
        if key in BASE_FIELDS:
            continue
        text = (
            value
            if isinstance(value, str) and " " not in value and value
            else json.dumps(value, default=str)
        )
        parts.append(f"{key}={text}")
    return " ".join(parts)


# -- files --------------------------------------------------------------------------------------


def components(cfg: SiteConfig) -> list[str]:
    """Components that have a log of this site, sorted."""
    suffix = f"{cfg.site}.log"
    found = set()
    try:
        names = os.listdir(cfg.paths.logs)
    except FileNotFoundError:
        return []
    for name in names:
        base = name.rsplit(".", 1)[0] if re.search(r"\.log\.\d+$", name) else name
        if base.endswith(suffix) and len(base) > len(suffix):
            found.add(base[: -len(suffix)])
    return sorted(found)


def current_file(cfg: SiteConfig, component: str) -> Path:
    return cfg.paths.logfile(component)


def files_newest_first(cfg: SiteConfig, component: str) -> list[Path]:
    """The current log, then .log.1, .log.2 ... (older) that exist."""
    current = current_file(cfg, component)
    out = [current] if current.is_file() else []
    n = 1
    while True:
        rotated = current.with_name(f"{current.name}.{n}")
        if not rotated.is_file():
            break
        out.append(rotated)
        n += 1
    return out


def _candidate_lines(text: str, lines: list[str], needle: str) -> list[int]:
    """Indexes of the lines that contain ``needle`` (lower case), found in the whole text at
    once rather than line by line."""
    low = text.lower()
    if len(low) != len(text):  # a rare character changed length when lowered: per line
        return [i for i, line in enumerate(lines) if needle in line.lower()]
    starts, pos = [], 0
    for line in lines:
        starts.append(pos)
        pos += len(line) + 1
    found, at = [], low.find(needle)
    while at != -1:
        i = bisect.bisect_right(starts, at) - 1
        found.append(i)
        at = low.find(needle, starts[i + 1] if i + 1 < len(starts) else len(low))
    return found


def _time_before(lines: list[str], i: int) -> str:
    """The time of the nearest JSON line above line ``i`` (for a line that is not JSON)."""
    for j in range(i - 1, max(-1, i - 1000), -1):
        if lines[j].startswith("{"):
            t = parse_line(lines[j], "").get("time")
            if t:
                return str(t)
    return ""


def _read_entries(
    path: Path, component: str, flt: LogFilter, limit: int | None = None
) -> list[dict[str, Any]]:
    """Matching entries of one file in file order; with ``limit`` only the newest ``limit``,
    parsed from the end, so a page view of a large log stays fast."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except FileNotFoundError:
        return []
    lines = text.split("\n")
    candidates: Iterable[int] = (
        _candidate_lines(text, lines, flt.text.lower()) if flt.text else range(len(lines))
    )
    out: list[dict[str, Any]] = []
    for i in reversed(candidates):  # type: ignore[call-overload]
        line = lines[i].rstrip("\r")
        if not line.strip():
            continue
        entry = parse_line(line, component)
        if not entry.get("time"):
            entry["time"] = _time_before(
                lines, i
            )  # a traceback line: when the line above was written
        if flt.matches(entry):
            out.append(entry)
            if limit is not None and len(out) >= limit:
                break
    out.reverse()
    return out


def _oldest_time(path: Path) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                t = parse_line(line.strip(), "").get("time")
                if t:
                    return str(t)
    except FileNotFoundError:
        pass
    return ""


def search(cfg: SiteConfig, flt: LogFilter, limit: int = 500) -> tuple[list[dict[str, Any]], bool]:
    """The newest ``limit`` matching entries of every selected component, oldest first, and
    whether older matches were left out. Rotated files are read only as far as needed."""
    selected = [c for c in components(cfg) if not flt.components or c in flt.components]
    merged: list[dict[str, Any]] = []
    more = False
    for component in selected:
        found: list[dict[str, Any]] = []
        for path in files_newest_first(cfg, component):
            found = _read_entries(path, component, flt, limit + 1 - len(found)) + found
            if len(found) > limit:
                break
            oldest = _oldest_time(path)
            if flt.since and oldest and oldest < flt.since:
                break  # everything in older files is before the filter's start
        if len(found) > limit:
            more = True
        merged.extend(found[-limit:])
    merged.sort(key=lambda e: str(e.get("time", "")))
    if len(merged) > limit:
        more = True
    return merged[-limit:], more


def all_matching(cfg: SiteConfig, flt: LogFilter) -> list[dict[str, Any]]:
    """Every matching entry of every selected component, rotated files included, oldest first."""
    out: list[dict[str, Any]] = []
    for component in components(cfg):
        if flt.components and component not in flt.components:
            continue
        for path in reversed(files_newest_first(cfg, component)):
            out.extend(_read_entries(path, component, flt))
    out.sort(key=lambda e: str(e.get("time", "")))
    return out


# -- exports ------------------------------------------------------------------------------------


def to_csv(entries: Iterable[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([*BASE_FIELDS, "details"])
    for e in entries:
        w.writerow(
            [
                e.get("time", ""),
                e.get("level", ""),
                e.get("component", ""),
                e.get("pid", ""),
                e.get("message", ""),
                details(e),
            ]
        )
    return buf.getvalue()


def to_json(entries: Iterable[dict[str, Any]]) -> str:
    return json.dumps(list(entries), ensure_ascii=False, default=str, indent=1)


def write_zip(cfg: SiteConfig, out: IO[bytes]) -> int:
    """Every log file of the site (rotated ones too) into a ZIP; returns the number of files."""
    n = 0
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as z:
        for component in components(cfg):
            for path in files_newest_first(cfg, component):
                try:
                    z.write(path, arcname=f"logs/{path.name}")
                    n += 1
                except FileNotFoundError:  # rotated away meanwhile
                    continue
    return n


# -- following (Server-Sent Events) -------------------------------------------------------------


class LogFollower:
    """New whole lines appended to the selected components' current logs since it was made,
    across rotation and truncation; components that start logging later are picked up too."""

    def __init__(self, cfg: SiteConfig, flt: LogFilter) -> None:
        self.cfg, self.flt = cfg, flt
        self.positions: dict[str, tuple[int, int]] = {}
        for component in self._selected():
            self.positions[component] = self._stat(component) or (0, 0)

    def _selected(self) -> list[str]:
        return [
            c for c in components(self.cfg) if not self.flt.components or c in self.flt.components
        ]

    def _stat(self, component: str) -> tuple[int, int] | None:
        try:
            st = current_file(self.cfg, component).stat()
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_size

    def poll(self) -> list[dict[str, Any]]:
        """Matching entries written since the last poll."""
        out: list[dict[str, Any]] = []
        for component in self._selected():
            self.positions.setdefault(component, (0, 0))  # new component: from its start
        for component, (ino, pos) in list(self.positions.items()):
            st = self._stat(component)
            if st is None:
                continue
            if st[0] != ino or st[1] < pos:
                pos = 0  # rotated or truncated: the new file from its start
            if st[1] == pos:
                self.positions[component] = (st[0], pos)
                continue
            with open(current_file(self.cfg, component), "rb") as f:
                f.seek(pos)
                data = f.read(st[1] - pos)
            cut = data.rfind(b"\n") + 1  # only whole lines; the rest next time
            for line in data[:cut].decode("utf-8", errors="replace").splitlines():
                if line.strip() and self.flt.line_may_match(line):
                    entry = parse_line(line, component)
                    if self.flt.matches(entry):
                        out.append(entry)
            self.positions[component] = (st[0], pos + cut)
        out.sort(key=lambda e: str(e.get("time", "")))
        return out


def sse_events(
    follower: LogFollower, *, max_seconds: float, poll_s: float = 0.5, keepalive_s: float = 15.0
) -> Iterator[str]:
    """Server-Sent Events: one ``data:`` JSON entry per new line, comments as keep-alives.
    Ends after ``max_seconds`` (the browser reconnects, so the session is checked again)."""
    yield "retry: 2000\n: connected\n\n"
    start = last = time.monotonic()
    while time.monotonic() - start < max_seconds:
        time.sleep(poll_s)
        entries = follower.poll()
        for e in entries:
            row = {**{k: e.get(k, "") for k in BASE_FIELDS}, "details": details(e)}
            yield f"data: {json.dumps(row, ensure_ascii=False, default=str)}\n\n"
        now = time.monotonic()
        if entries:
            last = now
        elif now - last >= keepalive_s:
            last = now
            yield ": keep-alive\n\n"
