"""The tracker's records, named exactly as FIONA's REDCap fields.

Field names are REDCap's (Incoming, DataTransferProjects, Routing, CouplingList, AutoID;
config/redcap/*.csv are their data dictionaries), so the redcap backend maps a record to a
REDCap row by name, and the local backend stores the same values. Patient name and ID
are only ever held as SHA-256 hex (FIONA's populateIncoming does the same).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any

DATE_FORMAT = "%Y-%m-%d %H:%M"  # FIONA's transfer_requested_date / transfer_date / arrival date

# transfer_error checkbox codes (REDCap: transfer_error___1 .. ___3)
ERROR_ANONYMIZATION = 1
ERROR_SEND = 2
PIXELS_ANONYMIZED = 3  # not an error: "pixel anonymization performed"

# transfers_complete: REDCap form status
COMPLETE_PENDING = ""
COMPLETE_ERROR = "1"
COMPLETE_OK = "2"


def now_text() -> str:
    return time.strftime(DATE_FORMAT)


@dataclass
class Study:
    """Form incoming_studies (record id = StudyInstanceUID)."""

    study_instance_uid: str
    study_institution_name: str = ""
    study_aetitle_sender: str = ""
    study_aetitle_addressed: str = ""
    study_patient_name: str = ""  # SHA-256 hex of the original PatientName
    study_patient_id: str = ""  # SHA-256 hex of the original PatientID
    study_description: str = ""
    study_date: str = ""
    study_time: str = ""
    study_accession_number: str = ""
    study_arrival_date: str = ""


@dataclass
class Series:
    """Repeating form series."""

    series_instance_uid: str
    series_description: str = ""
    series_date: str = ""
    series_time: str = ""
    series_sequence_name: str = ""
    series_num_files: str = ""
    series_classify_types: str = "[]"  # JSON list, as FIONA writes it
    instance: int = 0  # redcap_repeat_instance, assigned by the tracker

    @property
    def classify_types(self) -> list[str]:
        try:
            value = json.loads(self.series_classify_types or "[]")
        except ValueError:
            return []
        return value if isinstance(value, list) else []


@dataclass
class Transfer:
    """Repeating form transfers: one request to send a study to a project."""

    study_instance_uid: str
    instance: int
    transfer_project_name: str
    transfer_name: str  # the participant ID (becomes PatientID and PatientName)
    transfer_event_name: str = ""
    transfer_requested_date: str = ""
    transfer_date: str = ""
    transfer_mapped_uid: str = ""
    transfer_error: set[int] = field(default_factory=set)
    transfer_error_message: str = ""
    transfer_active_proc_time: str = ""
    transfers_complete: str = COMPLETE_PENDING

    @property
    def key(self) -> tuple[str, str, str]:
        """Identical requests share (project, participant, event): never create one twice."""
        return (self.transfer_project_name, self.transfer_name, self.transfer_event_name)

    def request_row(self) -> dict[str, Any]:
        """FIONA's transfer request file content (the REDCap row of the request)."""
        return {
            "redcap_repeat_instance": self.instance,
            "redcap_repeat_instrument": "transfers",
            "study_instance_uid": self.study_instance_uid,
            "transfer_date": self.transfer_date,
            "transfer_event_name": self.transfer_event_name,
            "transfer_name": self.transfer_name,
            "transfer_project_name": self.transfer_project_name,
            "transfer_requested_date": self.transfer_requested_date,
        }


@dataclass
class ImagingRecord:
    """Repeating form imaging of a research project's own REDCap (event_1_arm_1), one per sent
    study: what the project's data manager sees of the imaging of a participant."""

    img_study_instance_uid: str  # the de-identified (mapped) StudyInstanceUID
    img_event_name: str = ""
    img_study_date: str = ""  # shifted as in the sent data
    img_study_description: str = ""
    img_incoming_accession_number: str = ""  # FIONA wrote it; empty unless the site enables it


