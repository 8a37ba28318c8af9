"""Pull a study back from the project's research PACS (its ``dicom`` destination) with the
query/retrieve client: C-FIND to find it, C-GET with every instance written into the export's
temp folder (not into the archive: an export must not look like a new arrival)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset

from fionagw.config.pacs import PacsSource
from fionagw.pacs.client import PacsClient, PacsError
from fionagw.send.dicom import DicomDestination

log = logging.getLogger("fionagw.export")


class FolderGetClient(PacsClient):
    """PacsClient whose C-GET stores every instance as ``<folder>/<n>.dcm``."""

    def __init__(self, source: PacsSource, folder: Path) -> None:
        super().__init__(source, "")
        self.folder = folder
        self.stored = 0
        self.bytes = 0

    def _start_filing(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)

    def _stop_filing(self) -> None:
        pass

    def _on_store(self, event: Any) -> int:
        try:
            data = event.encoded_dataset()
            (self.folder / f"{self.stored:06d}.dcm").write_bytes(data)
        except OSError as exc:
            log.warning("export instance not written", extra={"error": type(exc).__name__})
            return 0xA700
        self.stored += 1
        self.bytes += len(data)
        return 0x0000


def research_pacs(destination: DicomDestination) -> PacsSource:
    """The project's research PACS as a query/retrieve source (C-GET on its query AE)."""
    return PacsSource(
        name=destination.name,
        host=destination.host,
        port=destination.query_port,
        called_aetitle=destination.query_aetitle,
        calling_aetitle=destination.calling_aetitle,
        timeout=destination.timeout,
        retrieve="get",
        tls=destination.tls,
    )


def find_studies(source: PacsSource, patient_id: str = "", study_uid: str = "") -> list[Dataset]:
    """The studies of a participant (PatientID) or one study, with their counts."""
    with PacsClient(source, "") as client:
        keys = {"StudyInstanceUID": study_uid} if study_uid else {"PatientID": patient_id}
        return client.studies(ReferringPhysicianName="", **keys)


EVENT_PREFIX = "EventName:"  # what the de-identification writes into (0008,0090)


def event_of(ds: Dataset) -> str:
    """The event the de-identification recorded in ReferringPhysicianName, or ""."""
    value = str(ds.get("ReferringPhysicianName", "") or "")
    return value[len(EVENT_PREFIX) :].strip() if value.startswith(EVENT_PREFIX) else ""


def pull_study(source: PacsSource, study_uid: str, folder: Path) -> tuple[int, int]:
    """C-GET the study into ``folder``: (instances, bytes). PacsError when the PACS does not
    have it or the retrieve fails (the job stays queued for its next attempt)."""
    with FolderGetClient(source, folder) as client:
        if not client.studies(StudyInstanceUID=study_uid):
            raise PacsError(f"{source.name}: study {study_uid} is not in the research PACS")
        got = client.retrieve(study_uid)
        if got.error or got.failed or client.stored == 0:
            raise PacsError(
                got.error
                or f"{source.name}: C-GET gave {client.stored} instance(s), {got.failed} failed"
            )
        return client.stored, client.bytes
