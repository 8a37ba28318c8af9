"""Transfer request files, FIONA's hand-over from the tracker to anonymizeAndSend.

DATADIR/transfer_requests/<study>_<project>_<participant>_<instance>.json holds the
REDCap row of the request (indent 2, sorted keys). createTransferRequest writes one when
the request was never sent, or when a series arrived after it was sent (so a late series
is sent too); resendProject writes one when a resend was asked for after the last
transfer. A file is only created if it is not there yet: anonymizeAndSend moves it away
when done, so a request is never queued twice. A request that failed is not queued again
while its failure record holds it (transfers/failures.py).
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from fionagw import notify
from fionagw.config import SiteConfig
from fionagw.organize.series_json import newest_change
from fionagw.paths import safe_component
from fionagw.tracking.base import Tracker
from fionagw.tracking.records import DATE_FORMAT, Transfer
from fionagw.transfers.failures import Holds

LOGGER = logging.getLogger(__name__)


def request_path(cfg: SiteConfig, t: Transfer) -> Path:
    name = "_".join(
        safe_component(p)
        for p in (t.study_instance_uid, t.transfer_project_name, t.transfer_name, str(t.instance))
    )
    return cfg.paths.transfer_request(name)


def _parse_date(text: str) -> float | None:
    try:
        return time.mktime(time.strptime(text, DATE_FORMAT))
    except (ValueError, OverflowError):
        return None


def write_request(cfg: SiteConfig, t: Transfer, extra: dict[str, Any] | None = None) -> bool:
    """Create the request file unless it exists; True if created. ``extra``: keys added to
    FIONA's row (the reconciliation's ``resend_sop_uids``)."""
    path = request_path(cfg, t)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps({**t.request_row(), **(extra or {})}, indent=2, sort_keys=True).encode()
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    tmp.write_bytes(data)
    try:
        os.link(tmp, path)  # atomic create-if-absent: a concurrent writer cannot double it
    except FileExistsError:
        return False
    finally:
        tmp.unlink()
    LOGGER.info(
        "transfer request queued", extra={"file": path.name, "project": t.transfer_project_name}
    )
    notify.emit_transfer(cfg, "transfer-requested", t, resend=bool(extra))
    return True


def create_transfer_requests(cfg: SiteConfig, tracker: Tracker) -> list[Path]:
    """createTransferRequest: queue never-sent requests and those with newer series."""
    created = []
    held = Holds(cfg, tracker)
    for t in tracker.transfers():
        if not t.transfer_project_name or not t.transfer_name:
            continue
        due = not t.transfer_date
        if not due:
            sent = _parse_date(t.transfer_date)
            changed = newest_change(cfg.paths.raw_study_dir(t.study_instance_uid))
            # transfer_date has minute resolution: a series from that minute counts as newer
            due = sent is not None and changed is not None and changed >= sent
        if not due:
            continue
        path = request_path(cfg, t)
        if not held(path.name, t.transfer_project_name, t.study_instance_uid) and write_request(
            cfg, t
        ):
            created.append(path)
    return created


def resend_project(cfg: SiteConfig, tracker: Tracker, project: str | None = None) -> list[Path]:
    """resendProject: queue requests whose transfer_requested_date is at or after transfer_date."""
    created = []
    for t in tracker.transfers(project=project):
        if not t.transfer_project_name or not t.transfer_name or not t.transfer_date:
            continue
        asked, sent = _parse_date(t.transfer_requested_date), _parse_date(t.transfer_date)
        if asked is not None and sent is not None and asked >= sent and write_request(cfg, t):
            created.append(request_path(cfg, t))
    return created
