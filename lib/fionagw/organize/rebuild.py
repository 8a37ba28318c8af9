"""processSingleFile rebuild: derive raw/, participants/, srs/ and series JSON anew from the archive.

The archive is the only copy of the received bytes; everything else is derived. A rebuild
moves the old trees aside, files every archive instance again (new rules apply), keeps
each series' IncomingConnection (the archive does not record who sent it), and only then
deletes the old trees. It needs the writer lock, so it refuses while the daemon runs.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path

import filelock

from fionagw.classify import RuleSet
from fionagw.config import SiteConfig
from fionagw.ops.atomic import write_json_atomic
from fionagw.organize.processor import UNKNOWN, WriterLockHeld, archive_files, writer_lock
from fionagw.organize.tree import Organizer

log = logging.getLogger("fionagw.processSingleFile")


def _connections(raw: Path) -> dict[Path, dict]:
    """Relative series-JSON path -> IncomingConnection, from the current raw/ tree."""
    found: dict[Path, dict] = {}
    for path in raw.glob("*/*.json"):
        try:
            conn = json.loads(path.read_text()).get("IncomingConnection")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(conn, dict):
            found[path.relative_to(raw)] = conn
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
        connections = _connections(paths.raw)
        old = paths.temp / f"rebuild-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
        old.mkdir(parents=True)
        for tree in (paths.raw, paths.participants, paths.srs):
            os.replace(tree, old / tree.name)
            tree.mkdir()
        organizer = Organizer(cfg, RuleSet.load(cfg.classify_rules), touch_jobs=False)
        ok = bad = 0
        for _, study in sorted(paths.archive_studies(), key=lambda s: s[1].name):
            for f in sorted(archive_files(Path(study.path))):
                try:
                    outcome = organizer.process(f, UNKNOWN)
                except Exception:
                    log.exception("rebuild: processing failed", extra={"file": str(f)})
                    outcome = None
                if outcome and outcome.ok:
                    ok += 1
                else:
                    bad += 1
            organizer.flush()
        for rel, conn in connections.items():
            path = paths.raw / rel
            if path.exists():
                record = json.loads(path.read_text())
                record["IncomingConnection"] = conn
                write_json_atomic(path, record, tmpdir=paths.temp)
        shutil.rmtree(old)
        log.info("rebuild finished", extra={"filed": ok, "failed": bad})
        return ok, bad
    finally:
        lock.release()
