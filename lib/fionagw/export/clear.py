"""clearExports (FIONA's clearExports.sh): temp export folders older than
``exports.temp_max_age_minutes``, then the oldest zips of ``files/`` while the area is over
``exports.max_size_mb`` or the disk fuller than ``exports.max_disk_percent``."""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from fionagw.export.settings import ExportSettings

log = logging.getLogger("fionagw.export")


@dataclass
class Cleared:
    temp_folders: list[Path] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    bytes_freed: int = 0

    def summary(self) -> str:
        return (
            f"{len(self.temp_folders)} temp folder(s), {len(self.files)} export file(s) deleted"
            f" ({self.bytes_freed / 1e6:.1f} MB)"
        )


def _disk_percent(path: Path) -> float:
    usage = shutil.disk_usage(path)
    return 100.0 * usage.used / usage.total if usage.total else 0.0


def clear_exports(
    settings: ExportSettings, now: float | None = None, dry_run: bool = False
) -> Cleared:
    now = time.time() if now is None else now
    out = Cleared()
    if not settings.folder.is_dir():
        return out
    limit = now - settings.temp_max_age_minutes * 60
    for tmp in sorted(settings.folder.glob("tmp_*")):
        if tmp.is_dir() and tmp.stat().st_mtime < limit:
            out.temp_folders.append(tmp)
            if not dry_run:
                shutil.rmtree(tmp, ignore_errors=True)
    if not settings.files.is_dir():
        return out
    zips = sorted(
        (p for p in settings.files.glob("*.zip") if p.is_file()), key=lambda p: p.stat().st_mtime
    )
    size = sum(p.stat().st_size for p in zips)
    max_bytes = settings.max_size_mb * 1e6

    def over() -> bool:
        if max_bytes and size > max_bytes:
            return True
        return not dry_run and _disk_percent(settings.files) > settings.max_disk_percent

    while zips and over():
        oldest = zips.pop(0)
        n = oldest.stat().st_size
        out.files.append(oldest)
        out.bytes_freed += n
        size -= n
        if not dry_run:
            oldest.unlink(missing_ok=True)
        log.info("export file deleted", extra={"bytes": n, "dry_run": dry_run})
    return out
