"""Editing the local tracker's projects (``projects.yml``) from the Projects page, without HTTP.

One project at a time: its title, active flag, participant-ID regex, events, destination,
resend flag and the main de-identification settings (mode, date handling and range, profile
options, private keep-list). Its other keys (routing, autoid, features, qc, further deid keys)
are kept as they are. The candidate file is validated by the code ``fiona check-config`` runs
(``load_projects``, the destination check, and ``settings_for_project`` for the deid block);
errors come back by field and nothing is written. A valid change keeps the previous file as
``projects.yml.<UTC timestamp>`` and is audited. With the REDCap tracker the projects live in
DataTransferProjects and are read-only here.

The YAML is written anew (``yaml.safe_dump``): comments in the file do not survive a save (the
kept previous version still has them).
"""

from __future__ import annotations

import dataclasses
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fionagw.config import ConfigError, SiteConfig

from . import audit
from .settings import GENERAL, write_with_backup

# FIONA's rule for a new project's name (DataTransferProjects record id)
NEW_NAME = re.compile(r"^[A-Za-z0-9_-]{5,20}$")
DATE_MODES = ("shift", "keep", "remove")
DEID_MODES = ("keyed", "fiona")
OPTIONS = (
    "retain_patient_characteristics",
    "clean_descriptors",
    "clean_structured_content",
    "retain_device_identity",
    "retain_institution_identity",
    "clean_graphics",
    "clean_pixel_data",
    "clean_recognizable_visual_features",
)
DEFAULT_OPTIONS = (
    "clean_descriptors",
    "retain_patient_characteristics",
    "clean_structured_content",
)
PIXEL_MODES = ("identifying", "all")  # deid/pixels.py MODES
QC_TEXT = ("study_description", "series_description")  # regexes of config/qc.py


@dataclass
class ProjectOutcome:
    errors: dict[str, str] = field(default_factory=dict)  # form field (or GENERAL) -> problem
    changed: list[str] = field(default_factory=list)
    backup: Path | None = None
    created: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors


def editable(cfg: SiteConfig) -> bool:
    """Does this site keep its projects in projects.yml (the local tracker)?"""
    return cfg.tracker.backend == "local" and cfg.tracker.projects_file is not None


