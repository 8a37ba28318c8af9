"""Every disk flush the receiver makes, counted: what durability costs per image.

The receiver fsyncs only through :func:`fsync_file` and :func:`fsync_folder`, so the counts
here are the whole cost (the "SCP stopped" log line reports them per stored image; the
ingest bench reads that line).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

_lock = threading.Lock()
_counts = {"file": 0, "folder": 0}


def fsync_file(fd: int) -> None:
    """fsync an open file: its data, size, mode and extended attributes."""
    os.fsync(fd)
    _count("file")


def fsync_folder(path: Path | str) -> None:
    """fsync a folder: the names created, renamed or removed in it."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    _count("folder")


def _count(kind: str) -> None:
    with _lock:
        _counts[kind] += 1


def counts() -> dict[str, int]:
    """Flushes since the process started, by kind ("file", "folder")."""
    with _lock:
        return dict(_counts)
