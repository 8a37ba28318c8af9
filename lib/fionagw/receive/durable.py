"""One flush per image on the critical path: the receiver's seal, group commit and recovery.

With ``receiver.durability: flush`` (the default) a C-STORE is answered Success only for bytes
that survive a power loss, with a single fsync before the answer:

1. **Temp files ahead of time.** The committer thread keeps a pool of empty temp files in
   ``site/temp`` and fsyncs that folder once per refill: a temp file's *name* is durable
   before any data goes into it (:meth:`Committer.take_temp`).
2. **Seal + one fsync + rename.** When the data set is complete and checked, its temp file
   gets a seal, the extended attribute :data:`SEAL` (length, CRC-32 of the bytes, the place in
   the archive, the peer), its final mode, and ONE fsync (data, size, mode and seal); it is
   renamed into ``archive/scp_<Study>/`` (no flush) and Success goes out.
3. **Group commit.** The committer thread fsyncs each study folder once for every rename
   into it that is ready, however many associations they came from; then the FIFO line goes
   to processSingleFile (from a thread of its own).
4. **Recovery** (:func:`recover`, when the receiver starts and stops): a power loss can undo
   a rename not yet flushed, never half of it; a temp file whose seal matches its length and
   CRC is renamed to the place its seal names; any other temp file (a data set cut off, or
   never answered Success) is removed. The seal stays on the archived file: removing it
   could reach the disk before the rename does, and leave the file unsealed in site/temp.

The crash argument is in docs/architecture.md ("Durability of the receiver"). A filesystem
without user extended attributes gets the two-flush synchronous commit instead
(:func:`fionagw.receive.store.commit`), as does ``durability: os`` without any flush.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

from fionagw.ops.perms import FILE_MODE
from fionagw.paths import SitePaths
from fionagw.receive import flushes, store
from fionagw.receive.notify import Notifier

LOGGER = logging.getLogger(__name__)
SEAL = "user.fionagw.seal"
POOL_SIZE = 64  # temp files made ahead; refilled (one folder fsync) when half are used
# The group commit waits this long for more sealed files to share one folder flush, or until
# GATHER_MAX are ready. Success does not wait for it (a sealed file is safe in site/temp), so
# it can be long enough that folder flushes stop competing with the critical-path ones.
GATHER_S = 0.05
GATHER_MAX = 1024
_UNSUPPORTED = frozenset({errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM})


class SealUnsupported(Exception):
    """The temp folder's filesystem keeps no user extended attributes."""


@dataclass(frozen=True)
class Sealed:
    """An object sealed and renamed into the archive, for the group commit's folder flush."""

    tmp: str
    study_dir: Path
    name: str
    study_uid: str
    calling: str
    called: str
    ip: str
    size: int


def crc(data: memoryview | bytes, value: int = 0) -> int:
    return zlib.crc32(data, value)


def seal(fd: int, item: Sealed, checksum: int) -> None:
    """Seal the complete temp file ``fd`` and make it durable (the one flush of the image).

    SealUnsupported when the filesystem has no user xattrs (nothing was flushed then).
    """
    record = {
        "size": item.size,
        "crc": checksum,
        "study": item.study_dir.name,
        "name": item.name,
        "calling": item.calling,
        "called": item.called,
        "ip": item.ip,
        "t": time.time_ns(),  # the order of two copies of one instance, for recovery
    }
    try:
        os.setxattr(fd, SEAL, json.dumps(record, separators=(",", ":")).encode())
    except OSError as exc:
        if exc.errno in _UNSUPPORTED:
            raise SealUnsupported from None
        raise
    os.fchmod(fd, FILE_MODE)
    flushes.fsync_file(fd)
    if not _linked(fd):  # its name is gone: nothing would reach the archive
        raise FileNotFoundError(errno.ENOENT, "temp file removed while in use", item.tmp)


