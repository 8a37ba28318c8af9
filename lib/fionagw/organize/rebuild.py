"""processSingleFile rebuild: derive raw/, participants/, srs/ and series JSON anew from the archive.

The archive is the only copy of the received bytes; everything else is derived. A rebuild
moves the old trees aside, files every archive instance again (new rules apply), keeps
each series' IncomingConnection (the archive does not record who sent it), and only then
deletes the old trees. It needs the writer lock, so it refuses while the daemon runs.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

import filelock

from fionagw.classify import RuleSet
from fionagw.config import SiteConfig
from fionagw.organize.processor import (
    UNKNOWN,
    WriterLockHeld,
    archive_files,
    file_one,
    writer_lock,
)
from fionagw.organize.series_json import (
    iter_series,
    raw_study_dirs,
    read_series,
    series_files,
    write_series,
)
from fionagw.organize.tree import Organizer
from fionagw.paths import SitePaths

LOGGER = logging.getLogger(__name__)


def _connections(paths: SitePaths) -> dict[Path, dict]:
    """Relative series-JSON path -> IncomingConnection, from the current raw/ tree."""
    found: dict[Path, dict] = {}
    for study_dir in raw_study_dirs(paths):
        for path, record in iter_series(series_files(study_dir)):
            conn = record.get("IncomingConnection")
            if isinstance(conn, dict):
                found[path.relative_to(paths.raw)] = conn
    return found


def rebuild(cfg: SiteConfig) -> tuple[int, int]:
    """Return (files filed, files moved aside or failed)."""
    lock = writer_lock(cfg)
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        raise WriterLockHeld("processSingleFile is running; stop it before a rebuild") from None
    try:
        paths = cfg.paths
        paths.create()
        connections = _connections(paths)
        old = paths.temp / f"rebuild-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
        old.mkdir(parents=True)
        for tree in (paths.raw, paths.participants, paths.srs):
            os.replace(tree, old / tree.name)
            tree.mkdir()
        organizer = Organizer(cfg, RuleSet.load(cfg.classify_rules), touch_jobs=False)
        ok = bad = 0
        for _, study in sorted(paths.archive_studies(), key=lambda s: s[1].name):
            for f in sorted(archive_files(Path(study.path))):
                outcome = file_one(organizer, f, UNKNOWN)
                if outcome.ok:
                    ok += 1
                else:
                    bad += 1
            organizer.flush()
        for rel, conn in connections.items():
            path = paths.raw / rel
            if path.exists():
                record = read_series(path)
                record["IncomingConnection"] = conn
                write_series(path, record, tmpdir=paths.temp)
        shutil.rmtree(old)
        LOGGER.info("rebuild finished", extra={"filed": ok, "failed": bad})
        return ok, bad
    finally:
        lock.release()
