"""The ``exports`` section of config.json (read here, like ``pacs``, by the programs using it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fionagw.config.errors import ConfigError

if TYPE_CHECKING:
    from fionagw.config.site import SiteConfig

TYPES = ("PURE", "NIFTI", "DICOM")
DOWNLOAD = "download"  # the destination that keeps the zip under DATADIR/exports/files


@dataclass(frozen=True)
class ExportSettings:
    folder: Path  # DATADIR/exports: the queue, state/, secrets/, files/, tmp_*/
    max_attempts: int = 3  # downloadAttempts after which a job fails for good
    temp_max_age_minutes: int = 1000  # clearExports: tmp_* folders older than this go
    max_size_mb: float = 0.0  # clearExports: oldest zips go while files/ is larger (0: no limit)
    max_disk_percent: float = 90.0  # ... or while the disk is fuller than this
    dcm2niix: str = "dcm2niix"
    compress_level: int = 6  # deflate level of the zips (1 fastest ... 9 smallest)

    @property
    def queue(self) -> Path:
        return self.folder / "prepared_downloads_list.jobs"

    @property
    def files(self) -> Path:
        return self.folder / "files"

    @property
    def state(self) -> Path:
        return self.folder / "state"

    @property
    def secrets(self) -> Path:
        return self.folder / "secrets"


def _number(cfg: SiteConfig, section: dict[str, Any], key: str, default: float, kind: type) -> Any:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigError(cfg.config_file, f"exports.{key}", "must be a number of 0 or more")
    return kind(value)


def load_exports(cfg: SiteConfig) -> ExportSettings:
    section = cfg.source.get("exports") or {}
    if not isinstance(section, dict):
        raise ConfigError(cfg.config_file, "exports", "must be an object")
    unknown = set(section) - {
        "max_attempts",
        "temp_max_age_minutes",
        "max_size_mb",
        "max_disk_percent",
        "dcm2niix",
        "compress_level",
    }
    if unknown:
        raise ConfigError(cfg.config_file, f"exports.{sorted(unknown)[0]}", "unknown key")
    return ExportSettings(
        folder=cfg.datadir / "exports",
        max_attempts=max(1, _number(cfg, section, "max_attempts", 3, int)),
        temp_max_age_minutes=_number(cfg, section, "temp_max_age_minutes", 1000, int),
        max_size_mb=_number(cfg, section, "max_size_mb", 0, float),
        max_disk_percent=_number(cfg, section, "max_disk_percent", 90, float),
        dcm2niix=str(section.get("dcm2niix", "dcm2niix")),
        compress_level=min(9, max(1, _number(cfg, section, "compress_level", 6, int))),
    )
