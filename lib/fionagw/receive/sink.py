"""Where a C-STORE data set goes while it arrives: a temp file in ``site/temp``, then the archive.

Fragments are read from the connection straight into the association's buffer
(:data:`FLUSH_BYTES`) and written to the file whenever it is full: an ordinary image is written
with one system call when it is complete, a huge object never sits in memory. Once the last
fragment is in, :func:`commit` hands the file to :func:`fionagw.receive.store.store_received`,
which walks it whole (through a memory map: nothing is copied) and renames it durably into
the archive.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from fionagw.paths import SitePaths
from fionagw.receive import store

FLUSH_BYTES = 1 << 20  # a data set up to this size is kept in memory until complete
_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC


def new_buffer() -> memoryview:
    """The buffer one association reuses for every data set."""
    return memoryview(bytearray(FLUSH_BYTES))


def temp_path(tempdir: str) -> str:
    return os.path.join(tempdir, store.temp_name())


def open_temp(tempdir: str) -> tuple[str, int] | None:
    """A new temp file, created ahead of its data set (creating a file is not free on a busy
    filesystem); None when that fails, to be tried again at the first write and answered."""
    path = temp_path(tempdir)
    try:
        return path, os.open(path, _TEMP_FLAGS, 0o600)
    except OSError:
        return None


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

    __slots__ = ("path", "fd", "view", "filled", "size", "error")

    def __init__(self, buffer: memoryview, meta: bytes, temp: tuple[str, int]) -> None:
        self.path, self.fd = temp  # fd -1: the file is created at the first write
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
                self.fd = os.open(self.path, _TEMP_FLAGS, 0o600)
            view = self.view[: self.filled]
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
    durable: bool,
    check_replaced: bool,
) -> store.Stored:
    """Complete the temp file and store it in the archive; StoreError with the status to answer.

    The caller closes the sink after success and discards it after a failure.
    """
    sink.finish()
    if sink.error is not None:
        raise store.StoreError(
            store.status_for_oserror(sink.error),
            f"cannot write received data: {sink.error.strerror}",
        )
    return store.store_received(
        paths,
        sink.path,
        sop_class,
        sop_uid,
        durable=durable,
        fd=sink.fd,
        size=sink.size,
        check_replaced=check_replaced,
    )
