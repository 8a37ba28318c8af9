"""What a channel may send about an event: an allow-list, the de-identified identity, the report.

The event log keeps ``ref`` (the study's original UID, the gateway's own key); an outgoing
payload never does. It names the study only by its de-identified UID, computed with the
project's de-identification settings exactly as anonymizeAndSend computes it (a pure
function of the original UID and the project), and the participant only by the pseudonym.
The report PDF attached or embedded is the study's QC report (qc/report.py) with its study UID
replaced by the de-identified one and only the event's project's deliveries.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from fionagw.config import ConfigError, SiteConfig
from fionagw.tracking.base import Tracker, TrackerError

LOGGER = logging.getLogger("fionagw.notify")
FIELDS = ("id", "time", "type", "project", "pseudonym", "study_uid", "series_uid")


@dataclass
class SentStudy:
    """The de-identified study as it left: its (shifted) date and time and, per sent series,
    the de-identified series UID with its instances' (SOP class, SOP instance) UIDs."""

    study_date: str = ""
    study_time: str = ""
    series: dict[str, list[tuple[str, str]]] = field(default_factory=dict)


@dataclass
class Outgoing:
    """One event as channels see it."""

    payload: dict[str, Any]  # allow-listed fields and details
    pdf: bytes | None  # the study's report, when there is one
    csv: tuple[str, bytes] | None = None  # a group report: (file name, content)
    sent: SentStudy | None = None  # the study as it was sent (for the DICOM channel)

    @property
    def id(self) -> str:
        return str(self.payload["id"])

    def text(self) -> str:
        """A plain-text body (e-mail, FHIR conclusion)."""
        p = self.payload
        lines = [f"Event: {p['type']}", f"Time: {p['time']}"]
        for key, label in (
            ("project", "Project"),
            ("pseudonym", "Participant"),
            ("study_uid", "Study (de-identified UID)"),
        ):
            if p.get(key):
                lines.append(f"{label}: {p[key]}")
        for key, value in sorted(p.get("details", {}).items()):
            if value not in ("", None, [], False):
                shown = ", ".join(map(str, value)) if isinstance(value, list) else value
                lines.append(f"{key.replace('_', ' ').capitalize()}: {shown}")
        lines.append(f"Event id: {p['id']}")
        return "\n".join(lines) + "\n"


