"""What the gateway is doing right now, collected once for every consumer.

`fiona status`, the metrics endpoint, the heartbeat POST and the web Status page all call
:func:`collect_status`; each renders the same :class:`Status` its own way. Collection is
cheap (pid files, job state files, directory listings, statvfs) unless ``du=True`` asks for
the bytes under DATADIR, which walks the whole tree (the CLI does, a scrape does not).

A `fiona run` supervisor records its children (web server, metrics endpoint) in
``DATADIR/.pids/fiona-run<site>.json``; while that supervisor lives they are listed as services.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fionagw.config import SiteConfig, receiver_enabled
from fionagw.ops import daemon, process
from fionagw.ops.jobstate import JobRun, last_run, recorded_jobs
from fionagw.transfers.failures import count_failures

# (bin program, pid/log component), in start order: the classifier first, it reads the FIFO.
DAEMONS = (("processSingleFile", "processSingleFile"), ("storectl", "storescpd"))
RUN_STATE = "fiona-run"
# crontab lines that only keep a daemon up (no job record): not listed as cron jobs
KEEPALIVE_ONLY = ("mppsctl",)


@dataclass
class ServiceStatus:
    name: str
    state: str  # "running" | "down" | "disabled" | "stopped" (by an operator: not a failure)
    pid: int | None = None
    uptime_s: float | None = None
    listen: str = ""  # where it serves, e.g. "DICOM AET@host:port" or "http://127.0.0.1:8080/"
    stopped_at: float | None = None  # when an operator stopped it (state "stopped")

    @property
    def up(self) -> bool:
        return self.state == "running"


@dataclass
class JobStatus:
    job: str
    last: JobRun | None = None
    running_pid: int | None = None  # holder of the job's lock right now
    running_for_s: float | None = None


@dataclass
class DiskStatus:
    datadir: str
    free_bytes: int = 0
    total_bytes: int = 0
    free_percent: float = 100.0
    source: str = "statvfs"  # "statvfs" | "capacity" (retention.capacity_bytes)
    target_free_percent: float = 0.0
    used_bytes: int | None = None  # bytes under DATADIR (only when collected with du=True)
    error: str = ""


@dataclass
class Status:
    version: str
    site: str
    config_file: str
    collected_at: float
    services: list[ServiceStatus] = field(default_factory=list)
    jobs: list[JobStatus] = field(default_factory=list)
    queues: dict[str, int] = field(default_factory=dict)
    disk: DiskStatus | None = None

    @property
    def down(self) -> list[str]:
        """Services that should run and do not (switched off or stopped by an operator is not
        down)."""
        return [s.name for s in self.services if s.state == "down"]

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["down"] = self.down
        return d


def queue_depths(cfg: SiteConfig) -> dict[str, int]:
    """Work waiting in each on-disk queue (names are the labels `fiona status` prints)."""
    p = cfg.paths
    try:
        with open(p.incoming_list, encoding="utf-8", errors="replace") as f:
            incoming = sum(1 for line in f if line.strip())
    except FileNotFoundError:
        incoming = 0
    return {
        "arrived jobs": _count_files(p.arrived),
        "transfer requests": _count_files(p.transfer_requests),
        "failed transfers": count_failures(p).failed,  # requests, not their files
        "incoming list": incoming,
    }


def _count_files(d: Path) -> int:
    try:
        return sum(
            1 for e in os.scandir(d) if e.is_file() and not e.name.startswith((".tmp-", "."))
        )
    except OSError:
        return 0


def cron_jobs(cfg: SiteConfig) -> list[str]:
    """The crontab's jobs (daemon keep-alive lines excluded), then any other job with a record."""
    from fionagw.ops.crontab import TEMPLATE, programs

    try:
        jobs = [
            j
            for j in programs(TEMPLATE.read_text(encoding="utf-8"))
            if j not in {prog for prog, _ in DAEMONS} and j not in KEEPALIVE_ONLY
        ]
    except OSError:
        jobs = []
    return jobs + [j for j in recorded_jobs(cfg) if j not in jobs]


