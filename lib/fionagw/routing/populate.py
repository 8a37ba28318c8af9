"""populateIncoming: record settled studies in the tracker and create their transfer requests.

A series JSON untouched for ``settle_s`` seconds is settled (FIONA: 60 s). For each study:
write the Incoming study record (patient name and ID as SHA-256 hex only) and its series
not yet recorded; then each assignment source may add a transfer request, never twice for
the same (project, participant, event):
  - Routing rules: (called AE or calling AE matches) and (PatientName or PatientID matches);
  - the coupling list: accession number or StudyInstanceUID;
  - AutoID: a project that auto-assigns studies addressed to its AE title.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections import defaultdict
from dataclasses import dataclass, field

from fionagw.config import SiteConfig
from fionagw.config.projects import Project
from fionagw.ops.log import phi_hash
from fionagw.organize.series_json import (
    SeriesRecord,
    incoming_connection,
    iter_series,
    raw_study_dirs,
    series_files,
    text_of,
)
from fionagw.paths import SitePaths
from fionagw.routing.autoid import AutoIDError, autoid_key, generate_id
from fionagw.routing.coupling import matches
from fionagw.tracking.base import Tracker
from fionagw.tracking.records import (
    CouplingEntry,
    IncomingStudy,
    RoutingRule,
    Series,
    Study,
    now_text,
)

LOGGER = logging.getLogger(__name__)
SETTLE_S = 60.0


@dataclass
class PopulateReport:
    studies: int = 0
    new_series: int = 0
    requests: list[tuple[str, str, str, str, str]] = field(
        default_factory=list
    )  # uid, project, name, event, why


def settled_series(paths: SitePaths, settle_s: float) -> dict[str, list[SeriesRecord]]:
    """Study UID -> series records whose JSON has not changed for ``settle_s`` seconds."""
    now = time.time()
    studies: dict[str, list[SeriesRecord]] = defaultdict(list)
    for study_dir in raw_study_dirs(paths):
        files = [f for f in series_files(study_dir) if now - f.stat().st_mtime >= settle_s]
        for _, record in iter_series(files):
            studies[study_dir.name].append(record)
    return studies


def study_record(uid: str, series: list[SeriesRecord]) -> Study:
    first = min(
        series, key=lambda r: (str(r.get("SeriesNumber", "")), str(r.get("SeriesInstanceUID")))
    )
    calling, called, _ = incoming_connection(first)
    return Study(
        study_instance_uid=uid,
        study_institution_name=text_of(first, "InstitutionName"),
        study_aetitle_sender=calling,
        study_aetitle_addressed=called,
        study_patient_name=phi_hash(text_of(first, "PatientName")),
        study_patient_id=phi_hash(text_of(first, "PatientID")),
        study_description=text_of(first, "StudyDescription"),
        study_date=text_of(first, "StudyDate"),
        study_time=text_of(first, "StudyTime"),
        study_accession_number=text_of(first, "AccessionNumber"),
        study_arrival_date=now_text(),
    )


def series_record(record: SeriesRecord) -> Series:
    return Series(
        series_instance_uid=text_of(record, "SeriesInstanceUID"),
        series_description=text_of(record, "SeriesDescription"),
        series_date=text_of(
            record, "StudyDate"
        ),  # FIONA has no SeriesDate: falls back to StudyDate
        series_time=text_of(record, "SeriesTime"),
        series_sequence_name=text_of(record, "SequenceName"),
        series_num_files=text_of(record, "NumFiles"),
        series_classify_types=json.dumps(record.get("ClassifyType") or []),
    )


def routing_matches(
    rule: RoutingRule,
    called: str,
    calling: str,
    patient_id: str,
    patient_name: str,
) -> str | None:
    """The participant name a rule assigns (FIONA: PatientID, or PatientName if only it matched)."""
    if not rule.routing_active:
        return None
    ae_ok = bool(rule.routing_incoming_aetitle and rule.routing_incoming_aetitle == called) or bool(
        rule.routing_sending_aetitle and rule.routing_sending_aetitle == calling
    )
    if not ae_ok:
        return None
    if rule.routing_allowed_patientid and re.match(rule.routing_allowed_patientid, patient_id):
        return patient_id
    if rule.routing_allowed_patientname and re.match(
        rule.routing_allowed_patientname, patient_name
    ):
        return patient_name
    return None


class Populator:
    def __init__(self, cfg: SiteConfig, tracker: Tracker, settle_s: float = SETTLE_S) -> None:
        self.cfg, self.tracker, self.settle_s = cfg, tracker, settle_s

    def run(self) -> PopulateReport:
        report = PopulateReport()
        found = settled_series(self.cfg.paths, self.settle_s)
        if not found:
            return report
        known = self.tracker.get_studies(found)
        projects = self.tracker.projects()
        rules = self.tracker.routing_rules()
        coupling = self.tracker.coupling_entries()
        for uid, series in sorted(found.items()):
            incoming = known.get(uid)
            recorded = incoming.series_uids if incoming else set()
            new = [
                series_record(r) for r in series if text_of(r, "SeriesInstanceUID") not in recorded
            ]
            study = study_record(uid, series)
            if incoming is None or new:
                if incoming is not None:
                    study.study_arrival_date = (
                        incoming.study.study_arrival_date or study.study_arrival_date
                    )
                self.tracker.save_study(study, new)
                report.new_series += len(new)
                report.studies += 1
            transfers = incoming.transfers if incoming else []
            self._assign(uid, series, study, transfers, projects, rules, coupling, report)
        return report

    def _request(
        self, report: PopulateReport, uid: str, project: str, name: str, event: str, why: str
    ) -> None:
        t = self.tracker.request_transfer(uid, project, name, event)
        if t is not None:
            report.requests.append((uid, project, name, event, why))
            LOGGER.info(
                "transfer request created",
                extra={
                    "study": uid,
                    "project": project,
                    "event": event,
                    "source": why,
                    "instance": t.instance,
                },
            )

    def _assign(
        self,
        uid: str,
        series: list[SeriesRecord],
        study: Study,
        transfers: list,
        projects: dict[str, Project],
        rules: list[RoutingRule],
        coupling: list[CouplingEntry],
        report: PopulateReport,
    ) -> None:
        first = series[0]
        calling, called, _ = incoming_connection(first)
        patient_id, patient_name = text_of(first, "PatientID"), text_of(first, "PatientName")
        existing = IncomingStudy(study, [], list(transfers))
        for rule in rules:
            name = routing_matches(rule, called, calling, patient_id, patient_name)
            if name and not existing.has_transfer(
                rule.routing_dest_project, name, rule.routing_event_name
            ):
                self._request(
                    report, uid, rule.routing_dest_project, name, rule.routing_event_name, "routing"
                )
        for entry in coupling:
            if matches(entry, study.study_accession_number, uid) and not existing.has_transfer(
                entry.cl_projectname, entry.cl_subjectid, entry.cl_eventname
            ):
                self._request(
                    report,
                    uid,
                    entry.cl_projectname,
                    entry.cl_subjectid,
                    entry.cl_eventname,
                    "coupling list",
                )
        if existing.transfers or any(r[0] == uid for r in report.requests):
            return  # AutoID only assigns studies nobody assigned yet
        for project in projects.values():
            if not (project.active and project.autoid and project.autoid_aetitle == called):
                continue
            key = autoid_key(study.study_patient_id)
            value = self.tracker.autoid_lookup(project.name, key)
            if value is None:
                try:
                    value = generate_id(
                        project.participant_id, self.tracker.autoid_values(project.name)
                    )
                except AutoIDError as exc:
                    LOGGER.error(
                        "AutoID failed", extra={"project": project.name, "error": str(exc)}
                    )
                    continue
                value = self.tracker.autoid_store(project.name, key, value)
            self._request(report, uid, project.name, value, "", "AutoID")