class Committer:
    """The receiver's committer thread (temp file pool, folder fsyncs) and FIFO thread.

    ``durable`` False (``durability: os``): the pool is made without folder fsyncs and
    nothing is submitted (the associations commit synchronously, without flushes).
    """

    def __init__(self, paths: SitePaths, notifier: Notifier, *, durable: bool) -> None:
        self.paths = paths
        self.tempdir = str(paths.temp)
        self.notifier = notifier
        self.durable = durable
        self.sealing = durable  # False once the filesystem refused a seal
        self._cond = threading.Condition()
        self._ready: list[Sealed] = []
        self._pool: list[tuple[str, int]] = []
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="scp-commit", daemon=True)
        # The FIFO lines go out from a thread of their own: a stalled processSingleFile
        # must not hold up the moves into the archive (nor, through them, the temp pool).
        self._announce: list[Sealed] = []
        self._announce_cond = threading.Condition()
        self._announcer = threading.Thread(
            target=self._announce_loop, name="scp-notify", daemon=True
        )

    def start(self) -> None:
        self._refill()
        self._thread.start()
        self._announcer.start()

    def close(self) -> None:
        """Commit what is ready, announce it, stop the threads, remove the unused temp files."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join()
        with self._announce_cond:
            self._announce.append(_END)
            self._announce_cond.notify()
        if self._announcer.is_alive():
            self._announcer.join()
        with self._cond:
            pool, self._pool = self._pool, []
        for path, fd in pool:
            os.close(fd)
            _unlink(path)

    # --- the associations' side -----------------------------------------------------------

    def take_temp(self) -> tuple[str, int, bool]:
        """(path, fd, whether its name is durable already) of a new temp file; fd -1 when it
        could not be made (tried again at the first write, which answers the error)."""
        with self._cond:
            if len(self._pool) <= POOL_SIZE // 2:
                self._cond.notify()
            while self._pool:
                path, fd = self._pool.pop()
                if _linked(fd):
                    return path, fd, True
                os.close(fd)  # removed under us (a clean-up of old temp files)
        made = store.open_temp(self.tempdir)
        if made is None:
            return store.temp_path(self.tempdir), -1, False
        return *made, False

    def submit(self, item: Sealed) -> None:
        with self._cond:
            self._ready.append(item)
            self._cond.notify()

    # --- the thread --------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not (self._ready or self._stopping or len(self._pool) <= POOL_SIZE // 2):
                    self._cond.wait()
                # A moment for more to be ready: one folder fsync then covers them all (the
                # senders have their Success already; only the move and FIFO line wait).
                deadline = time.monotonic() + GATHER_S
                while (
                    self._ready
                    and not self._stopping
                    and len(self._ready) < GATHER_MAX
                    and len(self._pool) > POOL_SIZE // 2  # a refill must not wait
                ):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                batch, self._ready = self._ready, []
                stopping = self._stopping
                refill = len(self._pool) <= POOL_SIZE // 2 and not stopping
            try:
                if refill:  # first: the associations would make (and flush) their own
                    self._refill()
                if batch:
                    self._commit(batch)
            except Exception:  # a bug: a rename not flushed is finished by the recovery
                LOGGER.exception("group commit failed unexpectedly")
                time.sleep(0.1)
            if stopping:
                with self._cond:
                    if not self._ready:
                        return

    def _commit(self, batch: list[Sealed]) -> None:
        folders = dict.fromkeys(item.study_dir for item in batch)
        for folder in folders:  # one flush per folder covers every rename into it
            _fsync_folder_logged(folder)
        with self._announce_cond:
            self._announce.extend(batch)
            self._announce_cond.notify()

    def _announce_loop(self) -> None:
        while True:
            with self._announce_cond:
                while not self._announce:
                    self._announce_cond.wait()
                batch, self._announce = self._announce, []
            for item in batch:
                if item is _END:
                    return
                self.notifier.arrived(
                    item.calling, item.called, item.ip, item.study_uid, item.study_dir, item.name
                )

    def _refill(self) -> None:
        made: list[tuple[str, int]] = []
        with self._cond:
            want = POOL_SIZE - len(self._pool)
        for _ in range(want):
            temp = store.open_temp(self.tempdir)
            if temp is None:
                break  # the folder is full or gone: the associations try (and answer) on their own
            made.append(temp)
        if made and self.durable:
            try:
                flushes.fsync_folder(self.tempdir)
            except OSError:
                for path, fd in made:
                    os.close(fd)
                    _unlink(path)
                return
        with self._cond:
            self._pool.extend(made)


_END = Sealed("", Path(), "", "", "", "", "", 0)  # stops the announcer


def _fsync_folder_logged(folder: Path | str) -> None:
    try:
        flushes.fsync_folder(folder)
    except OSError as exc:  # the data is durable in its sealed temp file: recovery finishes
        LOGGER.warning("cannot fsync an archive folder: %s", exc.strerror)


def _linked(fd: int) -> bool:
    try:
        return os.fstat(fd).st_nlink > 0
    except OSError:
        return False


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


# --- recovery ----------------------------------------------------------------------------


def read_seal(path: str) -> dict | None:
    """The seal of a temp file if its length and CRC-32 match it, else None."""
    try:
        record = json.loads(os.getxattr(path, SEAL))
        size, checksum = int(record["size"]), int(record["crc"])
        study, name = str(record["study"]), str(record["name"])
        with open(path, "rb") as f:
            value, total = 0, 0
            while chunk := f.read(1 << 20):
                value, total = crc(chunk, value), total + len(chunk)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if total != size or value != checksum:
        return None
    if not study.startswith("scp_") or "/" in study + name or name.startswith("."):
        return None  # not a place this receiver would have sealed
    if study in (".", "..") or name in ("", ".", ".."):
        return None
    return record


def recover(paths: SitePaths, notifier: Notifier | None = None) -> tuple[int, int]:
    """Finish the commit of every sealed temp file, remove every other one; (moved, removed).

    Run while no association stores (the receiver's start and stop). A sealed file whose move
    fails stays for the next time (logged).
    """
    temp = str(paths.temp)
    sealed: list[tuple[int, str, dict]] = []
    removed = 0
    try:
        with os.scandir(temp) as entries:
            names = [e.path for e in entries if e.name.startswith(store.TEMP_PREFIX)]
    except OSError:
        return 0, 0
    for path in names:
        record = read_seal(path)
        if record is None:
            _unlink(path)
            removed += 1
        else:
            sealed.append((int(record.get("t", 0)), path, record))
    moved = 0
    for _t, path, record in sorted(sealed, key=lambda s: s[0]):  # older copy first
        study_dir = paths.archive / record["study"]
        try:
            store.commit(path, study_dir, record["name"], check_replaced=False)
        except OSError as exc:
            LOGGER.warning(
                "recovery cannot move a sealed object into the archive; kept in site/temp: %s",
                exc.strerror,
            )
            continue
        moved += 1
        if notifier is not None:
            notifier.arrived(
                str(record.get("calling", "")),
                str(record.get("called", "")),
                str(record.get("ip", "")),
                record["study"].removeprefix("scp_"),
                study_dir,
                record["name"],
            )
    if moved or removed:
        LOGGER.info("receiver recovery", extra={"recovered": moved, "temp_files_removed": removed})
    return moved, removed
