"""Atomic, durable file writes: temp file in the same directory, fsync, rename, fsync dir."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fionagw.ops.perms import FILE_MODE


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _replace_via_temp(
    path: Path,
    fill: Callable[[str], None],
    *,
    durable: bool,
    mode: int,
    tmpdir: Path | None,
    sync_dir: bool = True,
) -> None:
    """Make a temp file beside ``path`` (or in ``tmpdir``), let ``fill`` write it, fsync it
    (if durable), rename it over ``path``; the temp file never survives a failure."""
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=tmpdir or path.parent)
    os.close(fd)
    try:
        fill(tmp)
        if durable:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    if durable and sync_dir:
        fsync_dir(path.parent)


def write_bytes_atomic(
    path: Path,
    data: bytes,
    *,
    durable: bool = True,
    mode: int = FILE_MODE,
    tmpdir: Path | None = None,
) -> None:
    """Write ``data`` so that ``path`` holds either the old or the whole new content.

    ``tmpdir`` must be on the same filesystem as ``path`` (default: its directory).
    With ``durable`` the bytes and the rename are fsynced before returning.
    """
    _replace_via_temp(
        path, lambda tmp: Path(tmp).write_bytes(data), durable=durable, mode=mode, tmpdir=tmpdir
    )


def copy_file_atomic(
    source: Path, path: Path, *, mode: int = FILE_MODE, sync_dir: bool = True
) -> None:
    """Copy ``source`` to ``path`` durably (the bytes fsynced before the rename; the folder too
    unless the caller syncs it once for many files with ``sync_dir=False``)."""
    _replace_via_temp(
        path,
        lambda tmp: shutil.copyfile(source, tmp),
        durable=True,
        mode=mode,
        tmpdir=None,
        sync_dir=sync_dir,
    )


def write_json_atomic(
    path: Path,
    value: Any,
    *,
    durable: bool = False,
    mode: int = FILE_MODE,
    tmpdir: Path | None = None,
) -> None:
    """FIONA's series JSON format: indent=2, sorted keys, non-JSON values as str."""
    text = json.dumps(value, indent=2, sort_keys=True, default=str)
    write_bytes_atomic(path, text.encode("utf-8"), durable=durable, mode=mode, tmpdir=tmpdir)


def touch(path: Path) -> None:
    """Create ``path`` if missing and set its mtime to now (job files, FIONA style)."""
    try:
        os.utime(path)
    except FileNotFoundError:
        path.touch()
