"""Retention: clearOldFiles (studies, logs) and clearStaleLinks (FIONA's housekeeping scripts).

clearOldFiles deletes whole studies, oldest archive folder first (by mtime), while the free
space is under ``retention.target_free_percent``. A study is never deleted while it has a
transfer request that is pending (no transfer_date) or failed, nor when it is younger than
``retention.min_age_hours``. A study is: archive/scp_<UID>, raw/<UID>, the participants/ and
srs/ links into it, and quarantine/<UID>_*. Every deletion is logged with the UID, the bytes
freed and the reason; nothing else about the study.

Free space comes from statvfs on DATADIR, or, when ``retention.capacity_bytes`` is set, from
that capacity minus the bytes under DATADIR (a quota for the gateway on a shared disk).

Tracker rows: with ``retention.tracker_days`` > 0, clearOldFiles also deletes, once a day, the
tracker's studies (with their series and transfers) on which nothing happened for that many
days and whose transfers are all done; a pending or failed request keeps its study. Each
deletion is logged with the study UID only.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from fionagw.config import SiteConfig
from fionagw.tracking.records import COMPLETE_ERROR

log = logging.getLogger("fionagw.retention")


def tree_bytes(path: Path) -> int:
    """Bytes of the regular files under ``path`` (symlinks not followed, each inode once)."""
    total, seen = 0, set()
    stack = [path]
    while stack:
        p = stack.pop()
        try:
            st = p.lstat()
        except OSError:
            continue
        if p.is_symlink():
            continue
        if os.path.isdir(p):
            try:
                stack.extend(Path(e.path) for e in os.scandir(p))
            except OSError:
                pass
        elif (st.st_dev, st.st_ino) not in seen:
            seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512 if st.st_blocks else st.st_size
    return total


@dataclass
class Space:
    """Free space of DATADIR as the retention target sees it."""

    total: int
    free: int
    source: str  # "statvfs" | "capacity"
    used: int = 0  # bytes under DATADIR ("capacity" only)

    @property
    def free_percent(self) -> float:
        return 100.0 * self.free / self.total if self.total > 0 else 100.0


def measure_space(cfg: SiteConfig) -> Space:
    cap = cfg.retention.capacity_bytes
    if cap > 0:
        used = tree_bytes(cfg.datadir)
        return Space(cap, max(0, cap - used), "capacity", used)
    st = os.statvfs(cfg.datadir)
    return Space(st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize, "statvfs")


def protected_studies(cfg: SiteConfig) -> dict[str, str]:
    """Study UID -> why it must be kept, from the tracker's transfer requests."""
    from fionagw.tracking.factory import open_tracker

    keep: dict[str, str] = {}
    tracker = open_tracker(cfg)
    try:
        for t in tracker.transfers():
            if t.transfers_complete == COMPLETE_ERROR or t.transfer_error:
                keep.setdefault(t.study_instance_uid, "failed transfer request")
            elif not t.transfer_date:
                keep.setdefault(t.study_instance_uid, "pending transfer request")
    finally:
        tracker.close()
    return keep


def archive_studies(cfg: SiteConfig) -> list[tuple[float, str, Path]]:
    """(mtime, UID, folder) of archive/scp_<UID>, oldest first."""
    out = []
    for uid, e in cfg.paths.archive_studies():
        try:
            out.append((e.stat(follow_symlinks=False).st_mtime, uid, Path(e.path)))
        except OSError:
            continue
    out.sort()
    return out


def _links_into(root: Path, targets: tuple[str, ...], depth: int) -> Iterator[Path]:
    """Symlinks up to ``depth`` levels under ``root`` whose target text points into ``targets``."""
    stack = [(root, 0)]
    while stack:
        d, level = stack.pop()
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue
        for e in entries:
            if e.is_symlink():
                try:
                    dest = os.readlink(e.path)
                except OSError:
                    continue
                full = os.path.normpath(os.path.join(d, dest))
                if any(full == t or full.startswith(t + os.sep) for t in targets):
                    yield Path(e.path)
            elif e.is_dir(follow_symlinks=False) and level + 1 < depth:
                stack.append((Path(e.path), level + 1))


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.is_dir():
        shutil.rmtree(path, ignore_errors=True)


