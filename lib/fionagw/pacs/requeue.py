"""Queue a study's earlier assignments again (the resend from PACS, by hand or from the
Assign page through moveFromScanner)."""

from __future__ import annotations

from typing import Any

from fionagw.config.site import SiteConfig
from fionagw.tracking.base import Tracker


def requeue_assignments(cfg: SiteConfig, tracker: Tracker, study_uid: str) -> int:
    """Queue every earlier assignment of the study again (same project, participant, event
    and instance: the same request file), except those a data manager cancelled; how many."""
    from fionagw.transfers.actions import request_name, retry
    from fionagw.transfers.failures import read_record

    def cancelled(t: Any) -> bool:
        record = read_record(cfg.paths, request_name(cfg, t))
        return bool(record and record.cancelled)

    earlier = [
        t
        for t in tracker.transfers(study_uid=study_uid)
        if t.transfer_project_name and t.transfer_name and not cancelled(t)
    ]
    for t in earlier:
        retry(cfg, tracker, t)
    return len(earlier)
