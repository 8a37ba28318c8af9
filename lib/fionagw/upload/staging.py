"""The staging folder where a request's files wait until they are filed, and its clean-up."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from fionagw.config import SiteConfig

from .records import UPLOAD_ID

# header-rewrite temp files of an upload in DATADIR's temp folder start with this
TEMP_PREFIX = ".upload-"


def staging_dir(cfg: SiteConfig, upload_id: str) -> Path:
    """Where a request's files wait (same filesystem as the archive, so commits are renames)."""
    if not UPLOAD_ID.match(upload_id):
        raise ValueError(f"not an upload id: {upload_id!r}")
    return cfg.paths.upload_staging / upload_id


def remove_staging(cfg: SiteConfig, upload_id: str) -> None:
    shutil.rmtree(staging_dir(cfg, upload_id), ignore_errors=True)


def remove_stale(cfg: SiteConfig, max_age_s: float = 86400.0) -> None:
    """Staging folders and header-rewrite temp files an interrupted upload left behind."""
    limit = time.time() - max_age_s
    for parent, prefix in ((cfg.paths.upload_staging, ""), (cfg.paths.temp, TEMP_PREFIX)):
        try:
            entries = list(os.scandir(parent))
        except FileNotFoundError:
            continue
        for e in entries:
            try:
                if not e.name.startswith(prefix) or e.stat(follow_symlinks=False).st_mtime >= limit:
                    continue
                if e.is_dir(follow_symlinks=False):
                    shutil.rmtree(e.path)
                else:
                    os.unlink(e.path)
            except OSError:
                pass