def _doc(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {"projects": {}}
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(doc, dict):
        raise ConfigError(path, "projects", "expected a mapping of project names")
    if not isinstance(doc.get("projects") or {}, dict):
        raise ConfigError(path, "projects", "expected a mapping of project names")
    doc["projects"] = doc.get("projects") or {}
    return doc


def raw_projects(cfg: SiteConfig) -> dict[str, dict[str, Any]]:
    """Every project of projects.yml as written (for the forms)."""
    assert cfg.tracker.projects_file is not None
    return _doc(cfg.tracker.projects_file)["projects"]


def form_of(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A project's form values from its projects.yml entry."""
    deid = spec.get("deid") if isinstance(spec.get("deid"), dict) else {}
    pixels = deid.get("pixels") if isinstance(deid.get("pixels"), dict) else {}
    qc = spec.get("qc") if isinstance(spec.get("qc"), dict) else {}
    low, high = (
        (deid.get("date_shift_range") or ["", ""])[:2] if deid.get("date_shift_range") else ("", "")
    )
    return {
        "title": spec.get("title", ""),
        "active": spec.get("active", True) is not False,
        "participant_id": spec.get("participant_id", ""),
        "events": ", ".join(spec.get("events") or []),
        "destination": spec.get("destination", ""),
        "resend_missing": bool(spec.get("resend_missing", False)),
        "deid.mode": deid.get("mode", ""),
        "deid.date_mode": deid.get("date_mode", ""),
        "deid.range_low": "" if low == "" else str(low),
        "deid.range_high": "" if high == "" else str(high),
        "deid.options": list(deid.get("options", DEFAULT_OPTIONS)),
        "deid.private_keep": "\n".join(deid.get("private_keep") or []),
        "deid.pixels.enabled": "false" if pixels.get("enabled", True) is False else "true",
        "deid.pixels.mode": pixels.get("mode", ""),
        "qc.gates": list(qc.get("gates") or []),
        "qc.study_description": qc.get("study_description", ""),
        "qc.series_description": qc.get("series_description", ""),
    }


def _apply_form(spec: dict[str, Any], form: Mapping[str, Any], errors: dict[str, str]) -> None:
    """Put the form's values into ``spec`` (a copy of the project's entry)."""

    def text(key: str) -> str:
        return str(form.get(key, "")).strip()

    for key in ("title", "participant_id", "destination"):
        if text(key):
            spec[key] = text(key)
        else:
            spec.pop(key, None)
    spec["active"] = form.get("active") == "true"
    if form.get("resend_missing") == "true":
        spec["resend_missing"] = True
    else:
        spec.pop("resend_missing", None)
    events = [e.strip() for e in re.split(r"[,\n]", text("events")) if e.strip()]
    if events:
        spec["events"] = events
    else:
        spec.pop("events", None)
    deid = dict(spec.get("deid") or {})
    for key, allowed in (("mode", DEID_MODES), ("date_mode", DATE_MODES)):
        value = text(f"deid.{key}")
        if value and value not in allowed:
            errors[f"deid.{key}"] = f"one of {', '.join(allowed)}"
        elif value:
            deid[key] = value
        else:
            deid.pop(key, None)
    low, high = text("deid.range_low"), text("deid.range_high")
    if low or high:
        try:
            deid["date_shift_range"] = [int(low), int(high)]
        except ValueError:
            errors["deid.range_low"] = "two whole numbers of days (low and high)"
    else:
        deid.pop("date_shift_range", None)
    options = (
        form.getlist("deid.options") if hasattr(form, "getlist") else form.get("deid.options", [])
    )  # type: ignore[union-attr]
    if list(options) == list(DEFAULT_OPTIONS) and "options" not in deid:
        pass  # the defaults as shown: keep the key absent
    else:
        deid["options"] = [o for o in OPTIONS if o in options]
    keep = [k.strip() for k in text("deid.private_keep").splitlines() if k.strip()]
    if keep:
        deid["private_keep"] = keep
    else:
        deid.pop("private_keep", None)
    # burned-in text (deid.pixels): on/off and mode; its other keys are kept as they are
    pixels = dict(deid.get("pixels") or {}) if isinstance(deid.get("pixels"), dict) else {}
    switch = text("deid.pixels.enabled")  # absent: as it is
    if switch == "true":
        pixels.pop("enabled", None)  # on is the default
    elif switch == "false":
        pixels["enabled"] = False
    elif switch:
        errors["deid.pixels.enabled"] = "on (true) or off (false)"
    if text("deid.pixels.mode"):
        pixels["mode"] = text("deid.pixels.mode")
    else:
        pixels.pop("mode", None)
    if pixels:
        deid["pixels"] = pixels
    else:
        deid.pop("pixels", None)
    if deid:
        spec["deid"] = deid
    else:
        spec.pop("deid", None)
    # QC gates and descriptions; series, diffusion and demographics rules are kept as they are
    qc = dict(spec.get("qc") or {}) if isinstance(spec.get("qc"), dict) else {}
    gates = list(_many(form, "qc.gates"))
    if gates:
        qc["gates"] = gates
    else:
        qc.pop("gates", None)
    for key in QC_TEXT:
        if text(f"qc.{key}"):
            qc[key] = text(f"qc.{key}")
        else:
            qc.pop(key, None)
    if qc:
        spec["qc"] = qc
    else:
        spec.pop("qc", None)


def _many(form: Mapping[str, Any], key: str) -> list[str]:
    """A multi-valued field (checkboxes) of a request form or a plain mapping."""
    if hasattr(form, "getlist"):
        return list(form.getlist(key))  # type: ignore[union-attr]
    value = form.get(key, [])
    return [value] if isinstance(value, str) else list(value)


_FIELD_OF_KEY = {"date_shift_range": "deid.range_low"}


def _field(error: ConfigError, name: str) -> str:
    """The form field of an error's key ``projects.NAME.deid.date_mode`` -> ``deid.date_mode``."""
    prefix = f"projects.{name}."
    if not error.key.startswith(prefix):
        return GENERAL
    key = error.key[len(prefix) :].split("[", 1)[0]
    if key.startswith("deid."):
        tail = key[len("deid.") :]
        if tail.startswith("pixels."):
            return key if key in ("deid.pixels.enabled", "deid.pixels.mode") else GENERAL
        return _FIELD_OF_KEY.get(tail, f"deid.{tail}")
    if key in ("qc.gates", *(f"qc.{k}" for k in QC_TEXT)):
        return key
    return key if key in ("title", "participant_id", "events", "destination") else GENERAL


def _validate(cfg: SiteConfig, doc: dict[str, Any], name: str) -> dict[str, str]:
    from fionagw.config.projects import load_projects
    from fionagw.config.site import _check_projects
    from fionagw.deid.project_settings import settings_for_project

    assert cfg.tracker.projects_file is not None
    folder = cfg.tracker.projects_file.parent
    fd, tmp = tempfile.mkstemp(prefix=".projects-check-", suffix=".yml", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            yaml.safe_dump(doc, out, sort_keys=False, allow_unicode=True)
        candidate = dataclasses.replace(
            cfg, tracker=dataclasses.replace(cfg.tracker, projects_file=Path(tmp))
        )
        try:
            _check_projects(candidate, [])
            project = load_projects(Path(tmp))[0][name]
            settings_for_project(project, candidate)
        except ConfigError as exc:
            where = _field(exc, name)
            return {where: exc.problem if where != GENERAL else f"{exc.key}: {exc.problem}"}
    finally:
        os.unlink(tmp)
    return {}


def save_project(
    cfg: SiteConfig, name: str, form: Mapping[str, Any], actor: str, new: bool
) -> ProjectOutcome:
    """Create (``new``) or change project ``name`` from the form; nothing is written unless
    everything is valid."""
    outcome = ProjectOutcome(created=new)
    if not editable(cfg):
        outcome.errors[GENERAL] = (
            "the projects are in REDCap (DataTransferProjects): change them there"
        )
        return outcome
    path = cfg.tracker.projects_file
    assert path is not None
    doc = _doc(path)
    projects = doc["projects"]
    if new:
        if not NEW_NAME.match(name):
            outcome.errors["name"] = "5-20 letters, digits, _ or - (FIONA's rule)"
            return outcome
        if name in projects:
            outcome.errors["name"] = f"project {name} exists"
            return outcome
        before: dict[str, Any] = {}
    elif name not in projects:
        outcome.errors[GENERAL] = f"no project {name!r} in {path.name}"
        return outcome
    else:
        before = projects[name]
    spec = dict(before)
    _apply_form(spec, form, outcome.errors)
    if not spec.get("participant_id"):
        outcome.errors["participant_id"] = "required: the participant-ID regex"
    if outcome.errors:
        return outcome
    outcome.changed = sorted(k for k in set(spec) | set(before) if spec.get(k) != before.get(k))
    if not outcome.changed and not new:
        return outcome
    projects[name] = spec
    outcome.errors = _validate(cfg, doc, name)
    if outcome.errors:
        return outcome
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    outcome.backup = write_with_backup(path, text.encode("utf-8"))
    if not outcome.backup.exists():
        outcome.backup = None
    audit.record(
        cfg,
        "project-add" if new else "project-change",
        name,
        "project created" if new else "project changed",
        who=actor,
        changed=outcome.changed,
        backup=outcome.backup.name if outcome.backup else "",
    )
    return outcome
