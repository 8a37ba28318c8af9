"""Tell processSingleFile about a stored object, FIONA style.

After each durable write the SCP

1. touches the study job ``site/.arrived/"<calling> <called> <ip> scp_<StudyUID>"``
   (created if missing, its mtime refreshed on every file: the arrival detector looks
   at these ages), and
2. writes ``<calling>,<called>,<ip>,<archive study dir>,<file name>\\n`` to the FIFO.

FIONA's storescpFIONA opened the pipe blocking, so a stalled reader stalled the
receiver. Here the FIFO never blocks a store for more than a moment: it is opened
non-blocking (no reader: the line is skipped), a full pipe is retried for at most
``retry_s`` and then given up, and after a give-up further lines get one try each until
the reader catches up. No file is lost that way: processSingleFile reconciles archive/
against raw/ on start and every minute. FIONA's C code also wrote a NUL after the
newline; that was a bug, not a format, and is not reproduced.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import stat
import threading
import time
from pathlib import Path

from fionagw.ops.atomic import touch
from fionagw.paths import SitePaths, clean_job_field

LOG = logging.getLogger("fionagw.receive.notify")
PIPE_BUF = getattr(os, "PIPE_BUF", None) or 4096  # writes up to this size are atomic
# The writer asks for a pipe of this size (Linux F_SETPIPE_SZ; 1 MiB is the unprivileged
# maximum by default): ~6,000 lines, so a burst faster than processSingleFile is queued
# instead of dropped (dropped lines wait for the reconcile, up to a minute). 0: leave it.
PIPE_SIZE = 1 << 20
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
_F_GETPIPE_SZ = getattr(fcntl, "F_GETPIPE_SZ", 1032)


def pipe_field(value: str) -> str:
    """An AE title or address as one field of the comma-separated pipe line."""
    return clean_job_field(value).replace(",", "_").replace("\n", "").replace("\r", "")


def pipe_line(calling: str, called: str, ip: str, study_dir: Path | str, name: str) -> str:
    return f"{pipe_field(calling)},{pipe_field(called)},{pipe_field(ip)},{study_dir},{name}\n"


class FifoWriter:
    """Non-blocking writer of lines to a named pipe, shared by all associations."""

    def __init__(
        self,
        path: Path,
        *,
        retry_s: float = 0.2,
        stall_s: float = 2.0,
        pipe_size: int | None = None,
    ) -> None:
        self.path = path
        self.retry_s = retry_s
        self.stall_s = stall_s
        self.pipe_size = PIPE_SIZE if pipe_size is None else pipe_size
        self._fd: int | None = None
        self._lock = threading.Lock()
        self._stalled_until = 0.0
        self._warned_not_fifo = False
        self.skipped = 0  # lines not written (no reader, full pipe, errors)

    def ensure(self) -> None:
        """Create the FIFO if it does not exist (the reader may start later)."""
        try:
            os.mkfifo(self.path, 0o620)
            LOG.info("created FIFO", extra={"fifo": str(self.path)})
        except FileExistsError:
            pass
        except OSError as exc:
            LOG.warning("cannot create FIFO", extra={"fifo": str(self.path), "error": exc.strerror})

    def _open(self) -> int | None:
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            self.ensure()
            return None  # a new FIFO has no reader yet
        except OSError as exc:
            if exc.errno != errno.ENXIO:  # ENXIO: nobody reads the pipe right now
                LOG.debug("cannot open FIFO", extra={"fifo": str(self.path), "error": exc.strerror})
            return None
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            os.close(fd)
            if not self._warned_not_fifo:
                self._warned_not_fifo = True
                LOG.warning(
                    "FIFO path is not a named pipe; not writing to it",
                    extra={"fifo": str(self.path)},
                )
            return None
        self._grow(fd)
        return fd

    def _grow(self, fd: int) -> None:
        if self.pipe_size <= 0:
            return
        try:
            if fcntl.fcntl(fd, _F_GETPIPE_SZ) < self.pipe_size:
                fcntl.fcntl(fd, _F_SETPIPE_SZ, self.pipe_size)
        except OSError as exc:  # EPERM above /proc/sys/fs/pipe-max-size; not Linux
            LOG.debug("cannot enlarge FIFO", extra={"fifo": str(self.path), "error": exc.strerror})

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None

    def send(self, line: str) -> bool:
        """Write one line; True when written. Never blocks longer than ``retry_s``."""
        data = line.encode("utf-8", "surrogateescape")
        if len(data) > PIPE_BUF:
            LOG.warning("pipe line longer than PIPE_BUF, not sent", extra={"bytes": len(data)})
            self.skipped += 1
            return False
        with self._lock:
            ok = self._send(data)
        if not ok:
            self.skipped += 1
        return ok

    def _send(self, data: bytes) -> bool:
        reopened = False
        now = time.monotonic()
        deadline = now + (0.0 if now < self._stalled_until else self.retry_s)
        delay = 0.001
        while True:
            if self._fd is None:
                self._fd = self._open()
                if self._fd is None:
                    return False
            try:
                os.write(self._fd, data)
                self._stalled_until = 0.0
                return True
            except BlockingIOError:  # EAGAIN: the pipe is full
                if time.monotonic() >= deadline:
                    self._stalled_until = time.monotonic() + self.stall_s
                    LOG.debug(
                        "FIFO full, line skipped (processSingleFile reconciles)",
                        extra={"fifo": str(self.path)},
                    )
                    return False
                time.sleep(delay)
                delay = min(delay * 2, 0.02)
            except BrokenPipeError:  # the reader went away: reopen once
                self._close()
                if reopened:
                    return False
                reopened = True
            except OSError as exc:
                self._close()
                LOG.debug(
                    "FIFO write failed", extra={"fifo": str(self.path), "error": exc.strerror}
                )
                return False


class Notifier:
    """Study job touch + FIFO line for every stored object."""

    def __init__(self, paths: SitePaths, fifo: FifoWriter | None = None) -> None:
        self.paths = paths
        self.fifo = fifo if fifo is not None else FifoWriter(paths.fifo)
        # (calling, called, ip, study, folder) -> (job file, pipe line without the file name):
        # the same for every image of a study, so cleaned and joined once.
        self._recent: dict[tuple[str, str, str, str, str], tuple[Path, str]] = {}

    def start(self) -> None:
        self.paths.arrived.mkdir(parents=True, exist_ok=True)
        self.fifo.ensure()

    def close(self) -> None:
        self.fifo.close()

    def arrived(
        self, calling: str, called: str, ip: str, study_uid: str, study_dir: Path, name: str
    ) -> None:
        """Never raises: the object is already safe in the archive."""
        key = (calling, called, ip, study_uid, str(study_dir))
        recent = self._recent.get(key)
        if recent is None:
            recent = (
                self.paths.study_job(calling, called, ip, study_uid),
                pipe_line(calling, called, ip, study_dir, "")[:-1],
            )
            if len(self._recent) >= 64:
                self._recent.clear()
            self._recent[key] = recent
        job, prefix = recent
        try:
            touch(job)
        except OSError as exc:
            LOG.warning(
                "cannot touch study job",
                extra={"arrived_dir": str(self.paths.arrived), "error": exc.strerror},
            )
        self.fifo.send(f"{prefix}{name}\n")
