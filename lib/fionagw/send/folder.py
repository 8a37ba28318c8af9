"""The ``folder`` destination: a copy of the study under <path>/<project>/<participant>/<study>/.

Each file keeps its path relative to the common parent of the files sent (the series folders
of the de-identified output). Every file is written to a temp name in its target folder,
fsynced and renamed, and the folders are fsynced before the result is returned, so a file
reported as sent is on disk whole. Sending a study again overwrites the same names: no
duplicates. Other jobs (sendFiles, a researcher's rsync) read these folders.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from fionagw.config import SectionReader, SiteConfig, register_destination_type
from fionagw.ops import perms
from fionagw.ops.atomic import copy_file_atomic, fsync_dir
from fionagw.send.base import Destination, SendContext, SendError, SendResult

log = logging.getLogger("fionagw.send.folder")


def _component(what: str, value: str) -> str:
    """A context value as one folder name; refuse anything that could leave the folder."""
    if not value or value in (".", "..") or "/" in value or "\\" in value or "\0" in value:
        raise SendError(f"{what} {value!r} cannot be used as a folder name")
    return value


def _common_parent(files: Sequence[Path]) -> Path:
    return Path(os.path.commonpath([str(f.parent) for f in files]))


def _make_dirs(path: Path, created: list[Path]) -> None:
    """mkdir -p that remembers what it created (their parents need an fsync)."""
    missing = []
    p = path
    while not p.is_dir():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir()
            created.append(d)
        except FileExistsError:
            pass


@dataclass(frozen=True)
class FolderSettings:
    """``{"type": "folder", "path": "<folder>"}`` (a relative path: from config.json's folder)."""

    name: str
    path: Path
    type: ClassVar[str] = "folder"

    def destination(self) -> FolderDestination:
        return FolderDestination(self.name, self.path)


def parse_folder(name: str, r: SectionReader, _site: SiteConfig) -> FolderSettings:
    path = r.path("path", ...)
    assert path is not None  # required: the reader raises "missing (required)" otherwise
    if path.exists() and not path.is_dir():
        raise r.error("path", f"not a folder: {path}")
    return FolderSettings(name, path)


register_destination_type(FolderSettings.type, ("path",), parse_folder)


class FolderDestination(Destination):
    type = FolderSettings.type

    def __init__(self, name: str, path: Path) -> None:
        super().__init__(name)
        self.path = path

    def describe(self) -> str:
        return f"folder {self.path}"

    def study_dir(self, context: SendContext) -> Path:
        return (
            self.path
            / _component("project", context.project)
            / _component("participant", context.participant)
            / _component("study UID", context.study_uid)
        )

    def send_study(self, files: Sequence[Path], context: SendContext) -> SendResult:
        result = SendResult()
        if not files:
            return result
        try:
            study_dir = self.study_dir(context)
        except SendError as exc:
            result.error = str(exc)
            return result
        base = _common_parent(files)
        created: list[Path] = []
        touched: set[Path] = set()
        try:
            _make_dirs(study_dir, created)
        except OSError as exc:
            result.error = f"folder {self.path}: cannot create {study_dir}: {exc.strerror}"
            return result
        for source in files:
            target = study_dir / source.relative_to(base)
            try:
                _make_dirs(target.parent, created)
                copy_file_atomic(
                    source, target, mode=perms.FILE_MODE, sync_dir=False
                )  # folders: once, below
            except OSError as exc:
                reason = f"{exc.strerror}: {exc.filename}" if exc.filename else str(exc)
                result.failed.append((source, reason))
                log.warning(
                    "file not copied",
                    extra={"destination": self.name, "file": str(source), "error": reason},
                )
                continue
            touched.add(target.parent)
            result.sent += 1
        try:
            for d in touched | {c.parent for c in created}:
                fsync_dir(d)
        except OSError as exc:
            result.error = f"folder {self.path}: fsync failed: {exc.strerror}"
        log.info(
            "study copied",
            extra={
                "destination": self.name,
                "study_uid": context.study_uid,
                "files": len(files),
                "result": result.summary(),
            },
        )
        return result

    def check(self) -> str:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=self.path)
            try:
                os.write(fd, b"ok")
                os.fsync(fd)
            finally:
                os.close(fd)
                os.unlink(probe)
            usage = shutil.disk_usage(self.path)
        except OSError as exc:
            raise SendError(f"folder {self.path}: not writable: {exc.strerror}") from None
        return f"folder {self.path}: writable, {usage.free / 1e9:.1f} GB free"
