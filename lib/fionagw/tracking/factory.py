"""Open the tracker a site's config asks for."""

from __future__ import annotations

from fionagw.config import SiteConfig
from fionagw.tracking.base import Tracker


def open_tracker(cfg: SiteConfig) -> Tracker:
    if cfg.tracker.backend == "redcap":
        from fionagw.tracking.redcap import RedcapTracker

        return RedcapTracker.from_config(cfg)
    from fionagw.tracking.local import LocalTracker

    return LocalTracker(cfg.paths.tracker_db, cfg.tracker.projects_file)
