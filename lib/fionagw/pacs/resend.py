"""Resend from PACS: a study cleared from the gateway (clearOldFiles) or never received is
retrieved again from the clinical PACS and its earlier assignments are queued again.

FIONA answered such a request with "Study has been deleted from Fiona. Resend from PACS!"
and the data manager asked the PACS team. Here the study is found by StudyInstanceUID or
AccessionNumber, the series the gateway lacks are retrieved (C-MOVE to our receiver or C-GET),
and when raw/ holds every instance again, each earlier transfer of the study (project,
participant, event, instance) is queued again as a request. The project's de-identification
key is the same, so the research PACS receives the same pseudonym and UIDs: the instances
replace themselves there, no duplicates.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from fionagw.config.pacs import load_pacs
from fionagw.config.site import SiteConfig
from fionagw.pacs.client import PacsClient, PacsError, opaque
from fionagw.pacs.requeue import requeue_assignments
from fionagw.pacs.scans import complete_study
from fionagw.tracking.base import Tracker

log = logging.getLogger("fionagw.pacs.resend")
_UID = re.compile(r"^[0-9]+(\.[0-9]+)+$")


class ResendError(Exception):
    """Why a resend cannot be done; one line, for the CLI and the Assign page."""


@dataclass
class Resent:
    study_uid: str
    retrieved: int
    requeued: int
    already_here: bool

    def summary(self) -> str:
        got = (
            "already complete here"
            if self.already_here
            else f"{self.retrieved} instances retrieved"
        )
        return f"{got}; {self.requeued} earlier assignment(s) queued again"


def find_study(client: PacsClient, key: str) -> str:
    """The StudyInstanceUID for a UID or an AccessionNumber; ResendError when not exactly one."""
    keys = {"StudyInstanceUID": key} if _UID.match(key) else {"AccessionNumber": key}
    what = "study" if "StudyInstanceUID" in keys else "accession number"
    matches = client.find(
        "STUDY",
        StudyInstanceUID=keys.get("StudyInstanceUID", ""),
        **{k: v for k, v in keys.items() if k != "StudyInstanceUID"},
    )
    uids = sorted({str(ds.get("StudyInstanceUID", "")) for ds in matches} - {""})
    if not uids:
        raise ResendError(f"the PACS ({client.source.name}) has no such {what}")
    if len(uids) > 1:
        raise ResendError(
            f"the {what} matches {len(uids)} studies in the PACS; give the StudyInstanceUID"
        )
    return uids[0]


def resend_from_pacs(
    cfg: SiteConfig, tracker: Tracker, key: str, source: str = "", client: PacsClient | None = None
) -> Resent:
    """Retrieve the study again and queue its earlier assignments; ResendError or PacsError."""
    settings = load_pacs(cfg)
    if client is None:
        try:
            src = settings.source(source)
        except KeyError as exc:
            raise ResendError(str(exc.args[0])) from None
        with PacsClient(src, settings.move_destination, cfg) as c:
            return resend_from_pacs(cfg, tracker, key, source, c)
    study_uid = find_study(client, key)
    short, got, remote = complete_study(cfg, client, study_uid, settings.wait_seconds)
    if got is not None and got.error:
        raise PacsError(got.error)
    if short:
        raise ResendError(
            f"{len(short)} series did not arrive within {settings.wait_seconds:g} s "
            "(is the receiver running, and does the PACS know our AE title?); try again"
        )
    requeued = requeue_assignments(cfg, tracker, study_uid)
    log.info(
        "resend from PACS",
        extra={
            "study_key": opaque(study_uid),
            "retrieved": got.completed if got else 0,
            "requeued": requeued,
        },
    )
    return Resent(study_uid, got.completed if got else 0, requeued, got is None)


def queue_resend(cfg: SiteConfig, study_uid: str, by: str) -> bool:
    """The Assign page's Resend: list the study for moveFromScanner, which retrieves it and
    then queues its earlier assignments again. False when it is already listed."""
    from fionagw.pacs.scans import add_active_scan, scan_file

    if scan_file(cfg.paths.active_scans, study_uid).exists():
        return False
    add_active_scan(cfg, study_uid, resend=True, by=by)
    log.info("resend from PACS queued", extra={"study_key": opaque(study_uid), "user": by})
    return True
