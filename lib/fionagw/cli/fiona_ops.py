"""The daemon-mode management commands of `fiona`: start, stop, restart, status, logs, cron."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
import time
from pathlib import Path

from fionagw.config import SiteConfig
from fionagw.ops.log import format_entry
from fionagw.ops.perms import datadir_warning
from fionagw.ops.status import DAEMONS, human_duration, human_size
from fionagw.ops.supervisor import BIN

PROGRAM = "fiona"


def _bin(cfg: SiteConfig, program: str, command: str) -> list[str]:
    cmd = [sys.executable, str(BIN / program), "--config", str(cfg.config_file), command]
    return cmd + ([cfg.site] if cfg.site else [])


def control(cfg: SiteConfig, command: str) -> int:
    order = DAEMONS if command != "stop" else tuple(reversed(DAEMONS))
    rc = 0
    for program, _component in order:
        r = subprocess.run(_bin(cfg, program, command), stdin=subprocess.DEVNULL)
        rc = max(rc, r.returncode)
    return rc


# --- status -----------------------------------------------------------------------------------


def status(cfg: SiteConfig) -> int:
    from fionagw.ops.counters import transfer_figures
    from fionagw.ops.status import collect_status

    st = collect_status(cfg, du=True)
    if warning := datadir_warning(cfg.datadir):
        print(warning)
    print(f"fionagw {st.version}  site {cfg.site or '(default)'}  config {cfg.config_file}")
    print("services")
    for s in st.services:
        where = f"  {s.listen}" if s.listen else ""
        if s.state == "running":
            print(f"  {s.name:<20} running  pid {s.pid}  up {human_duration(s.uptime_s)}{where}")
        elif s.state == "disabled":
            print(f"  {s.name:<20} disabled by {s.listen}")
        elif s.state == "stopped":
            since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(s.stopped_at or 0))
            print(
                f"  {s.name:<20} stopped by operator since {since}"
                f" (`{s.name} start` or `fiona start` starts it){where}"
            )
        else:
            print(f"  {s.name:<20} DOWN{where}")
    print("cron jobs (last run)")
    for j in st.jobs:
        busy = (
            f"  running now (pid {j.running_pid}, {human_duration(j.running_for_s)})"
            if j.running_pid
            else ""
        )
        run = j.last
        if run is None:
            print(f"  {j.job:<22} no run recorded{busy}")
            continue
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run.finished))
        outcome = "ok" if run.ok else "FAILED"
        summary = f"  {run.summary}" if run.summary else ""
        print(
            f"  {j.job:<22} {when} ({human_duration(st.collected_at - run.finished)} ago)  {outcome}  "
            f"{run.seconds:.1f} s{summary}{busy}"
        )
    print("queues")
    print("  " + "; ".join(f"{k} {v}" for k, v in st.queues.items()))
    print("transfers")
    for line in transfer_figures(cfg).lines():
        print("  " + line)
    print("disk")
    d = st.disk
    assert d is not None
    if d.error:
        print(f"  DATADIR {d.datadir}: {d.error}")
    else:
        source = "capacity (retention.capacity_bytes)" if d.source == "capacity" else "filesystem"
        used = f"{human_size(d.used_bytes)} used; " if d.used_bytes is not None else ""
        print(
            f"  DATADIR {d.datadir}: {used}{source} {human_size(d.free_bytes)} free of {human_size(d.total_bytes)} "
            f"({d.free_percent:.1f} %, retention target {d.target_free_percent:g} %)"
        )
    if st.down:
        print(f"{PROGRAM}: down: {', '.join(st.down)}", file=sys.stderr)
        return 1
    return 0


# --- logs -------------------------------------------------------------------------------------


def _log_files(cfg: SiteConfig, component: str) -> list[Path]:
    if component:
        name = component if component.endswith(".log") else f"{component}{cfg.site}.log"
        return [cfg.paths.logs / name]
    return sorted(p for p in cfg.paths.logs.glob(f"*{cfg.site}.log") if p.is_file())


def _tail(path: Path, n: int) -> list[str]:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            block = min(size, max(4096, n * 400))
            while True:
                f.seek(size - block)
                data = f.read(block)
                if data.count(b"\n") > n or block == size:
                    break
                block = min(size, block * 2)
    except OSError:
        return []
    return (
        [ln for ln in data.decode("utf-8", errors="replace").splitlines() if ln.strip()][-n:]
        if n > 0
        else []
    )


def logs(cfg: SiteConfig, component: str, *, follow: bool, lines: int, poll: float = 0.5) -> int:
    files = _log_files(cfg, component)
    if component and not files[0].exists() and not follow:
        known = ", ".join(p.name[:-4] for p in _log_files(cfg, "")) or "none yet"
        print(f"{PROGRAM}: no log {files[0]} (logs: {known})", file=sys.stderr)
        return 1
    entries = []
    for path in files:
        stem = path.name[:-4]
        for ln in _tail(path, lines):
            try:
                t = json.loads(ln).get("time", "")
            except (ValueError, AttributeError):
                t = ""
            entries.append((t, stem, ln))
    if len(files) > 1:
        entries.sort(key=lambda e: e[0])
    for _t, stem, ln in entries[-lines:] if lines > 0 else []:
        print(format_entry(ln, stem), flush=False)
    sys.stdout.flush()
    if not follow:
        return 0
    positions: dict[Path, tuple[int, int]] = {}
    for path in files:
        try:
            st = path.stat()
            positions[path] = (st.st_ino, st.st_size)
        except FileNotFoundError:
            positions[path] = (0, 0)
    try:
        while True:
            time.sleep(poll)
            if not component:  # a component that logs for the first time
                for path in _log_files(cfg, ""):
                    positions.setdefault(path, (0, 0))
            for path, (ino, pos) in list(positions.items()):
                try:
                    st = path.stat()
                except FileNotFoundError:
                    continue
                if st.st_ino != ino or st.st_size < pos:  # rotated or truncated
                    pos = 0
                if st.st_size == pos:
                    positions[path] = (st.st_ino, pos)
                    continue
                with open(path, "rb") as f:
                    f.seek(pos)
                    data = f.read()
                # only whole lines; keep a partial last line for the next poll
                cut = data.rfind(b"\n") + 1
                for ln in data[:cut].decode("utf-8", errors="replace").splitlines():
                    if ln.strip():
                        print(format_entry(ln, path.name[:-4]), flush=True)
                positions[path] = (st.st_ino, pos + cut)
    except KeyboardInterrupt:
        return 0


# --- cron -------------------------------------------------------------------------------------


def cron(cfg: SiteConfig, action: str, user: str | None) -> int:
    from fionagw.ops import crontab

    user = user or cfg.processing_user or None
    try:
        if user and user == pwd.getpwuid(os.geteuid()).pw_name:
            user = None  # one's own crontab needs no -u (and no privileges)
    except KeyError:
        pass
    who = user or "your"
    try:
        ours = crontab.render(cfg.config_file, cfg.site)
        if action == "show":
            current = crontab.read_crontab(user)
            begin, _end = crontab.markers(cfg.site)
            state = "installed" if begin in current else "not installed"
            print(f"# {who} crontab: fionagw lines {state}; they would be:")
            sys.stdout.write(ours)
            return 0
        if action == "install":
            crontab.install(user, ours, cfg.site)
            n = len(crontab.job_lines(ours))
            print(
                f"{PROGRAM}: {n} cron lines installed in {who} crontab (other lines kept); see `crontab -l`"
            )
            return 0
        removed = crontab.remove(user, cfg.site)
        print(
            f"{PROGRAM}: fionagw cron lines {'removed from' if removed else 'were not in'} {who} crontab"
        )
        return 0
    except (crontab.CronError, OSError) as exc:
        print(f"{PROGRAM}: cron {action}: {exc}", file=sys.stderr)
        return 1
