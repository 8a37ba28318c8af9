"""Non-blocking locks for cron jobs (FIONA: ``flock .pids/<job><site>.lock``).

Every cron job runs its body under :func:`cron_lock`. When another copy holds the lock the
job is not needed (the other copy does the work): it exits 0 at once, logging at debug
level only, because cron mails whatever a job prints.

While a job holds its lock it keeps a sidecar ``.pids/<job><site>.lock.info`` (JSON: pid,
start time, process start ticks, argv) so that heartbeat can find a copy that has run too
long, kill it (the kernel then releases its flock) and remove the stale sidecar::

    info = lock_info(cfg, "detectStudyArrival")
    if info and info.age_s() > 3600 and info.alive():
        os.kill(info.pid, signal.SIGTERM)

The lock file itself is never deleted: unlinking a file others may be waiting on would let
two holders lock two different inodes.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType

import filelock

from fionagw.config import SiteConfig
from fionagw.ops import process
from fionagw.ops.atomic import write_bytes_atomic

log = logging.getLogger("fionagw.ops.locks")


def lock_path(cfg: SiteConfig, job: str) -> Path:
    """DATADIR/.pids/<job><site>.lock (FIONA's name, with the site suffix)."""
    if not job or "/" in job or job.startswith("."):
        raise ValueError(f"bad job name {job!r}")
    return cfg.paths.lock(job)


def info_path(cfg: SiteConfig, job: str) -> Path:
    return lock_path(cfg, job).with_name(lock_path(cfg, job).name + ".info")


@dataclass
class LockInfo:
    """Who holds a cron lock, from the sidecar file."""

    job: str
    site: str
    pid: int
    started: float  # epoch seconds when the lock was taken
    proc_start: int | None = None  # /proc/<pid>/stat start ticks of the holder
    host: str = ""
    argv: list[str] = field(default_factory=list)

    def age_s(self, now: float | None = None) -> float:
        return (time.time() if now is None else now) - self.started

    def alive(self) -> bool:
        """The holder process still exists (and is the same process, not a reused pid)."""
        return process.alive(self.pid, self.proc_start)


class CronLock:
    """Context manager for one cron job's lock; see :func:`cron_lock`."""

    def __init__(self, cfg: SiteConfig, job: str, *, exit_if_busy: bool = True) -> None:
        self.cfg, self.job, self.exit_if_busy = cfg, job, exit_if_busy
        self.path = lock_path(cfg, job)
        self.info_file = info_path(cfg, job)
        self.acquired = False
        self._lock: filelock.BaseFileLock | None = None

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(str(self.path), blocking=False)
        try:
            lock.acquire()
        except filelock.Timeout:
            log.debug(
                "another copy holds the lock; nothing to do",
                extra={"job": self.job, "lock": str(self.path)},
            )
            return False
        self._lock, self.acquired = lock, True
        info = LockInfo(
            self.job,
            self.cfg.site,
            os.getpid(),
            time.time(),
            process.start_ticks(os.getpid()),
            socket.gethostname(),
            list(sys.argv),
        )
        try:
            write_bytes_atomic(self.info_file, json.dumps(asdict(info)).encode(), durable=False)
        except OSError as exc:  # the job may still run; only heartbeat loses its view
            log.warning(
                "cannot write lock info", extra={"file": str(self.info_file), "error": exc.strerror}
            )
        return True

    def release(self) -> None:
        if self._lock is None:
            return
        try:
            self.info_file.unlink()
        except FileNotFoundError:
            pass
        self._lock.release()
        self._lock, self.acquired = None, False

    def __enter__(self) -> CronLock:
        if not self.acquire() and self.exit_if_busy:
            raise SystemExit(0)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def cron_lock(cfg: SiteConfig, job: str, *, exit_if_busy: bool = True) -> CronLock:
    """Run a cron job's body only when no other copy runs (for this site)::

        with cron_lock(cfg, "detectStudyArrival"):
            ...                       # another copy running: SystemExit(0) before this line

    With ``exit_if_busy=False`` the body always runs; test ``lock.acquired`` in it.
    """
    return CronLock(cfg, job, exit_if_busy=exit_if_busy)


def lock_info(cfg: SiteConfig, job: str) -> LockInfo | None:
    """The holder of ``job``'s lock, or None when nobody holds it (or the sidecar is missing).

    A sidecar left by a holder that was killed (SIGKILL) is stale: the lock is free again,
    so this returns None and removes the stale file.
    """
    path = lock_path(cfg, job)
    info = info_path(cfg, job)
    if not path.exists():
        return None
    probe = filelock.FileLock(str(path), blocking=False)
    try:
        probe.acquire()
    except filelock.Timeout:
        pass  # held: read who holds it
    else:
        try:
            info.unlink()
        except FileNotFoundError:
            pass
        probe.release()
        return None
    try:
        data = json.loads(info.read_text(encoding="utf-8"))
        return LockInfo(**{k: data[k] for k in LockInfo.__dataclass_fields__ if k in data})
    except (OSError, ValueError, TypeError, KeyError):
        return None
