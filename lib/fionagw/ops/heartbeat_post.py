"""The optional heartbeat POST: a JSON report of the site to heartbeat.post_url.

Sent by `fiona run` (:class:`HeartbeatPoster`, a thread) or, in crontab mode, by the heartbeat
job and `fiona metrics --post-if-due`; all of them go through :func:`post_if_due`, so reports
keep heartbeat.post_interval_seconds apart however many processes try.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
from pathlib import Path
from typing import Any

import filelock

from fionagw import __version__
from fionagw.config import ConfigError, SiteConfig
from fionagw.config.secrets import read_secret_line
from fionagw.ops import sysinfo
from fionagw.ops.prometheus import metric_name
from fionagw.ops.status import DiskStatus, Status, collect_status

LOGGER = logging.getLogger(__name__)

POST_JOB = "heartbeatPost"  # its last run (jobstate) is when the last POST went out


class PostError(Exception):
    """The heartbeat POST failed; str() is one line without the token."""


def system_metrics(cfg: SiteConfig, disk: DiskStatus | None) -> dict[str, Any]:
    """The report's "system" section: CPU, memory, DATADIR's disk, uptime."""
    mem = sysinfo.meminfo()
    load = os.getloadavg()
    total, avail = mem.get("MemTotal", 0), mem.get("MemAvailable", 0)
    return {
        "cpu": {
            "count": os.cpu_count(),
            "load1": round(load[0], 2),
            "load5": round(load[1], 2),
            "load15": round(load[2], 2),
            "percent": sysinfo.cpu_percent(),
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
        "uptime_s": sysinfo.uptime_s(),
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
        payload["queues"] = {metric_name(k): v for k, v in st.queues.items()}
    return payload


def _token(path: Path) -> str:
    try:
        return read_secret_line(path, "read the heartbeat.post_token_file")
    except ConfigError as exc:
        raise PostError(str(exc)) from None


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
            LOGGER.warning(
                "heartbeat POST failed; retried at the next interval", extra={"error": str(exc)}
            )
            raise
        record_run(cfg, POST_JOB, True, time.monotonic() - t0, outcome, started)
        LOGGER.info("heartbeat POST sent", extra={"outcome": outcome})
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
                LOGGER.exception("heartbeat POST failed unexpectedly")
            if self._stop.wait(self.tick):
                return

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="heartbeat-post", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.cfg.heartbeat.post_timeout_s + 5)
