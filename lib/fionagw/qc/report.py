"""The per-study report: QC results, de-identification summary, deliveries, bypasses.

:func:`build_report` gathers it (a plain dict, which is also the JSON format); report_text.py,
report_html.py and report_pdf.py render it. It holds no patient name, ID or accession number:
the study is named by its description, date and modalities, participants by their research
pseudonym, and the only UID is the StudyInstanceUID the gateway files it under.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from typing import Any

from fionagw.config import ConfigError, SiteConfig
from fionagw.config.projects import Project
from fionagw.deid.pixels import ENGINE
from fionagw.deid.project_settings import pixel_settings_for_project, settings_for_project
from fionagw.deid.table_ps315 import EDITION, ROWS
from fionagw.qc.results import StudyQc
from fionagw.qc.run import current
from fionagw.tracking.base import Tracker, TrackerError
from fionagw.transfers.actions import request_name
from fionagw.transfers.failures import PERMANENT, TRANSIENT, read_record

LOGGER = logging.getLogger(__name__)
FORMATS = ("html", "pdf", "json", "txt")
# what the basic profile's action codes do to an attribute, in words
ACTIONS = {"X": "removed", "Z": "emptied", "D": "replaced", "U": "replaced", "K": "kept"}


def _stamp(epoch: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(epoch)) if epoch else ""


def profile_counts() -> dict[str, int]:
    """How many attributes of PS3.15 Table E.1-1 the basic profile removes, empties, replaces."""
    counts: Counter[str] = Counter()
    for row in ROWS:
        action = row[3].split("/")[0]
        counts[ACTIONS.get(action, "cleaned")] += 1
    return dict(sorted(counts.items()))


def deid_summary(cfg: SiteConfig, project: Project) -> dict[str, Any]:
    try:
        s = settings_for_project(project, cfg)
    except (ConfigError, ValueError) as exc:
        return {"error": f"settings invalid: {exc}"}
    return {
        "profile": "DICOM PS3.15 Basic Application Level Confidentiality Profile"
        + (" with FIONA's DICOMAnonymizer rules" if s.table == "fiona" else ""),
        "edition": EDITION,
        "uids": s.uid_scheme,
        "dates": s.date_mode,
        "options": sorted(s.options),
        "private_tags_kept": len(s.private_keep),
        "diffusion_tags_kept": s.keep_diffusion,
        "tag_changes": len(s.tag_changes) + len(s.regex_tag_changes),
        "attributes": profile_counts(),
        "pixel_cleaning": _pixel_cleaning(project),
    }


def _pixel_cleaning(project: Project) -> str:
    """What happens to series that may carry burned-in text (deid/pixels.py)."""
    if project.has_feature("remove_secondary_captures"):
        return "CHECKBURNEDINFO series are not sent (remove_secondary_captures)"
    if project.has_feature("never_rewrite_pixels"):
        return "not done: CHECKBURNEDINFO series are sent as they are (never_rewrite_pixels)"
    try:
        p = pixel_settings_for_project(project)
    except ConfigError as exc:
        return f"settings invalid: {exc}"
    if not p.enabled:
        return "off: CHECKBURNEDINFO series are held back"
    return f"burned-in text masked in CHECKBURNEDINFO series ({ENGINE} OCR, {p.mode}), verified"


def _deliveries(cfg: SiteConfig, tracker: Tracker, study_uid: str) -> list[dict[str, Any]]:
    out = []
    try:
        transfers = tracker.transfers(study_uid=study_uid)
        checks = {c.transfer_instance: c for c in tracker.pacs_checks(study_uid)}
    except TrackerError as exc:
        LOGGER.warning("tracker unavailable for the report", extra={"error": str(exc)})
        return [{"error": "the tracker could not be read"}]
    for t in transfers:
        record = read_record(cfg.paths, request_name(cfg, t))
        state = "sent" if t.transfer_date else "requested"
        reason = ""
        if record is not None:
            state = (
                "cancelled"
                if record.cancelled
                else ("held by QC" if record.reason == "qc" else "failed")
            )
            reason = {**PERMANENT, **TRANSIENT}.get(record.reason, record.reason)
        check = checks.get(t.instance)
        out.append(
            {
                "project": t.transfer_project_name,
                "participant": t.transfer_name,
                "event": t.transfer_event_name,
                "requested": t.transfer_requested_date,
                "state": state,
                "sent": t.transfer_date,
                "reason": reason,
                "verified": check.summary() if check is not None else "",
            }
        )
    return out


def build_report(cfg: SiteConfig, tracker: Tracker, study_uid: str) -> dict[str, Any]:
    """Everything the report shows, for the study as it is now (QC made fresh if needed)."""
    try:
        projects = tracker.projects()
    except TrackerError:
        projects = {}
    deliveries = _deliveries(cfg, tracker, study_uid)
    names = sorted({d["project"] for d in deliveries if d.get("project") in projects})
    qc: StudyQc = current(cfg, study_uid)
    for name in names:
        qc = current(cfg, study_uid, projects[name])
    facts = qc.facts
    return {
        "title": "Study report",
        "made": _stamp(time.time()),
        "study": {
            "study_uid": study_uid,
            "description": facts.study_description,
            "series": len(facts.series),
            "images": facts.images,
            "age": facts.age,
            "sex": facts.sex,
        },
        "series": [
            {
                "number": s.number,
                "description": s.description,
                "modality": s.modality,
                "images": s.images,
                "classify_type": s.classify_type,
                "transfer_syntaxes": s.syntaxes,
            }
            for s in facts.series
        ],
        "qc": {
            "state": qc.state(),
            "checked": _stamp(qc.checked_at),
            "evaluations": [
                {
                    "project": e.project or "(site defaults)",
                    "gates": e.gates,
                    "state": qc.state(e.project),
                    "checks": [
                        {
                            "name": c.name,
                            "status": c.status,
                            "gate": c.name in e.gates,
                            "summary": c.summary,
                            "details": c.details,
                        }
                        for c in e.checks
                    ],
                }
                for e in qc.evaluations.values()
            ],
        },
        "bypasses": [
            {
                "project": b.project,
                "checks": b.checks,
                "user": b.user,
                "at": _stamp(b.at),
                "reason": b.reason,
            }
            for b in qc.bypasses
        ],
        "deidentification": {name: deid_summary(cfg, projects[name]) for name in names},
        "deliveries": deliveries,
    }


def report_json(report: dict[str, Any]) -> bytes:
    return json.dumps(report, indent=2, sort_keys=True).encode("utf-8")


def render(report: dict[str, Any], fmt: str) -> bytes:
    """The report in ``fmt`` (one of FORMATS)."""
    if fmt == "json":
        return report_json(report)
    if fmt == "txt":
        from fionagw.qc.report_text import report_text

        return report_text(report).encode("utf-8")
    if fmt == "html":
        from fionagw.qc.report_html import report_html

        return report_html(report).encode("utf-8")
    if fmt == "pdf":
        from fionagw.qc.report_pdf import report_pdf

        return report_pdf(report)
    raise ValueError(f"unknown report format {fmt!r} (formats: {', '.join(FORMATS)})")
