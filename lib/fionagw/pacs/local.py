"""What the gateway holds of a study in raw/: instances per series, and their SOP UIDs (the
comparison base of the inventory, moveFromScanner and the resend)."""

from __future__ import annotations

from fionagw.config.site import SiteConfig
from fionagw.organize.series_json import SeriesJSONError, num_files, read_series
from fionagw.paths import safe_uid


def local_counts(cfg: SiteConfig, study_uid: str) -> dict[str, int]:
    """Series UID -> instances the gateway holds in raw/: the links there, or the series
    JSON's NumFiles when more (the JSON is written behind the links)."""
    study_dir = cfg.paths.raw_study_dir(safe_uid(study_uid))
    out: dict[str, int] = {}
    try:
        entries = list(study_dir.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return out
    for entry in entries:
        if entry.is_dir() and not entry.is_symlink():
            out[entry.name] = max(out.get(entry.name, 0), sum(1 for _ in entry.iterdir()))
        elif entry.suffix == ".json":
            try:
                record = read_series(entry)
            except SeriesJSONError:
                continue
            uid = str(record.get("SeriesInstanceUID") or entry.stem)
            out[uid] = max(out.get(uid, 0), num_files(record))
    return out


def local_sops(cfg: SiteConfig, study_uid: str, series_uid: str) -> set[str]:
    """The SOP Instance UIDs filed in raw/ of one series (the link names)."""
    folder = cfg.paths.raw_study_dir(safe_uid(study_uid)) / safe_uid(series_uid)
    try:
        return {p.name for p in folder.iterdir()}
    except (FileNotFoundError, NotADirectoryError):
        return set()
