"""Where a C-STORE data set goes while it arrives: a temp file in ``site/temp``, then the archive.

Fragments are read from the connection straight into the association's buffer
(:data:`FLUSH_BYTES`) and written to the file whenever it is full: an ordinary image is written
with one system call when it is complete, a huge object never sits in memory. Once the last
fragment is in, :func:`commit` walks it whole (:func:`fionagw.receive.store.check_received`,
through a memory map: nothing is copied) and then either seals it with its one flush for the
group commit (:mod:`fionagw.receive.durable`) or commits it synchronously.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Callable

from fionagw.paths import SitePaths
from fionagw.receive import durable, flushes, store

LOGGER = logging.getLogger(__name__)

FLUSH_BYTES = 1 << 20  # a data set up to this size is kept in memory until complete


def new_buffer() -> memoryview:
    """The buffer one association reuses for every data set."""
    return memoryview(bytearray(FLUSH_BYTES))


def remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


class Sink:
    """One C-STORE data set on its way to a temp file.

    A write error (disk full, quota, the folder gone) is remembered, the rest of the data set is read and dropped, and the
    SCP answers a failure status once the request is complete.
    """

    __slots__ = ("path", "fd", "view", "filled", "size", "error", "crc", "entry_durable")

    def __init__(
        self,
        buffer: memoryview,
        meta: bytes,
        temp: tuple[str, int],
        *,
        checksum: bool = False,
        entry_durable: bool = False,
    ) -> None:
        self.path, self.fd = temp  # fd -1: the file is created at the first write
        self.crc: int | None = 0 if checksum else None  # CRC-32 of the bytes, for the seal
        self.entry_durable = entry_durable  # the temp file's name is fsynced in its folder
        self.view = buffer
        self.filled = len(meta)
        buffer[: self.filled] = meta
        self.size = 0  # bytes in the file so far
        self.error: OSError | None = None

    def read_from(self, readinto: Callable[[memoryview], int | None], size: int) -> bool:
        """Read ``size`` bytes of a fragment from the connection into the file; False when
        the connection ended first."""
        view, capacity = self.view, len(self.view)
        while size:
            start = self.filled
            n = min(size, capacity - start)
            if readinto(view[start : start + n]) != n:
                return False
            size -= n
            self.filled = start + n
            if self.filled == capacity:
                self._flush()
        return True

    def _flush(self) -> None:
        if self.error is not None:
            self.filled = 0  # the rest of a failed data set is dropped
            return
        try:
            if self.fd < 0:
                self.fd = os.open(self.path, store.TEMP_FLAGS, 0o600)
            view = self.view[: self.filled]
            if self.crc is not None:
                self.crc = durable.crc(view, self.crc)
            while view:
                view = view[os.write(self.fd, view) :]
        except OSError as exc:
            self.fail(exc)
        self.size += self.filled
        self.filled = 0

    def finish(self) -> None:
        """Write what is left (the data are lost if ``error`` is set)."""
        self._flush()

    def fail(self, exc: OSError) -> None:
        if self.error is None:
            self.error = exc
        self.discard()

    def close(self) -> None:
        if self.fd >= 0:
            try:
                os.close(self.fd)
            except OSError as exc:
                if self.error is None:
                    self.error = exc
            self.fd = -1

    def discard(self) -> None:
        """Drop the data; close and remove the temp file (frees the space at once)."""
        self.close()
        self.filled = 0
        remove(self.path)


def commit(
    sink: Sink,
    paths: SitePaths,
    sop_class: str,
    sop_uid: str,
    *,
    committer: durable.Committer,
    peer: tuple[str, str, str],
    check_replaced: bool,
) -> tuple[store.Stored, durable.Sealed | None]:
    """Complete the temp file, check it and make it durable; StoreError with the status to
    answer.

    Durable with seals: the file is sealed, flushed once and renamed into the archive, and the
    returned Sealed is for :meth:`~fionagw.receive.durable.Committer.submit` once Success is
    answered (the folder flush, batched, and the FIFO line). Otherwise it was committed
    synchronously (flushed twice, or not at all with ``durability: os``).
    The caller closes the sink after success and discards it after a failure.
    """
    sink.finish()
    if sink.error is not None:
        raise store.StoreError(
            store.status_for_oserror(sink.error),
            f"cannot write received data: {sink.error.strerror}",
        )
    study_dir, name, study = store.check_received(paths, sink.path, sop_class, sop_uid)
    try:
        if committer.sealing and sink.crc is not None:
            # A new study folder's name is flushed now (once per study, so the rename below
            # can never land in a folder a power loss forgets).
            store.ensure_dir(study_dir, durable=True)
            item = durable.Sealed(sink.path, study_dir, name, study, *peer, sink.size)
            try:
                durable.seal(sink.fd, item, sink.crc)  # THE flush of this image
            except durable.SealUnsupported:
                committer.sealing = False
                LOGGER.warning(
                    "site/temp keeps no extended attributes: each image is flushed twice"
                    " (temp file, then archive folder)",
                    extra={"temp": str(paths.temp)},
                )
            else:
                if not sink.entry_durable:  # the pool was empty: this name is new
                    flushes.fsync_folder(paths.temp)
                final = study_dir / name
                replaced = check_replaced and os.path.lexists(final)
                try:
                    # No flush: until the committer fsyncs the folder, a power loss can only
                    # undo this rename whole, leaving the sealed file for the recovery.
                    os.rename(sink.path, final)
                except OSError as exc:
                    if exc.errno != errno.EXDEV:
                        raise
                else:
                    return store.Stored(final, study_dir, name, study, replaced, sink.size), item
        final, replaced, size = store.commit(
            sink.path,
            study_dir,
            name,
            durable=committer.durable,
            fd=sink.fd,
            size=sink.size,
            check_replaced=check_replaced,
        )
    except OSError as exc:
        where = exc.filename or study_dir
        raise store.StoreError(
            store.status_for_oserror(exc), f"cannot write {where}: {exc.strerror}"
        ) from None
    return store.Stored(final, study_dir, name, study, replaced, size), None