def delete_study(cfg: SiteConfig, uid: str, archive_dir: Path | None = None) -> int:
    """Delete everything of one study; return the bytes freed (archive, raw, quarantine)."""
    p = cfg.paths
    archive_dir = archive_dir or p.archive_study_dir(uid)
    raw_dir = p.raw_study_dir(uid)
    quarantine = sorted(p.quarantine.glob(f"{uid}_*")) if p.quarantine.is_dir() else []
    freed = tree_bytes(archive_dir) + tree_bytes(raw_dir) + sum(tree_bytes(q) for q in quarantine)
    targets = (os.path.normpath(raw_dir), os.path.normpath(archive_dir))
    # participants/<PatientID>/<Date>_<Time> -> raw/<Study>; srs/<Mfr>/<Study>/<SOP> -> raw link
    for link in _links_into(p.participants, targets, depth=2):
        link.unlink(missing_ok=True)
    srs_dir_names = []
    for mfr in p.srs.iterdir() if p.srs.is_dir() else ():
        cand = mfr / uid
        if cand.is_dir() and not cand.is_symlink():
            srs_dir_names.append(cand)
    for d in srs_dir_names:
        shutil.rmtree(d, ignore_errors=True)
    for q in quarantine:
        _remove(q)
    shutil.rmtree(raw_dir, ignore_errors=True)
    shutil.rmtree(archive_dir, ignore_errors=True)
    for parent in (p.participants,):
        remove_empty_dirs(parent, keep_root=True)
    return freed


@dataclass
class ClearResult:
    deleted: list[tuple[str, int]] = field(default_factory=list)  # (UID, bytes)
    spared: dict[str, str] = field(
        default_factory=dict
    )  # UID -> reason (only when space was needed)
    free_percent_before: float = 100.0
    free_percent_after: float = 100.0
    logs_deleted: int = 0

    def summary(self) -> str:
        freed = sum(b for _, b in self.deleted)
        s = (
            f"{len(self.deleted)} studies deleted ({freed} bytes), free {self.free_percent_before:.1f} % -> "
            f"{self.free_percent_after:.1f} %"
        )
        if self.spared:
            s += f", {len(self.spared)} kept (pending/failed transfer or too young)"
        if self.logs_deleted:
            s += f", {self.logs_deleted} old log files deleted"
        return s


def clear_old_files(
    cfg: SiteConfig, *, dry_run: bool = False, now: float | None = None
) -> ClearResult:
    now = time.time() if now is None else now
    target = cfg.retention.target_free_percent
    space = measure_space(cfg)
    result = ClearResult(
        free_percent_before=space.free_percent, free_percent_after=space.free_percent
    )
    if space.free_percent >= target:
        return result
    keep = protected_studies(cfg)
    min_age = cfg.retention.min_age_hours * 3600
    free, used = space.free, space.used
    for mtime, uid, folder in archive_studies(cfg):
        if 100.0 * free / space.total >= target:
            break
        if uid in keep:
            result.spared[uid] = keep[uid]
            continue
        if now - mtime < min_age:
            result.spared[uid] = "younger than retention.min_age_hours"
            continue
        reason = f"free space {100.0 * free / space.total:.1f} % under target {target:g} %"
        freed = tree_bytes(folder) if dry_run else delete_study(cfg, uid, folder)
        result.deleted.append((uid, freed))
        log.warning(
            "study deleted" if not dry_run else "study would be deleted",
            extra={"study": uid, "bytes": freed, "reason": reason, "dry_run": dry_run},
        )
        if space.source == "capacity":
            used -= freed
            free = max(0, space.total - used)
        elif not dry_run:
            free = measure_space(cfg).free
        else:
            free += freed
    result.free_percent_after = 100.0 * free / space.total if space.total else 100.0
    for uid, why in result.spared.items():
        log.info("study kept although space is low", extra={"study": uid, "reason": why})
    return result


def clear_old_logs(
    cfg: SiteConfig, *, now: float | None = None, dry_run: bool = False
) -> list[Path]:
    """Delete files under DATADIR/logs (rotated *.log.N and others) older than retention.log_days."""
    now = time.time() if now is None else now
    horizon = now - cfg.retention.log_days * 86400
    gone = []
    try:
        entries = list(os.scandir(cfg.paths.logs))
    except FileNotFoundError:
        return []
    keep = cfg.paths.logfile("audit").name  # the audit trail is never pruned (admin/audit.py)
    for e in entries:
        if e.name == keep:
            continue
        try:
            if (
                not e.is_file(follow_symlinks=False)
                or e.stat(follow_symlinks=False).st_mtime >= horizon
            ):
                continue
            if not dry_run:
                os.unlink(e.path)
        except OSError:
            continue
        gone.append(Path(e.path))
        log.info("old log file deleted", extra={"file": e.name, "days": cfg.retention.log_days})
    return gone


