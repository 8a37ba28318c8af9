"""Atomic, durable file writes: temp file in the same directory, fsync, rename, fsync dir."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes_atomic(path: Path, data: bytes, *, durable: bool = True, mode: int = 0o644,
                       tmpdir: Path | None = None) -> None:
    """Write ``data`` so that ``path`` holds either the old or the whole new content.

    ``tmpdir`` must be on the same filesystem as ``path`` (default: its directory).
    With ``durable`` the bytes and the rename are fsynced before returning.
    """
    directory = tmpdir or path.parent
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    if durable:
        fsync_dir(path.parent)


def write_json_atomic(path: Path, value: Any, *, durable: bool = False, mode: int = 0o666,
                      tmpdir: Path | None = None) -> None:
    """FIONA's series JSON format: indent=2, sorted keys, non-JSON values as str."""
    text = json.dumps(value, indent=2, sort_keys=True, default=str)
    write_bytes_atomic(path, text.encode("utf-8"), durable=durable, mode=mode, tmpdir=tmpdir)


def touch(path: Path) -> None:
    """Create ``path`` if missing and set its mtime to now (job files, FIONA style)."""
    try:
        os.utime(path)
    except FileNotFoundError:
        path.touch()