def run_state_path(cfg: SiteConfig) -> Path:
    return cfg.paths.state_file(RUN_STATE)


def read_run_state(cfg: SiteConfig) -> dict[str, Any] | None:
    """The live `fiona run` supervisor's record, or None (no file, or its process is gone)."""
    try:
        data = json.loads(run_state_path(cfg).read_text(encoding="utf-8"))
        pid = int(data["pid"])
    except (OSError, ValueError, TypeError, KeyError):
        return None
    return data if process.alive(pid) else None


def _services(cfg: SiteConfig) -> list[ServiceStatus]:
    out = []
    for program, component in DAEMONS:
        pidfile = cfg.paths.pidfile(component)
        st = daemon.status(pidfile, program)
        listen = (
            f"DICOM {cfg.aetitle}@{cfg.dicom_ip}:{cfg.dicom_port}" if program == "storectl" else ""
        )
        if st.running:
            out.append(ServiceStatus(program, "running", st.pid, st.uptime_s, listen))
        elif program == "storectl" and not receiver_enabled(cfg):
            out.append(ServiceStatus(program, "disabled", listen=str(cfg.paths.enabled_file)))
        elif (stopped := daemon.stopped_by_operator(pidfile)) is not None:
            out.append(ServiceStatus(program, "stopped", listen=listen, stopped_at=stopped))
        else:
            out.append(ServiceStatus(program, "down", listen=listen))
    run = read_run_state(cfg)
    if run is not None:
        out.append(
            ServiceStatus(
                "fiona run",
                "running",
                run["pid"],
                process.uptime_s(run["pid"]),
                "scheduler of cron/fiona.crontab",
            )
        )
        for name, child in sorted((run.get("children") or {}).items()):
            pid = child.get("pid")
            alive = process.alive(pid)
            out.append(
                ServiceStatus(
                    name,
                    "running" if alive else "down",
                    pid if alive else None,
                    process.uptime_s(pid) if alive else None,
                    child.get("url", ""),
                )
            )
    return out


def _jobs(cfg: SiteConfig, now: float) -> list[JobStatus]:
    from fionagw.ops.locks import lock_info

    out = []
    for job in cron_jobs(cfg):
        holder = lock_info(cfg, job)
        out.append(
            JobStatus(
                job,
                last_run(cfg, job),
                holder.pid if holder else None,
                holder.age_s(now) if holder else None,
            )
        )
    return out


def disk_status(cfg: SiteConfig, *, du: bool = False) -> DiskStatus:
    from fionagw.ops.retention import measure_space, tree_bytes

    disk = DiskStatus(str(cfg.datadir), target_free_percent=cfg.retention.target_free_percent)
    try:
        space = measure_space(cfg)
        disk.free_bytes, disk.total_bytes = space.free, space.total
        disk.free_percent, disk.source = space.free_percent, space.source
        if space.source == "capacity":
            disk.used_bytes = space.used
        elif du:
            disk.used_bytes = tree_bytes(cfg.datadir)
    except OSError as exc:
        disk.error = exc.strerror or str(exc)
    return disk


def collect_status(cfg: SiteConfig, *, du: bool = False) -> Status:
    """Services (pid, uptime), cron jobs (last run, running now), queue depths and disk."""
    from fionagw import __version__

    now = time.time()
    return Status(
        version=__version__,
        site=cfg.site,
        config_file=str(cfg.config_file),
        collected_at=now,
        services=_services(cfg),
        jobs=_jobs(cfg, now),
        queues=queue_depths(cfg),
        disk=disk_status(cfg, du=du),
    )


# --- formatting for people (fiona status, the Status page) ------------------------------------


def human_duration(seconds: float | None, unknown: str = "?") -> str:
    """3d4h05m06s, 4h05m06s, 05m06s."""
    if seconds is None:
        return unknown
    s = int(seconds)
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return (f"{d}d" if d else "") + (f"{h}h" if d or h else "") + f"{m:02d}m{s:02d}s"


def human_size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"