def _clean(value: Any) -> Any:
    """Details are our own emitters' counts, names of checks, reasons: keep scalars only."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, (str, int, float, bool))]
    return str(value)


class Resolver:
    """Turns logged events into Outgoing ones (caches per project and study, one run)."""

    def __init__(self, cfg: SiteConfig, tracker: Tracker | None) -> None:
        self.cfg, self.tracker = cfg, tracker
        self._projects: dict[str, Any] | None = None
        self._deid: dict[str, Any] = {}
        self._pdf: dict[tuple[str, str], bytes | None] = {}

    def _project(self, name: str) -> Any:
        if self._projects is None:
            try:
                self._projects = dict(self.tracker.projects()) if self.tracker else {}
            except TrackerError as exc:
                LOGGER.warning("projects not readable", extra={"error": str(exc)})
                self._projects = {}
        return self._projects.get(name)

    def study_uid(self, ref: str, project: str) -> str:
        """The de-identified StudyInstanceUID of ``ref`` in ``project`` ("" if unknown)."""
        if not ref or not project:
            return ""
        if project not in self._deid:
            from fionagw.deid.factory import deidentifier_for
            from fionagw.deid.project_settings import settings_for_project

            p = self._project(project)
            try:
                self._deid[project] = (
                    deidentifier_for(settings_for_project(p, self.cfg)) if p else None
                )
            except (ConfigError, OSError) as exc:
                LOGGER.warning("no de-identification settings", extra={"error": str(exc)})
                self._deid[project] = None
        deid = self._deid[project]
        return deid.uid(ref) if deid is not None else ""

    def pseudonym(self, ref: str, project: str) -> str:
        if not ref or not project or self.tracker is None:
            return ""
        try:
            for t in self.tracker.transfers(study_uid=ref, project=project):
                if t.transfer_name:
                    return str(t.transfer_name)
        except TrackerError:
            pass
        return ""

    def report_pdf(self, ref: str, project: str, study_uid: str) -> bytes | None:
        """The study's QC report, de-identified for ``project``; None when there is none."""
        key = (ref, project)
        if key in self._pdf:
            return self._pdf[key]
        pdf = None
        if ref and self.tracker is not None and self.cfg.paths.raw_study_dir(ref).is_dir():
            try:
                from fionagw.qc.report import build_report
                from fionagw.qc.report_pdf import report_pdf

                report = deidentify_report(
                    build_report(self.cfg, self.tracker, ref), project, study_uid
                )
                pdf = report_pdf(scrub_report(report, study_identifiers(self.cfg, ref)))
            except Exception as exc:  # noqa: BLE001 - no report is no attachment, not a failure
                LOGGER.warning(
                    "report not made for a notification", extra={"error": str(exc)[:200]}
                )
        self._pdf[key] = pdf
        return pdf

    def sent_study(self, ref: str, project: str, participant: str) -> SentStudy | None:
        """What was sent of ``ref`` to ``project``: the series the send plan sends (only
        those in the transfer's sent manifest when it has one), their UIDs mapped as the
        de-identification maps them, and the study date/time of the first sent header
        de-identified by the project's own settings (so shifted exactly as sent)."""
        from pydicom import dcmread

        from fionagw.transfers.selection import plan_series

        p = self._project(project) if ref and project and participant else None
        raw = self.cfg.paths.raw_study_dir(ref) if p is not None else None
        if p is None or raw is None or not raw.is_dir() or not self.study_uid(ref, project):
            return None
        deid = self._deid[project]
        manifest = self._manifest(ref, project)
        sent = SentStudy()
        try:
            plans = plan_series(raw, p)
        except OSError as exc:
            LOGGER.warning("sent series not resolved", extra={"error": exc.strerror})
            return sent
        for plan in plans:
            if not (plan.sends and plan.files):
                continue
            series = deid.uid(plan.series_uid)
            if manifest is not None and series not in manifest:
                continue
            try:
                header = dcmread(plan.files[0], stop_before_pixels=True)
                sop_class = str(header.get("SOPClassUID", ""))
                if not sent.study_date:
                    out = deid.deidentify(header, participant)
                    sent.study_date = str(out.get("StudyDate", "") or "")
                    sent.study_time = str(out.get("StudyTime", "") or "")
            except Exception as exc:  # noqa: BLE001 - a dropped or unreadable header: skip it
                LOGGER.warning("sent series not resolved", extra={"error": str(exc)[:200]})
                continue
            sops = [deid.uid(s) for s in plan.sops]
            if manifest is not None:
                sops = [s for s in sops if s in manifest[series]]
            sent.series[series] = [(sop_class, s) for s in sops]
        return sent

    def _manifest(self, ref: str, project: str) -> dict[str, set[str]] | None:
        """The sent manifest's series -> instances of the study's transfer to ``project``."""
        from fionagw.reconcile.check import request_name
        from fionagw.reconcile.manifest import ManifestError, read_manifest

        try:
            for t in self.tracker.transfers(study_uid=ref, project=project) if self.tracker else []:
                m = read_manifest(self.cfg.paths, request_name(self.cfg, t))
                if m is not None:
                    return {k: set(v) for k, v in m.series.items()}
        except (TrackerError, ManifestError, OSError):
            pass
        return None

    def outgoing(self, event: dict[str, Any], *, with_pdf: bool = False) -> Outgoing:
        payload = {k: str(event.get(k) or "") for k in FIELDS}
        ref, project = str(event.get("ref") or ""), payload["project"]
        if not payload["study_uid"]:
            payload["study_uid"] = self.study_uid(ref, project)
        if not payload["pseudonym"]:
            payload["pseudonym"] = self.pseudonym(ref, project)
        details = event.get("details") or {}
        payload["details"] = {str(k): _clean(v) for k, v in details.items()}
        payload["site"] = self.cfg.site
        pdf = self.report_pdf(ref, project, payload["study_uid"]) if with_pdf else None
        return Outgoing(payload, pdf, self.group_csv(payload) if with_pdf else None)

    def group_csv(self, payload: dict[str, Any]) -> tuple[str, bytes] | None:
        if payload["type"] != "group-report":
            return None
        from fionagw.notify.groups import report_path

        d = payload["details"]
        path = report_path(self.cfg, str(d.get("group", "")), str(d.get("file", "")))
        return (path.name, path.read_bytes()) if path is not None else None


def deidentify_report(report: dict[str, Any], project: str, study_uid: str) -> dict[str, Any]:
    """The report as it may leave: the de-identified study UID (or none), only ``project``'s
    deliveries and de-identification summary, no participant of another project."""
    out = dict(report)
    out["study"] = {**report.get("study", {}), "study_uid": study_uid or "(not sent yet)"}
    out["deliveries"] = [
        d
        if d.get("project") == project
        else {"project": d.get("project", ""), "state": d.get("state", "")}
        for d in report.get("deliveries", [])
        if not project or d.get("project") == project
    ]
    out["deidentification"] = {
        k: v for k, v in report.get("deidentification", {}).items() if k == project
    }
    return out


def study_identifiers(cfg: SiteConfig, ref: str) -> Any:
    """The identifying values of the study (deid/release.collect_identifiers, from the first
    file of each series), for scrubbing text that came from its headers."""
    from pydicom import dcmread

    from fionagw.deid.release import collect_identifiers

    headers = []
    try:
        for series in sorted(cfg.paths.raw_study_dir(ref).iterdir()):
            if series.is_dir():
                first = next(
                    (f for f in sorted(series.iterdir()) if not f.name.startswith(".")), None
                )
                if first is not None:
                    headers.append(dcmread(first, stop_before_pixels=True))
    except OSError:
        pass
    return collect_identifiers(headers)


def scrub_report(report: Any, ids: Any) -> Any:
    """Every text of the report with the study's identifying values and original UIDs
    replaced by ``***`` (descriptions, QC findings and bypass reasons are free text; the
    gateway's own dates stay)."""
    from fionagw.deid.patterns import id_patterns
    from fionagw.deid.scrub import REPLACEMENT, scrub_text

    regexes, patterns = [ids.regex()], id_patterns(ids.patterns)

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            text = scrub_text(value, regexes, patterns, dates=False)
            for uid in ids.uids:
                text = text.replace(uid, REPLACEMENT)
            return text
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    return clean(report)
