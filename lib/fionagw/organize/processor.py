"""The processSingleFile daemon: read the FIFO, file each instance, reconcile on a timer.

The SCP never waits for us: when the FIFO has no reader or is full it drops the
notification. Nothing is lost because we reconcile: on start, and every minute for the
study folders that changed, any archive file without a raw/ link is processed.

A file the classifier cannot handle (it raises something unexpected) is a poison file: it
is moved to site/broken/ with its reason, once, instead of being retried with a traceback at
every start and reconcile. Only an OSError of the machine (a full disk, permissions: nothing
wrong with the file, see POISON_ERRNOS) leaves it in the archive for the next reconcile; an
OSError the file's values cause (a name too long for the filesystem) makes it poison too.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import filelock

from fionagw.classify import Connection, RuleSet
from fionagw.config import SiteConfig
from fionagw.ops.log_filter import format_exception_safe, safe_exception_text
from fionagw.organize.tree import Organizer, Outcome, parse_pipe_line

LOGGER = logging.getLogger(__name__)

RECONCILE_EVERY_S = 60.0
FULL_RECONCILE_EVERY_S = 3600.0
UNKNOWN = Connection("unknown", "unknown", "unknown")
# OSErrors that a file's values cause (a PatientID too long for a folder name, bytes the
# filesystem refuses in a name): the file is poison. Any other OSError is the machine's (a
# full disk, permissions, a damaged tree): the file stays in the archive and is retried.
POISON_ERRNOS = frozenset({errno.ENAMETOOLONG, errno.EILSEQ, errno.EINVAL, errno.EOVERFLOW})


class WriterLockHeld(RuntimeError):
    pass


def writer_lock(cfg: SiteConfig) -> filelock.FileLock:
    """Held by whoever writes raw/ (the daemon, or a rebuild): one writer per site."""
    cfg.paths.pids.mkdir(parents=True, exist_ok=True)
    return filelock.FileLock(str(cfg.paths.lock("processSingleFile.writer")))


def ensure_fifo(path: Path) -> None:
    try:
        if stat.S_ISFIFO(os.stat(path).st_mode):
            return
        raise OSError(errno.EEXIST, f"{path} exists and is not a FIFO")
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(path, 0o620)


def archive_files(study_dir: Path) -> Iterator[Path]:
    try:
        with os.scandir(study_dir) as it:
            for entry in it:
                if not entry.name.startswith(".") and entry.is_file(follow_symlinks=False):
                    yield Path(entry.path)
    except FileNotFoundError:
        return


def linked_sops(raw_study: Path) -> set[str]:
    """SOP UIDs that already have a raw/ link in any series of the study."""
    sops: set[str] = set()
    try:
        with os.scandir(raw_study) as it:
            for series in it:
                if series.is_dir(follow_symlinks=False):
                    sops.update(e.name for e in os.scandir(series.path))
    except FileNotFoundError:
        pass
    return sops


def file_one(organizer: Organizer, path: Path, connection: Connection) -> Outcome:
    """``organizer.process`` that never raises: a poison file goes to broken/ (once), an
    OSError is logged and the file stays in the archive for the next reconcile."""
    try:
        return organizer.process(path, connection)
    except OSError as exc:
        if exc.errno in POISON_ERRNOS:
            return _poison(organizer, path, exc)
        LOGGER.error(
            "processing failed; will retry at the next reconcile",
            extra={"file": str(path), "error": safe_exception_text(exc)},
        )
        return Outcome(path, False, reason=type(exc).__name__)
    except Exception as exc:
        return _poison(organizer, path, exc)


def _poison(organizer: Organizer, path: Path, exc: BaseException) -> Outcome:
    """Move ``path`` to broken/: one log line with the exception's type and where it was
    raised; the reason file adds the frames (messages withheld: they may quote data)."""
    reason = f"classifier failed: {safe_exception_text(exc)}"
    try:
        organizer.move_aside(
            path,
            reason,
            message="file the classifier cannot handle: moved aside",
            details=format_exception_safe(exc),
        )
    except OSError as move_error:  # broken/ not writable: the next reconcile tries again
        LOGGER.error(
            "file the classifier cannot handle could not be moved aside",
            extra={"file": str(path), "reason": reason, "error": safe_exception_text(move_error)},
        )
    return Outcome(path, False, reason=reason)


class Processor:
    def __init__(self, cfg: SiteConfig) -> None:
        self.cfg = cfg
        self.organizer = Organizer(cfg, RuleSet.load(cfg.classify_rules))
        self.processed = 0
        self.failed = 0
        self._last_reconcile = 0.0
        self._last_full = 0.0

    def handle(self, path: Path, connection: Connection) -> None:
        outcome = file_one(self.organizer, path, connection)  # one bad file never stops us
        if outcome.ok:
            self.processed += 1
        else:
            self.failed += 1

    def handle_line(self, line: str) -> None:
        parsed = parse_pipe_line(line)
        if parsed is None:
            if line.strip("\0\r\n "):
                LOGGER.error(
                    "pipe line skipped: expected 5 comma-separated fields or a path",
                    extra={"line": line[:300]},
                )
            return
        connection, path = parsed
        self.handle(path, connection)

    def reconcile(self, full: bool) -> int:
        """Process every archive file that has no raw/ link; return how many were found."""
        since = 0.0 if full else self._last_reconcile - 5.0
        started = time.time()
        found = 0
        for study_uid, entry in self.cfg.paths.archive_studies():
            if not full and entry.stat().st_mtime < since:
                continue
            linked = linked_sops(self.cfg.paths.raw_study_dir(study_uid))
            for f in archive_files(Path(entry.path)):
                sop = f.name.split(".", 1)[1] if "." in f.name else f.name
                if sop not in linked:
                    found += 1
                    self.handle(f, UNKNOWN)
            self.flush(force=False)
        self.flush(force=True)
        self._last_reconcile = started
        if full:
            self._last_full = started
        if found:
            LOGGER.info(
                "reconcile processed files that had no raw/ link",
                extra={"count": found, "full": full},
            )
        return found

    def flush(self, force: bool) -> None:
        try:
            self.organizer.flush(force=force)
        except Exception:  # the links were not made: the reconcile pass retries these files
            LOGGER.exception(
                "writing series JSON or raw/ links failed; will retry at the next reconcile"
            )

    def maybe_reconcile(self) -> None:
        now = time.time()
        if now - self._last_full >= FULL_RECONCILE_EVERY_S:
            self.reconcile(full=True)
        elif now - self._last_reconcile >= RECONCILE_EVERY_S:
            self.reconcile(full=False)


def serve_processor(cfg: SiteConfig, stop: threading.Event, ready: Callable[[], None]) -> None:
    """Run until ``stop``: FIFO lines first, reconcile when due."""
    lock = writer_lock(cfg)
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        raise WriterLockHeld(
            f"another process writes raw/ for this site ({lock.lock_file})"
        ) from None
    try:
        processor = Processor(cfg)
        fifo = cfg.paths.fifo
        ensure_fifo(fifo)
        rfd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        # Holding a writer end ourselves means read() never sees EOF between senders.
        wfd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        LOGGER.info(
            "processSingleFile started", extra={"fifo": str(fifo), "rules": str(cfg.classify_rules)}
        )
        ready()
        processor.reconcile(full=True)
        pending = b""
        try:
            while not stop.is_set():
                timeout = 0.2 if processor.organizer.pending else 1.0
                readable, _, _ = select.select([rfd], [], [], timeout)
                if readable:
                    try:
                        chunk = os.read(rfd, 65536)
                    except BlockingIOError:
                        chunk = b""
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    for raw in lines:
                        processor.handle_line(raw.decode("utf-8", errors="replace"))
                        if stop.is_set():
                            break
                    processor.flush(force=False)
                else:  # idle: nothing may wait for more images
                    processor.flush(force=True)
                processor.maybe_reconcile()
        finally:
            processor.flush(force=True)
            os.close(rfd)
            os.close(wfd)
            LOGGER.info(
                "processSingleFile stopped",
                extra={"processed": processor.processed, "failed": processor.failed},
            )
    finally:
        lock.release()


def send_to_fifo(cfg: SiteConfig, line: str, timeout: float = 5.0) -> None:
    """Write one pipe line for the daemon (processSingleFile send)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            fd = os.open(cfg.paths.fifo, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError as exc:
            if exc.errno not in (errno.ENXIO, errno.ENOENT) or time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    try:
        data = (line.rstrip("\n") + "\n").encode()
        while True:
            try:
                os.write(fd, data)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
    finally:
        os.close(fd)
