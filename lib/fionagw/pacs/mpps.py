"""The MPPS receiver (FIONA's ppsscpfs under mppsctl): a Modality Performed Procedure Step
SCP (pynetdicom N-CREATE / N-SET) on DICOMIP:MPPSPORT that writes one record per procedure
step under DATADIR/scanner/ (mpps_records.py). The scanner sends N-CREATE (IN PROGRESS) when
a scan starts and N-SET (COMPLETED or DISCONTINUED, with the performed series and their
referenced images) when it ends; a COMPLETED step lets detectStudyArrival finish the study as
soon as every referenced instance is filed. Logged with opaque keys and counts only.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from pydicom.dataset import Dataset

from fionagw.config.site import SiteConfig
from fionagw.pacs.client import opaque
from fionagw.pacs.mpps_records import (
    COMPLETED,
    DISCONTINUED,
    IN_PROGRESS,
    STATUSES,
    read_record,
    write_record,
)

log = logging.getLogger("fionagw.pacs.mpps")
MPPS_SOP_CLASS = "1.2.840.10008.3.1.2.3.3"
# DIMSE statuses (PS3.4 F.7 / PS3.7 C)
SUCCESS = 0x0000
DUPLICATE_INSTANCE = 0x0111
NO_SUCH_INSTANCE = 0x0112
PROCESSING_FAILURE = 0x0110
INVALID_VALUE = 0x0106
MAY_NO_LONGER_BE_UPDATED = 0xC310


def _text(ds: Dataset, keyword: str) -> str:
    return str(ds.get(keyword, "") or "").strip()


def _studies(ds: Dataset) -> list[str]:
    uids = [
        _text(item, "StudyInstanceUID")
        for item in ds.get("ScheduledStepAttributesSequence", None) or []
    ]
    return sorted({u for u in uids if u})


def _series(ds: Dataset) -> list[dict[str, Any]]:
    out = []
    for item in ds.get("PerformedSeriesSequence", None) or []:
        uid = _text(item, "SeriesInstanceUID")
        if not uid:
            continue
        sops = [
            _text(ref, "ReferencedSOPInstanceUID")
            for ref in item.get("ReferencedImageSequence", None) or []
        ]
        sops = [s for s in sops if s]
        out.append({"series_uid": uid, "images": len(sops), "sop_uids": sops})
    return out


def _dt(ds: Dataset, date_kw: str, time_kw: str) -> str:
    return f"{_text(ds, date_kw)} {_text(ds, time_kw)}".strip()


def _apply(record: dict[str, Any], ds: Dataset) -> None:
    """Merge what an N-CREATE or N-SET carries into the record."""
    status = _text(ds, "PerformedProcedureStepStatus")
    if status:
        record["status"] = status
    studies = _studies(ds)
    if studies:
        record["study_uids"] = studies
    if "PerformedSeriesSequence" in ds:
        record["series"] = _series(ds)
        record["images"] = sum(s["images"] for s in record["series"])
    if _text(ds, "Modality"):
        record["modality"] = _text(ds, "Modality")
    if _text(ds, "PerformedProcedureStepStartDate"):
        record["started"] = _dt(
            ds, "PerformedProcedureStepStartDate", "PerformedProcedureStepStartTime"
        )
    if _text(ds, "PerformedProcedureStepEndDate"):
        record["ended"] = _dt(ds, "PerformedProcedureStepEndDate", "PerformedProcedureStepEndTime")
    record["updated"] = time.time()


class MppsHandlers:
    """N-CREATE and N-SET of one site; one lock: a step's N-SET waits for its N-CREATE."""

    def __init__(self, cfg: SiteConfig, from_mpps: bool = False) -> None:
        self.cfg, self.from_mpps = cfg, from_mpps
        self._lock = threading.Lock()

    def n_create(self, event: Any) -> tuple[int, Dataset | None]:
        uid = str(event.request.AffectedSOPInstanceUID or "")
        if not uid:
            return INVALID_VALUE, None
        ds = event.attribute_list
        status = _text(ds, "PerformedProcedureStepStatus")
        if status != IN_PROGRESS:  # PS3.4 F.7.2.1: a step is created IN PROGRESS
            return INVALID_VALUE, None
        with self._lock:
            if read_record(self.cfg, uid) is not None:
                return DUPLICATE_INSTANCE, None
            record: dict[str, Any] = {
                "sop_instance_uid": uid,
                "status": IN_PROGRESS,
                "study_uids": [],
                "series": [],
                "images": 0,
                "station": str(event.assoc.requestor.ae_title).strip(),
                "created": time.time(),
            }
            _apply(record, ds)
            try:
                write_record(self.cfg, record)
            except OSError as exc:
                log.error("MPPS record not written", extra={"error": exc.strerror or "OSError"})
                return PROCESSING_FAILURE, None
        self._log("N-CREATE", record)
        return SUCCESS, ds

    def n_set(self, event: Any) -> tuple[int, Dataset | None]:
        uid = str(event.request.RequestedSOPInstanceUID or "")
        ds = event.attribute_list
        with self._lock:
            record = read_record(self.cfg, uid)
            if record is None:
                return NO_SUCH_INSTANCE, None
            if record.get("status") in (COMPLETED, DISCONTINUED):
                return MAY_NO_LONGER_BE_UPDATED, None
            new = _text(ds, "PerformedProcedureStepStatus")
            if new and new not in STATUSES:
                return INVALID_VALUE, None
            _apply(record, ds)
            try:
                write_record(self.cfg, record)
            except OSError as exc:
                log.error("MPPS record not written", extra={"error": exc.strerror or "OSError"})
                return PROCESSING_FAILURE, None
        self._log("N-SET", record)
        if record.get("status") == COMPLETED and self.from_mpps:
            self._activate(record)
        return SUCCESS, ds

    def _activate(self, record: dict[str, Any]) -> None:
        """pacs.from_mpps: list the step's studies for moveFromScanner (which finishes them at
        once when the scanner sent everything, and pulls what it did not)."""
        from fionagw.pacs.mpps_records import complete_by_mpps
        from fionagw.pacs.scans import add_active_scan

        studies = record.get("study_uids", [])
        done = complete_by_mpps(self.cfg, studies)
        for study in studies:
            if study not in done:
                try:
                    add_active_scan(self.cfg, study, by="mpps")
                except OSError as exc:
                    log.error("active scan not listed", extra={"error": exc.strerror or "OSError"})

    @staticmethod
    def _log(what: str, record: dict[str, Any]) -> None:
        log.info(
            f"MPPS {what}",
            extra={
                "pps_key": opaque(record["sop_instance_uid"]),
                "status": record.get("status"),
                "studies": len(record.get("study_uids", [])),
                "series": len(record.get("series", [])),
                "images": record.get("images", 0),
            },
        )


def serve_mpps(
    cfg: SiteConfig, stop: threading.Event, ready: Callable[[], None], port: int = 0
) -> None:
    """Run the site's MPPS SCP until ``stop`` is set; call ``ready()`` once listening."""
    from pynetdicom import AE, evt

    from fionagw.config.pacs import load_pacs

    settings = load_pacs(cfg)
    port = port or settings.mpps.port
    handlers = MppsHandlers(cfg, settings.from_mpps and bool(settings.sources))
    ae = AE(ae_title=cfg.aetitle)
    ae.add_supported_context(MPPS_SOP_CLASS)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
    server = ae.start_server(
        (cfg.dicom_ip, port),
        block=False,
        evt_handlers=[(evt.EVT_N_CREATE, handlers.n_create), (evt.EVT_N_SET, handlers.n_set)],
    )
    log.info("MPPS receiver listening", extra={"ip": cfg.dicom_ip, "port": port})
    try:
        ready()
        stop.wait()
    finally:
        server.shutdown()
