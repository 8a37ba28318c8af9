"""Compare done transfers with the research PACS; record the answer; re-queue what is missing.

For each transfer that was sent without error and has a sent manifest (manifest.py):

1. ask its destination what it holds of the de-identified study (send/verify.py);
2. store the answer in the tracker (WhatIsInIDS7 / the local tracker's pacs_checks table);
3. when instances are missing (or the whole study) and the project's ``resend_missing`` is on,
   queue the transfer request again with ``resend_sop_uids``: anonymizeAndSend then
   de-identifies and sends only those instances, and verifies the whole study again. Once
   only: if the PACS still lacks them after that resend (it drops what it is sent), the
   check says so and a person has to find out why; a resend by hand starts afresh.

A PACS that cannot be asked (down, no C-FIND) leaves the transfer "unverifiable" and changes
nothing else: the next run asks again.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from fionagw import notify
from fionagw.config import SiteConfig
from fionagw.config.projects import Project
from fionagw.reconcile.manifest import ManifestError, SentManifest, read_manifest
from fionagw.send import Destination, load_destinations
from fionagw.send.verify import INCOMPLETE, MISSING, Verification
from fionagw.tracking.base import Tracker, TrackerError, transfer_done
from fionagw.tracking.records import DATE_FORMAT, PacsCheck, Transfer, now_text

log = logging.getLogger("fionagw.reconcile")

RESEND_KEY = "resend_sop_uids"  # request-file key: send only these (de-identified) SOP UIDs
QUEUED_KEY = "resend_queued"  # request-file key: when the reconciliation queued it


def request_name(cfg: SiteConfig, t: Transfer) -> str:
    """The request file's stem, which names the transfer's manifest."""
    from fionagw.routing.requests import request_path

    return request_path(cfg, t).stem


def pacs_check(
    t: Transfer, manifest: SentManifest, v: Verification, message: str = ""
) -> PacsCheck:
    """The tracker record of one verification of transfer ``t``."""
    return PacsCheck(
        record_id=PacsCheck.key(t.study_instance_uid, t.instance),
        study_instance_uid=t.study_instance_uid,
        transfer_instance=t.instance,
        ids7_project_name=t.transfer_project_name,
        ids7_participant=t.transfer_name,
        ids7_event_name=t.transfer_event_name,
        ids7_destination=manifest.destination,
        ids7_mapped_uid=manifest.study_uid,
        ids7_sent=v.expected,
        ids7_found=v.found,
        ids7_missing=v.expected - v.found if v.status in (INCOMPLETE, MISSING) else 0,
        ids7_status=v.status,
        ids7_method=v.method,
        ids7_checked_date=now_text(),
        ids7_message=message or v.error,
    )


@dataclass
class Reconciliation:
    checked: Counter[str] = field(default_factory=Counter)  # status -> transfers
    requeued: list[str] = field(default_factory=list)  # request names
    problems: list[str] = field(default_factory=list)  # one line each (no PHI)

    def summary(self) -> str:
        if not self.checked and not self.problems:
            return "no sent transfers to check"
        parts = [f"{sum(self.checked.values())} transfer(s) checked"]
        parts += [f"{n} {status}" for status, n in sorted(self.checked.items())]
        if self.requeued:
            parts.append(f"{len(self.requeued)} queued again for the missing instances")
        if self.problems:
            parts.append(f"{len(self.problems)} problem(s): {self.problems[0]}")
        return ", ".join(parts)


def _since(t: Transfer, horizon: float | None) -> bool:
    if horizon is None:
        return True
    try:
        return time.mktime(time.strptime(t.transfer_date.strip()[:16], DATE_FORMAT)) >= horizon
    except ValueError:
        return True  # an unreadable date: better checked once too often


def reconcile(cfg: SiteConfig, tracker: Tracker, *, horizon: float | None = None) -> Reconciliation:
    """Check every done transfer sent at or after ``horizon`` (epoch seconds; None: all)."""
    report = Reconciliation()
    destinations = load_destinations(cfg)
    projects = tracker.projects()
    for t in _candidates(tracker.transfers(), horizon):
        try:
            manifest = read_manifest(cfg.paths, request_name(cfg, t))
        except ManifestError as exc:
            report.problems.append(str(exc))
            continue
        if manifest is None:  # a folder destination, or sent before manifests existed
            continue
        destination = destinations.get(manifest.destination)
        if destination is None:
            report.problems.append(
                f"{request_name(cfg, t)}: destination {manifest.destination!r} is no longer configured"
            )
            continue
        checked = check_transfer(
            cfg, tracker, t, manifest, destination, projects.get(t.transfer_project_name)
        )
        if checked is None:
            continue
        check, requeued = checked
        report.checked[check.ids7_status] += 1
        if requeued:
            report.requeued.append(request_name(cfg, t))
    return report


def _previous(cfg: SiteConfig, tracker: Tracker, t: Transfer) -> PacsCheck | None:
    """The transfer's last check, unless a request for it is queued now (then the resend
    has not happened yet: write_request will find it queued)."""
    from fionagw.routing.requests import request_path

    if request_path(cfg, t).exists():
        return None
    try:
        key = PacsCheck.key(t.study_instance_uid, t.instance)
        return next(
            (c for c in tracker.pacs_checks(t.study_instance_uid) if c.record_id == key), None
        )
    except TrackerError:
        return None


def _candidates(transfers: Iterable[Transfer], horizon: float | None) -> list[Transfer]:
    return [t for t in transfers if transfer_done(t) and _since(t, horizon)]


def check_transfer(
    cfg: SiteConfig,
    tracker: Tracker,
    t: Transfer,
    manifest: SentManifest,
    destination: Destination,
    project: Project | None,
) -> tuple[PacsCheck, bool] | None:
    """Verify one transfer, record it, and re-queue the missing instances if the project says
    so: (the check, whether it was queued again); None when the destination cannot be asked
    at all (a folder)."""
    v = destination.verify(manifest.study_uid, manifest.series)
    if v is None:
        return None
    message = ""
    lacking = v.status in (INCOMPLETE, MISSING)
    requeue = lacking and project is not None and project.resend_missing
    if lacking and not requeue:
        message = "not re-sent: the project's resend_missing is off; resend it by hand"
    previous = _previous(cfg, tracker, t)
    resent = previous.ids7_resend_date if previous else ""
    if (
        requeue
        and previous is not None
        and previous.ids7_status in (INCOMPLETE, MISSING)
        and resent
    ):
        requeue = False
        message = (
            f"still not complete after the resend queued {resent}: not queued again;"
            " find out why the PACS does not keep them, then resend by hand"
        )
    check = pacs_check(t, manifest, v, message)
    if lacking and not requeue:
        check.ids7_resend_date = resent
    if requeue:
        from fionagw.routing.requests import write_request

        # MISSING: the whole study again; INCOMPLETE: the SOP UIDs the PACS lacks
        queued = now_text()
        extra: dict[str, object] = {QUEUED_KEY: queued}
        if v.status == INCOMPLETE and v.missing:
            extra[RESEND_KEY] = v.missing
        requeue = write_request(cfg, t, extra)
        if requeue:
            check.ids7_resend_date = queued
            check.ids7_message = f"{check.ids7_missing} instance(s) queued to be sent again"
        else:
            check.ids7_message = "a request for this transfer is already queued"
    try:
        tracker.record_pacs_check(check)
    except TrackerError as exc:
        log.error(
            "PACS check not recorded", extra={"study": t.study_instance_uid, "error": str(exc)}
        )
    notify.emit_check(cfg, t, check)
    log.info(
        "transfer checked in the PACS",
        extra={
            "study": t.study_instance_uid,
            "project": t.transfer_project_name,
            "status": check.ids7_status,
            "sent": check.ids7_sent,
            "found": check.ids7_found,
            "requeued": requeue,
        },
    )
    return check, requeue
