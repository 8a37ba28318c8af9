"""Research projects: DataTransferProjects in REDCap, or config/projects.yml for the local tracker.

projects.yml (every key but participant_id optional):

    projects:
      DEMO:
        title: Demo study
        participant_id: '^DEMO[0-9]{3}$'   # FIONA's project_patient_naming (re.match)
        events: [baseline, followup]
        destination: research-pacs        # a destination name from config.json
        resend_missing: false              # reconciliation re-sends what the PACS lacks
        active: true
        autoid: {enabled: false, aetitle: ""}
        features: {remove_presentation_states: false, never_rewrite_pixels: false,
                   remove_secondary_captures: false}
        import_rule: {tag: "0032,4000", regexp: ""}
        deid: {...}                        # de-identification settings (read by deid/)
        qc: {gates: [lossless], ...}       # quality-control rules and gates (config/qc.py)
        routing:                           # FIONA's Routing project, per destination project
          - {called_aetitle: DEMO, calling_aetitle: "", patient_id: ".*", patient_name: "",
             event: baseline}
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fionagw.config.errors import ConfigError, ConfigWarning
from fionagw.config.qc import QcRules, rules_from
from fionagw.config.reader import SectionReader
from fionagw.tracking.records import RoutingRule

# project_features checkbox codes in DataTransferProjects
FEATURES = {
    "remove_presentation_states": 0,
    "never_rewrite_pixels": 1,
    "remove_secondary_captures": 2,
}
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# the keys of a project, of its autoid and import_rule and of a routing entry (a misspelled one
# is warned about, see load_projects)
PROJECT_KEYS = (
    "title",
    "participant_id",
    "events",
    "destination",
    "active",
    "resend_missing",
    "autoid",
    "features",
    "import_rule",
    "deid",
    "routing",
    "qc",
)
AUTOID_KEYS = ("enabled", "aetitle")
IMPORT_RULE_KEYS = ("tag", "regexp")
ROUTING_KEYS = (
    "active",
    "called_aetitle",
    "calling_aetitle",
    "patient_id",
    "patient_name",
    "event",
)


class ProjectsError(ConfigError):
    """A problem in projects.yml: one line 'file: key: problem'."""


@dataclass
class Project:
    name: str  # the acronym: DataTransferProjects record id, transfer_project_name
    participant_id: str  # regex for participant IDs
    title: str = ""
    events: list[str] = field(default_factory=list)
    destination: str = ""
    active: bool = True
    autoid: bool = False
    autoid_aetitle: str = ""
    features: set[int] = field(default_factory=set)
    import_rule_tag: str = ""
    import_rule_regexp: str = ""
    deid: dict[str, Any] = field(default_factory=dict)
    resend_missing: bool = False  # whatIsInIDS7 queues a resend of what the PACS lacks
    redcap_token: str = field(default="", repr=False)  # project_token: the project's own REDCap
    qc: QcRules | None = None  # quality-control rules and gates (config/qc.py); None: none
    # FIONA's rewritepixelexclusions: ("gggg,eeee", regex matched at the start of the value);
    # a CHECKBURNEDINFO series that matches keeps its pixels (deid/pixels.py exclusion_of)
    pixel_exclusions: list[tuple[str, str]] = field(default_factory=list)

    def valid_participant(self, value: str) -> bool:
        return bool(value) and re.match(self.participant_id, value) is not None

    def has_feature(self, name: str) -> bool:
        return FEATURES[name] in self.features


def _regex(r: SectionReader, key: str) -> str:
    value = r.get(key, str, "")
    try:
        re.compile(value)
    except re.error as exc:
        raise r.error(key, f"not a valid regular expression: {exc}") from None
    return value


def _read_yaml(file: Path) -> Any:
    try:
        return yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ProjectsError(file, "", f"cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1} column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or exc
        raise ProjectsError(file, "", f"invalid YAML: {where}{problem}") from None


def load_projects(
    file: Path, warnings: list[ConfigWarning] | None = None
) -> tuple[dict[str, Project], list[RoutingRule]]:
    """Parse and validate projects.yml; a missing file means no projects yet. Unknown keys
    are ignored, with a warning appended to ``warnings`` (check-config prints them)."""
    if not file.exists():
        return {}, []
    doc = _read_yaml(file)
    if not isinstance(doc, dict) or not isinstance(doc.get("projects", {}), dict):
        raise ProjectsError(file, "projects", "expected a mapping of project names")
    projects: dict[str, Project] = {}
    rules: list[RoutingRule] = []
    for name, spec in (doc.get("projects") or {}).items():
        path = f"projects.{name}"
        if not isinstance(name, str) or not _NAME.match(name):
            raise ProjectsError(file, path, "a project name has 1-64 letters, digits, _ or -")
        if not isinstance(spec, dict):
            raise ProjectsError(file, path, "expected a mapping")
        r = SectionReader(file, spec, path + ".", ProjectsError, warnings)
        r.warn_unknown(PROJECT_KEYS)
        if "participant_id" not in spec:
            raise r.error("participant_id", "missing (the participant-ID regex)")
        autoid, features, rule = (
            r.section("autoid"),
            r.section("features"),
            r.section("import_rule"),
        )
        autoid.warn_unknown(AUTOID_KEYS)
        rule.warn_unknown(IMPORT_RULE_KEYS)
        unknown = set(features.data) - set(FEATURES)
        if unknown:
            raise r.error("features", f"unknown feature(s): {', '.join(sorted(unknown))}")
        events = r.get("events", list, [])
        if not all(isinstance(e, str) and e for e in events):
            raise r.error("events", "expected a list of event names")
        projects[name] = Project(
            name=name,
            participant_id=_regex(r, "participant_id"),
            title=r.get("title", str, ""),
            events=events,
            destination=r.get("destination", str, ""),
            active=r.get("active", bool, True),
            resend_missing=r.get("resend_missing", bool, False),
            autoid=autoid.get("enabled", bool, False),
            autoid_aetitle=autoid.get("aetitle", str, ""),
            features={code for key, code in FEATURES.items() if features.data.get(key)},
            import_rule_tag=rule.get("tag", str, ""),
            import_rule_regexp=rule.get("regexp", str, ""),
            deid=r.get("deid", dict, {}),
            qc=rules_from(r.get("qc", dict), file, path + ".qc.", ProjectsError)
            if spec.get("qc") is not None
            else None,
        )
        for i, item in enumerate(r.get("routing", list, [])):
            where = f"{path}.routing[{i}]"
            if not isinstance(item, dict):
                raise ProjectsError(file, where, "expected a mapping")
            route = SectionReader(file, item, where + ".", ProjectsError, warnings)
            route.warn_unknown(ROUTING_KEYS)
            rules.append(
                RoutingRule(
                    record_id=f"{name}-{i + 1}",
                    routing_dest_project=name,
                    routing_active=route.get("active", bool, True),
                    routing_incoming_aetitle=route.get("called_aetitle", str, ""),
                    routing_sending_aetitle=route.get("calling_aetitle", str, ""),
                    routing_allowed_patientid=_regex(route, "patient_id"),
                    routing_allowed_patientname=_regex(route, "patient_name"),
                    routing_event_name=route.get("event", str, ""),
                )
            )
    return projects, rules
