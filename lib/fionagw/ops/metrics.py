"""Metrics: a Prometheus text endpoint and the optional heartbeat POST.

Both are built from :func:`fionagw.ops.status.collect_status` (services, jobs, queues, disk)
plus a few counters. The counters are derived, not reported by the jobs: a small state file
(``DATADIR/.pids/metrics<site>.json``) remembers what was already counted, and each update
looks only at what changed since:

* images and bytes received: archive study folders whose mtime moved (a new file renamed into
  a folder changes its mtime) are recounted, the others are not opened;
* studies arrived: ``events/<ns>-study-arrived-*.json`` names newer than the last one counted;
* send failures: files appearing (or rewritten) in ``transfers_fail/``.

So a scrape costs one listing of the archive's top level, not a walk of the archive. Counters
start at what the archive holds the first time metrics run, and only ever grow (retention
deleting a study does not decrease them), as Prometheus expects of a counter.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import threading
import time
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import filelock

from fionagw import __version__
from fionagw.config import SiteConfig
from fionagw.ops.atomic import write_bytes_atomic
from fionagw.ops.status import DiskStatus, Status, collect_status, disk_status

log = logging.getLogger("fionagw.metrics")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
STATE_NAME = "metrics"
POST_JOB = "heartbeatPost"  # its last run (jobstate) is when the last POST went out
MIN_UPDATE_S = 5.0  # scrapes closer together than this reuse the counters
RECENT_S = 2.0  # folders changed this recently are recounted again (mtime granularity)
_ARRIVED = re.compile(r"^(\d+)-study-arrived(?:-.*)?\.json$")


# --- counters --------------------------------------------------------------------------------


@dataclass
class Counters:
    images_received: int = 0
    bytes_received: int = 0
    studies_arrived: int = 0
    send_failures: int = 0
    updated: float = 0.0
    # what was counted already
    archive: dict[str, list[int]] = field(default_factory=dict)  # uid -> [files, bytes, mtime_ns]
    events_ns: int = 0
    fail_seen: dict[str, int] = field(default_factory=dict)  # file name -> mtime_ns


def _state_path(cfg: SiteConfig) -> Path:
    return cfg.paths.state_file(STATE_NAME)


def _load(path: Path) -> Counters:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Counters(**{k: data[k] for k in Counters.__dataclass_fields__ if k in data})
    except (OSError, ValueError, TypeError):
        return Counters()


def _scan_archive(cfg: SiteConfig, c: Counters, now_ns: int) -> None:
    seen: dict[str, list[int]] = {}
    for uid, e in cfg.paths.archive_studies():
        try:
            mtime = e.stat(follow_symlinks=False).st_mtime_ns
        except OSError:
            continue
        old = c.archive.get(uid)
        if old is not None and old[2] == mtime and now_ns - mtime > RECENT_S * 1e9:
            seen[uid] = old
            continue
        files = size = 0
        try:
            with os.scandir(e.path) as it:
                for f in it:
                    if f.name.startswith("."):
                        continue
                    try:
                        if f.is_file(follow_symlinks=False):
                            files += 1
                            size += f.stat(follow_symlinks=False).st_size
                    except OSError:
                        continue
        except OSError:
            continue
        before_files, before_bytes = (old[0], old[1]) if old else (0, 0)
        c.images_received += max(0, files - before_files)
        c.bytes_received += max(0, size - before_bytes)
        seen[uid] = [max(files, before_files), max(size, before_bytes), mtime]
    c.archive = seen


def _scan_events(cfg: SiteConfig, c: Counters) -> None:
    newest = c.events_ns
    try:
        names = os.listdir(cfg.paths.events)
    except FileNotFoundError:
        return
    for name in names:
        m = _ARRIVED.match(name)
        if m and int(m.group(1)) > c.events_ns:
            c.studies_arrived += 1
            newest = max(newest, int(m.group(1)))
    c.events_ns = newest


def _scan_failures(cfg: SiteConfig, c: Counters) -> None:
    seen: dict[str, int] = {}
    try:
        entries = list(os.scandir(cfg.paths.transfers_fail))
    except FileNotFoundError:
        entries = []
    for e in entries:
        if e.name.startswith("."):
            continue
        try:
            mtime = e.stat(follow_symlinks=False).st_mtime_ns
        except OSError:
            continue
        if c.fail_seen.get(e.name) != mtime:
            c.send_failures += 1  # a new failure, or a retry that failed again
        seen[e.name] = mtime
    c.fail_seen = seen


def update_counters(cfg: SiteConfig, *, min_interval: float = MIN_UPDATE_S) -> Counters:
    """The counters, brought up to date (at most every ``min_interval`` s; concurrent callers wait)."""
    path = _state_path(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    with filelock.FileLock(str(path) + ".lock", timeout=60):
        c = _load(path)
        if time.time() - c.updated < min_interval:
            return c
        _scan_archive(cfg, c, time.time_ns())
        _scan_events(cfg, c)
        _scan_failures(cfg, c)
        c.updated = time.time()
        try:
            write_bytes_atomic(path, json.dumps(asdict(c)).encode(), durable=False)
        except OSError as exc:
            log.warning("cannot save the metrics counters", extra={"error": exc.strerror})
        return c


def _count_entries(d: Path) -> int:
    try:
        with os.scandir(d) as it:
            return sum(1 for e in it if not e.name.startswith("."))
    except OSError:
        return 0


# --- Prometheus text -------------------------------------------------------------------------


def _label(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _metric_name(text: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", text.strip().lower())


class _Exposition:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(
        self,
        name: str,
        kind: str,
        help_text: str,
        samples: list[tuple[dict[str, object], float]] | float,
    ) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")
        if not isinstance(samples, list):
            samples = [({}, samples)]
        for labels, value in samples:
            text = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
            self.lines.append(
                f"{name}{{{text}}} {_number(value)}" if text else f"{name} {_number(value)}"
            )

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _number(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int) or float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def render(cfg: SiteConfig, status: Status | None = None, counters: Counters | None = None) -> str:
    """The Prometheus text exposition (format 0.0.4) of this site."""
    t0 = time.monotonic()
    st = status or collect_status(cfg)
    c = counters or update_counters(cfg)
    p = cfg.paths
    out = _Exposition()
    out.family(
        "fionagw_info",
        "gauge",
        "Version and site of this gateway.",
        [({"version": st.version, "site": st.site or "default"}, 1)],
    )
    out.family(
        "fionagw_images_received_total",
        "counter",
        "DICOM files stored in the archive.",
        c.images_received,
    )
    out.family(
        "fionagw_received_bytes_total",
        "counter",
        "Bytes of the DICOM files stored in the archive.",
        c.bytes_received,
    )
    out.family(
        "fionagw_studies_arrived_total",
        "counter",
        "Studies that completed arrival (study-arrived events).",
        c.studies_arrived,
    )
    out.family(
        "fionagw_send_failures_total",
        "counter",
        "Failed transfers (a new or rewritten file in transfers_fail).",
        c.send_failures,
    )
    out.family(
        "fionagw_transfer_requests",
        "gauge",
        "Transfer request files by state.",
        [
            (
                {"state": "pending"},
                st.queues.get("transfer requests", _count_entries(p.transfer_requests)),
            ),
            ({"state": "done"}, _count_entries(p.transfers_done)),
            (
                {"state": "failed"},
                st.queues.get("failed transfers", _count_entries(p.transfers_fail)),
            ),
        ],
    )
    out.family(
        "fionagw_queue_depth",
        "gauge",
        "Work waiting in each on-disk queue.",
        [({"queue": _metric_name(k)}, v) for k, v in st.queues.items()],
    )
    d = st.disk
    if d is not None and not d.error:
        out.family(
            "fionagw_disk_free_bytes",
            "gauge",
            f"Free bytes for DATADIR ({d.source}).",
            d.free_bytes,
        )
        out.family(
            "fionagw_disk_total_bytes",
            "gauge",
            f"Size of DATADIR's space ({d.source}).",
            d.total_bytes,
        )
        out.family(
            "fionagw_disk_free_ratio",
            "gauge",
            "Free fraction of DATADIR's space.",
            round(d.free_percent / 100.0, 6),
        )
        out.family(
            "fionagw_retention_target_free_ratio",
            "gauge",
            "clearOldFiles frees space down to this.",
            d.target_free_percent / 100.0,
        )
    out.family(
        "fionagw_service_up",
        "gauge",
        "1 when the service runs (disabled receiver: 0).",
        [({"service": s.name}, s.up) for s in st.services],
    )
    runs = [j for j in st.jobs if j.last is not None]
    out.family(
        "fionagw_job_last_duration_seconds",
        "gauge",
        "Duration of each cron job's last run.",
        [({"job": j.job}, j.last.seconds) for j in runs],
    )  # type: ignore[union-attr]
    out.family(
        "fionagw_job_last_success",
        "gauge",
        "1 when the job's last run succeeded.",
        [({"job": j.job}, j.last.ok) for j in runs],
    )  # type: ignore[union-attr]
    out.family(
        "fionagw_job_last_run_timestamp_seconds",
        "gauge",
        "When the job's last run ended (epoch).",
        [({"job": j.job}, round(j.last.finished, 3)) for j in runs],
    )  # type: ignore[union-attr]
    out.family(
        "fionagw_job_running",
        "gauge",
        "1 while the job holds its lock.",
        [({"job": j.job}, j.running_pid is not None) for j in st.jobs],
    )
    out.family(
        "fionagw_scrape_duration_seconds",
        "gauge",
        "Time spent collecting these metrics.",
        round(time.monotonic() - t0, 6),
    )
    return out.text()


class MetricsServer:
    """GET /metrics on metrics.host:metrics.port, a small threaded HTTP server in `fiona run`."""

    def __init__(self, cfg: SiteConfig) -> None:
        self.cfg = cfg
        self.httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._disk: tuple[float, DiskStatus] | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        host = self.cfg.metrics.host
        host = f"[{host}]" if ":" in host else host
        port = self.httpd.server_address[1] if self.httpd else self.cfg.metrics.port
        return f"http://{host}:{port}/metrics"

    def bind(self) -> None:
        """Open the port now (so a port in use fails `fiona run` at start, not later)."""
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                if self.path.split("?", 1)[0] != "/metrics":
                    self._send(
                        404,
                        "text/plain; charset=utf-8",
                        b"not found: the metrics are at /metrics\n",
                    )
                    return
                try:
                    body = server.text().encode("utf-8")
                except Exception as exc:  # noqa: BLE001 - a scrape must get an answer, not a hang
                    log.exception("metrics collection failed")
                    self._send(
                        500,
                        "text/plain; charset=utf-8",
                        f"metrics collection failed: {exc}\n".encode(),
                    )
                    return
                self._send(200, CONTENT_TYPE, body)

            def _send(self, code: int, ctype: str, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence per-request lines
                pass

        class Server(ThreadingHTTPServer):
            address_family = socket.AF_INET6 if ":" in self.cfg.metrics.host else socket.AF_INET
            daemon_threads = True

        self.httpd = Server((self.cfg.metrics.host, self.cfg.metrics.port), Handler)

    def text(self) -> str:
        with self._lock:
            status = collect_status(self.cfg, du=False)
            if status.disk is not None and status.disk.source == "capacity":
                # capacity mode measures by walking DATADIR: once a minute is plenty
                now = time.monotonic()
                if self._disk is None or now - self._disk[0] > 60:
                    self._disk = (now, disk_status(self.cfg))
                status.disk = self._disk[1]
            return render(self.cfg, status)

    def start(self) -> None:
        if self.httpd is None:
            self.bind()
        assert self.httpd is not None
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, name="metrics", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


# --- heartbeat POST --------------------------------------------------------------------------


class PostError(Exception):
    """The heartbeat POST failed; str() is one line without the token."""


def _meminfo() -> dict[str, int]:
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


def _cpu_times() -> tuple[int, int] | None:
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return sum(values), idle


def cpu_percent(interval: float = 0.25) -> float | None:
    """Busy CPU share over ``interval`` seconds, all cores (from /proc/stat)."""
    a = _cpu_times()
    time.sleep(interval)
    b = _cpu_times()
    if a is None or b is None or b[0] == a[0]:
        return None
    return round(100.0 * (1 - (b[1] - a[1]) / (b[0] - a[0])), 1)


def system_metrics(cfg: SiteConfig, disk: DiskStatus | None) -> dict[str, Any]:
    mem = _meminfo()
    load = os.getloadavg()
    try:
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        uptime = None
    total, avail = mem.get("MemTotal", 0), mem.get("MemAvailable", 0)
    return {
        "cpu": {
            "count": os.cpu_count(),
            "load1": round(load[0], 2),
            "load5": round(load[1], 2),
            "load15": round(load[2], 2),
            "percent": cpu_percent(),
        },
        "memory": {
            "total_bytes": total,
            "available_bytes": avail,
            "used_percent": round(100.0 * (total - avail) / total, 1) if total else None,
            "swap_total_bytes": mem.get("SwapTotal", 0),
            "swap_free_bytes": mem.get("SwapFree", 0),
        },
        "disk": None
        if disk is None
        else {
            "path": disk.datadir,
            "free_bytes": disk.free_bytes,
            "total_bytes": disk.total_bytes,
            "free_percent": round(disk.free_percent, 2),
            "source": disk.source,
            "error": disk.error,
        },
        "uptime_s": uptime,
    }


def heartbeat_payload(cfg: SiteConfig, status: Status | None = None) -> dict[str, Any]:
    """The JSON document of one heartbeat POST (no PHI: names of services, jobs and queues only)."""
    st = status or collect_status(cfg)
    hb = cfg.heartbeat
    payload: dict[str, Any] = {
        "hostname": socket.gethostname(),
        "version": st.version,
        "site": st.site,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "healthy": not st.down,
        "down": st.down,
    }
    if hb.post_system:
        payload["system"] = system_metrics(cfg, st.disk)
    if hb.post_services:
        payload["services"] = [
            {
                "name": s.name,
                "state": s.state,
                "pid": s.pid,
                "uptime_s": round(s.uptime_s) if s.uptime_s is not None else None,
            }
            for s in st.services
        ]
        payload["jobs"] = [
            {
                "job": j.job,
                "ok": j.last.ok if j.last else None,
                "last_run": round(j.last.finished) if j.last else None,
                "seconds": j.last.seconds if j.last else None,
                "running": j.running_pid is not None,
            }
            for j in st.jobs
        ]
    if hb.post_queues:
        payload["queues"] = {_metric_name(k): v for k, v in st.queues.items()}
    return payload


def _token(path: Path) -> str:
    try:
        st = path.stat()
        if st.st_mode & 0o077:
            raise PostError(
                f"{path}: heartbeat.post_token_file must be readable by its owner only "
                f"(chmod 600 {path})"
            )
        token = path.read_text(encoding="utf-8").strip().splitlines()
    except OSError as exc:
        raise PostError(f"{path}: heartbeat.post_token_file: {exc.strerror}") from None
    if not token or not token[0].strip():
        raise PostError(f"{path}: heartbeat.post_token_file is empty")
    return token[0].strip()


def post_heartbeat(cfg: SiteConfig, payload: dict[str, Any] | None = None) -> str:
    """POST one report to heartbeat.post_url; returns a one-line outcome or raises PostError."""
    import requests

    hb = cfg.heartbeat
    if not hb.post_url:
        raise PostError("heartbeat.post_url is not set")
    headers = {"User-Agent": f"fionagw/{__version__}"}
    token = _token(hb.post_token_file) if hb.post_token_file else ""
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = payload if payload is not None else heartbeat_payload(cfg)
    try:
        r = requests.post(
            hb.post_url,
            json=body,
            headers=headers,
            timeout=hb.post_timeout_s,
            verify=str(hb.post_ca_bundle) if hb.post_ca_bundle else True,
        )
    except requests.RequestException as exc:
        text = str(exc).replace(token, "***") if token else str(exc)
        ssl_reason = re.search(r"\[SSL: [A-Z_]+\][^'\")]*", text)
        if isinstance(exc, requests.exceptions.SSLError):
            why = (
                f"TLS verification failed: {ssl_reason.group(0).strip() if ssl_reason else text[:200]}"
                " (a private CA goes in heartbeat.post_ca_bundle)"
            )
        elif isinstance(exc, requests.Timeout):
            why = f"no answer within {hb.post_timeout_s:g} s"
        elif isinstance(exc, requests.ConnectionError):
            why = "cannot connect"
        else:
            why = f"{type(exc).__name__}: {text[:200]}"
        raise PostError(f"heartbeat POST to {hb.post_url} failed: {why}") from None
    if r.status_code >= 300:
        raise PostError(f"heartbeat POST to {hb.post_url}: HTTP {r.status_code} {r.reason}")
    return f"HTTP {r.status_code}"


def post_if_due(cfg: SiteConfig, *, force: bool = False, now: float | None = None) -> str | None:
    """POST when post_interval_seconds have passed since the last attempt (success or not: a
    failure is retried at the next interval). None when not due, or another process is posting."""
    from fionagw.ops.jobstate import last_run, record_run

    if not cfg.heartbeat.post_url:
        return None
    now = time.time() if now is None else now
    last = last_run(cfg, POST_JOB)
    if not force and last is not None and now - last.started < cfg.heartbeat.post_interval_seconds:
        return None
    cfg.paths.pids.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(cfg.paths.lock(POST_JOB)), blocking=False)
    try:
        lock.acquire()
    except filelock.Timeout:
        return None
    started, t0 = time.time(), time.monotonic()
    try:
        try:
            outcome = post_heartbeat(cfg)
        except PostError as exc:
            record_run(cfg, POST_JOB, False, time.monotonic() - t0, str(exc), started)
            log.warning(
                "heartbeat POST failed; retried at the next interval", extra={"error": str(exc)}
            )
            raise
        record_run(cfg, POST_JOB, True, time.monotonic() - t0, outcome, started)
        log.info("heartbeat POST sent", extra={"outcome": outcome})
        return outcome
    finally:
        lock.release()


class HeartbeatPoster:
    """A thread of `fiona run` that calls :func:`post_if_due` (checks every ``tick`` seconds)."""

    def __init__(self, cfg: SiteConfig, tick: float = 5.0) -> None:
        self.cfg, self.tick = cfg, tick
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _loop(self) -> None:
        while True:
            try:
                post_if_due(self.cfg)
            except PostError:
                pass  # logged; the next interval tries again
            except Exception:  # noqa: BLE001 - the poster must survive anything
                log.exception("heartbeat POST failed unexpectedly")
            if self._stop.wait(self.tick):
                return

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="heartbeat-post", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.cfg.heartbeat.post_timeout_s + 5)
