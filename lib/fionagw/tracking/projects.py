"""Research projects: DataTransferProjects in REDCap, or config/projects.yml for the local tracker.

projects.yml (every key but participant_id optional):

    projects:
      DEMO:
        title: Demo study
        participant_id: '^DEMO[0-9]{3}$'   # FIONA's project_patient_naming (re.match)
        events: [baseline, followup]
        destination: research-pacs        # a destination name from config.json
        active: true
        autoid: {enabled: false, aetitle: ""}
        features: {remove_presentation_states: false, never_rewrite_pixels: false,
                   remove_secondary_captures: false}
        import_rule: {tag: "0032,4000", regexp: ""}
        deid: {...}                        # de-identification settings (read by deid/)
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

from fionagw.tracking.records import RoutingRule

# project_features checkbox codes in DataTransferProjects
FEATURES = {
    "remove_presentation_states": 0,
    "never_rewrite_pixels": 1,
    "remove_secondary_captures": 2,
}
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class ProjectsError(Exception):
    """One line: file, key path, problem."""

    def __init__(self, file: Path | str, key: str, problem: str) -> None:
        super().__init__(f"{file}: {key}: {problem}")


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
    redcap_token: str = field(default="", repr=False)  # project_token: the project's own REDCap

    def valid_participant(self, value: str) -> bool:
        return bool(value) and re.match(self.participant_id, value) is not None

    def has_feature(self, name: str) -> bool:
        return FEATURES[name] in self.features


def _get(
    file: Path, data: dict, key: str, path: str, kind: type | tuple[type, ...], default: Any
) -> Any:
    value = data.get(key, default)
    if value is None:
        value = default
    if isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
        raise ProjectsError(
            file, f"{path}.{key}", f"expected {getattr(kind, '__name__', kind)}, got {value!r}"
        )
    return value


def _regex(file: Path, value: str, where: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ProjectsError(file, where, f"not a valid regular expression: {exc}") from None
    return value


def load_projects(file: Path) -> tuple[dict[str, Project], list[RoutingRule]]:
    """Parse and validate projects.yml; a missing file means no projects yet."""
    if not file.exists():
        return {}, []
    try:
        doc = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1} column {mark.column + 1}: " if mark else ""
        raise ProjectsError(
            file, "", f"invalid YAML: {where}{getattr(exc, 'problem', exc)}"
        ) from None
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
        if "participant_id" not in spec:
            raise ProjectsError(
                file, f"{path}.participant_id", "missing (the participant-ID regex)"
            )
        autoid = _get(file, spec, "autoid", path, dict, {})
        features = _get(file, spec, "features", path, dict, {})
        unknown = set(features) - set(FEATURES)
        if unknown:
            raise ProjectsError(
                file, f"{path}.features", f"unknown feature(s): {', '.join(sorted(unknown))}"
            )
        rule = _get(file, spec, "import_rule", path, dict, {})
        events = _get(file, spec, "events", path, list, [])
        if not all(isinstance(e, str) and e for e in events):
            raise ProjectsError(file, f"{path}.events", "expected a list of event names")
        project = Project(
            name=name,
            participant_id=_regex(
                file, _get(file, spec, "participant_id", path, str, ""), f"{path}.participant_id"
            ),
            title=_get(file, spec, "title", path, str, ""),
            events=events,
            destination=_get(file, spec, "destination", path, str, ""),
            active=_get(file, spec, "active", path, bool, True),
            autoid=_get(file, autoid, "enabled", f"{path}.autoid", bool, False),
            autoid_aetitle=_get(file, autoid, "aetitle", f"{path}.autoid", str, ""),
            features={code for key, code in FEATURES.items() if features.get(key)},
            import_rule_tag=_get(file, rule, "tag", f"{path}.import_rule", str, ""),
            import_rule_regexp=_get(file, rule, "regexp", f"{path}.import_rule", str, ""),
            deid=_get(file, spec, "deid", path, dict, {}),
        )
        projects[name] = project
        for i, r in enumerate(_get(file, spec, "routing", path, list, [])):
            where = f"{path}.routing[{i}]"
            if not isinstance(r, dict):
                raise ProjectsError(file, where, "expected a mapping")
            rules.append(
                RoutingRule(
                    record_id=f"{name}-{i + 1}",
                    routing_dest_project=name,
                    routing_active=_get(file, r, "active", where, bool, True),
                    routing_incoming_aetitle=_get(file, r, "called_aetitle", where, str, ""),
                    routing_sending_aetitle=_get(file, r, "calling_aetitle", where, str, ""),
                    routing_allowed_patientid=_regex(
                        file, _get(file, r, "patient_id", where, str, ""), where
                    ),
                    routing_allowed_patientname=_regex(
                        file, _get(file, r, "patient_name", where, str, ""), where
                    ),
                    routing_event_name=_get(file, r, "event", where, str, ""),
                )
            )
    return projects, rules