@dataclass
class IncomingStudy:
    """A study as the tracker knows it: the study form plus its repeating instances."""

    study: Study
    series: list[Series] = field(default_factory=list)
    transfers: list[Transfer] = field(default_factory=list)

    @property
    def series_uids(self) -> set[str]:
        return {s.series_instance_uid for s in self.series}

    def has_transfer(self, project: str, name: str, event: str) -> bool:
        return any(t.key == (project, name, event) for t in self.transfers)


@dataclass
class RoutingRule:
    """Routing: studies from/to an AE whose patient matches go to a project automatically."""

    record_id: str
    routing_dest_project: str
    routing_active: bool = True
    routing_incoming_aetitle: str = ""  # our called AE title
    routing_sending_aetitle: str = ""  # the calling AE title
    routing_allowed_patientid: str = ""  # Python regex, re.match
    routing_allowed_patientname: str = ""
    routing_event_name: str = ""


@dataclass
class CouplingEntry:
    """CouplingList: an accession number (or StudyInstanceUID) assigned ahead of arrival."""

    record_id: str
    cl_projectname: str
    cl_subjectid: str
    cl_eventname: str = ""
    cl_accessionnumber: str = ""
    cl_studyinstanceuid: str = ""
    cl_date: str = ""  # when the entry was made (entries are valid 14 days)


@dataclass
class WorkflowOutput:
    """A Workflows job's output.json (FIONA posted it to REDCap with sendToREDCap.php): one
    record per job, record_id ``job_<n>``; ``workflow_output`` is the file's JSON text."""

    record_id: str
    workflow_job: int
    workflow_stream: str
    workflow_project: str
    workflow_study_instance_uid: str
    workflow_output: str
    workflow_date: str = ""


def to_dict(record: Any) -> dict[str, Any]:
    data = asdict(record)
    for f in fields(record):
        if isinstance(data[f.name], set):
            data[f.name] = sorted(data[f.name])
    return data


@dataclass
class PacsCheck:
    """WhatIsInIDS7: what the research PACS holds of one sent transfer, after the send
    (anonymizeAndSend) and at each reconciliation (whatIsInIDS7 / whatIsNotInIDS7). One record
    per transfer (record_id ``<study_instance_uid>_<transfer instance>``), overwritten by
    each check. ``ids7_status`` is one of fionagw.send.verify.STATUSES."""

    record_id: str
    study_instance_uid: str  # the Incoming record (original study UID)
    transfer_instance: int
    ids7_project_name: str = ""
    ids7_participant: str = ""
    ids7_event_name: str = ""
    ids7_destination: str = ""
    ids7_mapped_uid: str = ""  # the de-identified StudyInstanceUID queried
    ids7_sent: int = 0  # instances sent
    ids7_found: int = 0  # of those, found in the PACS
    ids7_missing: int = 0
    ids7_status: str = ""
    ids7_method: str = ""  # "instances" (SOP UIDs compared) or "counts"
    ids7_checked_date: str = ""
    ids7_message: str = ""  # why unverifiable; what was done about missing instances
    ids7_resend_date: str = ""  # when a resend of the missing instances was queued

    @staticmethod
    def key(study_uid: str, instance: int) -> str:
        return f"{study_uid}_{instance}"

    @property
    def verified(self) -> bool:
        return self.ids7_status == "verified"

    def summary(self) -> str:
        """ "sent 240, verified 240" (the Assign page's words) or what is wrong."""
        if self.ids7_status == "verified":
            return f"sent {self.ids7_sent}, verified {self.ids7_found}"
        if self.ids7_status == "unverifiable":
            return f"sent {self.ids7_sent}, not verified"
        if self.ids7_status == "missing":
            return f"sent {self.ids7_sent}, not in the PACS"
        if self.ids7_status == "unconfirmed":
            return f"sent {self.ids7_sent}, PACS counts {self.ids7_found}"
        return f"sent {self.ids7_sent}, verified {self.ids7_found}, {self.ids7_missing} missing"
