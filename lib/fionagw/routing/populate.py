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
import os
import re
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from fionagw.config import SiteConfig
from fionagw.ops.log import phi_hash
from fionagw.routing.autoid import AutoIDError, autoid_key, generate_id
from fionagw.routing.coupling import matches
from fionagw.tracking.base import Tracker
from fionagw.tracking.projects import Project
from fionagw.tracking.records import (
    CouplingEntry,
    IncomingStudy,
    RoutingRule,
    Series,
    Study,
    now_text,
)

log = logging.getLogger("fionagw.populateIncoming")
SETTLE_S = 60.0


@dataclass
class PopulateReport:
    studies: int = 0
    new_series: int = 0
    requests: list[tuple[str, str, str, str, str]] = field(
        default_factory=list
    )  # uid, project, name, event, why


def settled_series(raw: Path, settle_s: float) -> dict[str, list[dict]]:
    """Study UID -> series records whose JSON has not changed for ``settle_s`` seconds."""
    now = time.time()
    studies: dict[str, list[dict]] = defaultdict(list)
    for study_dir in os.scandir(raw) if raw.is_dir() else ():
        if not study_dir.is_dir(follow_symlinks=False):
            continue
        for entry in os.scandir(study_dir.path):
            if not entry.name.endswith(".json") or now - entry.stat().st_mtime < settle_s:
                continue
            try:
                record = json.loads(Path(entry.path).read_text())
            except (OSError, ValueError):
                log.warning("series JSON unreadable; skipped this run", extra={"file": entry.path})
                continue
            if isinstance(record, dict):
                studies[study_dir.name].append(record)
    return studies


def _text(value: object) -> str:
    if isinstance(value, list):
        return "\\".join(str(v) for v in value)
    return "" if value is None else str(value)


def study_record(uid: str, series: list[dict]) -> Study:
    first = min(
        series, key=lambda r: (str(r.get("SeriesNumber", "")), str(r.get("SeriesInstanceUID")))
    )
    conn = first.get("IncomingConnection") or {}
    return Study(
        study_instance_uid=uid,
        study_institution_name=_text(first.get("InstitutionName")),
        study_aetitle_sender=_text(conn.get("AETitleCaller")),
        study_aetitle_addressed=_text(conn.get("AETitleCalled")),
        study_patient_name=phi_hash(_text(first.get("PatientName"))),
        study_patient_id=phi_hash(_text(first.get("PatientID"))),
        study_description=_text(first.get("StudyDescription")),
        study_date=_text(first.get("StudyDate")),
        study_time=_text(first.get("StudyTime")),
        study_accession_number=_text(first.get("AccessionNumber")),
        study_arrival_date=now_text(),
    )


def series_record(record: dict) -> Series:
    return Series(
        series_instance_uid=_text(record.get("SeriesInstanceUID")),
        series_description=_text(record.get("SeriesDescription")),
        series_date=_text(
            record.get("StudyDate")
        ),  # FIONA has no SeriesDate: falls back to StudyDate
        series_time=_text(record.get("SeriesTime")),
        series_sequence_name=_text(record.get("SequenceName")),
        series_num_files=_text(record.get("NumFiles")),
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
        found = settled_series(self.cfg.paths.raw, self.settle_s)
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
                series_record(r)
                for r in series
                if _text(r.get("SeriesInstanceUID")) not in recorded
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
            log.info(
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
        series: list[dict],
        study: Study,
        transfers: list,
        projects: dict[str, Project],
        rules: list[RoutingRule],
        coupling: list[CouplingEntry],
        report: PopulateReport,
    ) -> None:
        first = series[0]
        conn = first.get("IncomingConnection") or {}
        called, calling = _text(conn.get("AETitleCalled")), _text(conn.get("AETitleCaller"))
        patient_id, patient_name = _text(first.get("PatientID")), _text(first.get("PatientName"))
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
                    log.error("AutoID failed", extra={"project": project.name, "error": str(exc)})
                    continue
                value = self.tracker.autoid_store(project.name, key, value)
            self._request(report, uid, project.name, value, "", "AutoID")