TRACKER_JOB = "trackerRetention"  # its last run (jobstate) makes the tracker pass daily
TRACKER_EVERY_S = 86400


def prune_tracker(
    cfg: SiteConfig, *, now: float | None = None, force: bool = False, dry_run: bool = False
) -> list[str] | None:
    """Delete old, fully transferred studies from the tracker; None when switched off or not due.

    Raises TrackerError/ProjectsError/OSError when the tracker cannot be read (nothing deleted).
    """
    from fionagw.ops.jobstate import job_run, last_run
    from fionagw.tracking.factory import open_tracker

    days = cfg.retention.tracker_days
    if days <= 0:
        return None
    now = time.time() if now is None else now
    last = last_run(cfg, TRACKER_JOB)
    if not force and last is not None and last.ok and now - last.started < TRACKER_EVERY_S:
        return None

    def prune() -> list[str]:
        tracker = open_tracker(cfg)
        try:
            gone = tracker.prune_studies(now - days * 86400, dry_run=dry_run)
        finally:
            tracker.close()
        for uid in gone:
            log.info(
                "tracker study deleted" if not dry_run else "tracker study would be deleted",
                extra={"study": uid, "days": days, "dry_run": dry_run},
            )
        return gone

    if dry_run:  # a look does not count as the day's pass
        return prune()
    with job_run(cfg, TRACKER_JOB) as run:
        gone = prune()
        run.summary = f"{len(gone)} tracker studies deleted (older than {days:g} days)"
    return gone


# --- clearStaleLinks ------------------------------------------------------------------------


def remove_empty_dirs(root: Path, *, keep_root: bool = True, min_age_s: float = 0.0) -> int:
    """Remove empty directories under ``root`` bottom-up (untouched for ``min_age_s``); return how many."""
    n = 0
    horizon = time.time() - min_age_s
    if not root.is_dir() or root.is_symlink():
        return 0
    for dirpath, _dirnames, _filenames in os.walk(root, topdown=False):
        if keep_root and Path(dirpath) == root:
            continue
        try:
            if not os.listdir(dirpath) and (not min_age_s or os.lstat(dirpath).st_mtime < horizon):
                os.rmdir(dirpath)
                n += 1
        except OSError:
            continue
    return n


@dataclass
class StaleResult:
    broken_links: int = 0
    orphan_json: int = 0
    empty_dirs: int = 0

    def summary(self) -> str:
        return (
            f"{self.broken_links} broken links, {self.orphan_json} series JSON without a folder, "
            f"{self.empty_dirs} empty folders removed"
        )


def _walk_files(root: Path) -> Iterable[Path]:
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            yield Path(dirpath) / f
        for d in _dirs:
            if os.path.islink(os.path.join(dirpath, d)):  # os.walk lists dir symlinks as dirs
                yield Path(dirpath) / d


def clear_stale_links(cfg: SiteConfig, *, min_age_s: float = 600.0) -> StaleResult:
    """FIONA's clearStaleLinks.sh: in raw/, participants/, srs/ remove broken symlinks, empty
    folders and series ``*.json`` whose sibling folder is gone, then empty folders again.

    Folders and JSON files touched in the last ``min_age_s`` are left alone: processSingleFile
    writes a series JSON just before it creates the series folder.
    """
    res = StaleResult()
    horizon = time.time() - min_age_s
    roots = (cfg.paths.raw, cfg.paths.participants, cfg.paths.srs)
    for root in roots:
        if not root.is_dir():
            continue
        for f in list(_walk_files(root)):
            if f.is_symlink() and not f.exists():
                f.unlink(missing_ok=True)
                res.broken_links += 1
        res.empty_dirs += remove_empty_dirs(root, min_age_s=min_age_s)
        for f in list(_walk_files(root)):
            if (
                f.suffix == ".json"
                and not f.is_symlink()
                and f.is_file()
                and not f.with_suffix("").is_dir()
                and f.stat().st_mtime < horizon
            ):
                f.unlink(missing_ok=True)
                res.orphan_json += 1
        res.empty_dirs += remove_empty_dirs(root, min_age_s=min_age_s)
    if res.broken_links or res.orphan_json or res.empty_dirs:
        log.info(
            "stale links removed",
            extra={
                "broken_links": res.broken_links,
                "orphan_json": res.orphan_json,
                "empty_dirs": res.empty_dirs,
            },
        )
    return res
