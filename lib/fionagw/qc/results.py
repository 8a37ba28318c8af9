"""A study's QC result as stored (``DATADIR/qc/<Study>.json``, qc/store.py) and shown.

``facts``: what the headers said (scan.py); ``evaluations``: the checks against each project's
rules (``""``: the site's defaults, for a study no project has yet); ``bypasses``: who let
which failed checks of which project pass, when and why. No value that identifies a patient.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from fionagw.qc.scan import StudyFacts

PASS, FAIL, NOT_APPLICABLE = "pass", "fail", "n/a"


@dataclass
class CheckResult:
    name: str  # a key of config/qc.CHECKS
    status: str  # PASS, FAIL or NOT_APPLICABLE
    summary: str  # one line for people
    details: list[str] = field(default_factory=list)  # one line per finding
    figures: dict[str, Any] = field(default_factory=dict)  # counts (b-values, directions, ...)


@dataclass
class Bypass:
    project: str
    checks: list[str]
    user: str
    at: float
    reason: str


@dataclass
class Evaluation:
    project: str  # "" for the site's defaults
    checks: list[CheckResult]
    gates: list[str] = field(default_factory=list)

    def failed(self) -> list[str]:
        return [c.name for c in self.checks if c.status == FAIL]

    def failed_gates(self) -> list[str]:
        return [c for c in self.failed() if c in self.gates]


@dataclass
class StudyQc:
    study_uid: str
    checked_at: float
    series_changed: float | None  # the newest series JSON change the facts saw (freshness)
    facts: StudyFacts
    evaluations: dict[str, Evaluation] = field(default_factory=dict)
    bypasses: list[Bypass] = field(default_factory=list)

    def bypassed(self, project: str) -> set[str]:
        return {c for b in self.bypasses if b.project == project for c in b.checks}

    def held_by(self, project: str) -> list[str]:
        """The gating checks of ``project`` that failed and nobody bypassed."""
        e = self.evaluations.get(project)
        if e is None:
            return []
        done = self.bypassed(project)
        return [c for c in e.failed_gates() if c not in done]

    def state(self, project: str | None = None) -> str:
        """ "passed", "failed" or "bypassed" (every failed check of the projects bypassed); a
        study with project evaluations is judged by those, else by the site's defaults."""
        names = [project] if project is not None else [p for p in self.evaluations if p]
        names = [n for n in names if n in self.evaluations] or [""]
        states = []
        for name in names:
            e = self.evaluations.get(name)
            if e is None:
                continue
            failed = set(e.failed())
            if not failed:
                states.append("passed")
            elif name and failed <= self.bypassed(name):
                states.append("bypassed")
            else:
                states.append("failed")
        for s in ("failed", "bypassed", "passed"):
            if s in states:
                return s
        return "not checked"

    def as_json(self) -> dict[str, Any]:
        return {
            "study_uid": self.study_uid,
            "checked_at": self.checked_at,
            "series_changed": self.series_changed,
            "facts": self.facts.as_json(),
            "evaluations": {k: asdict(v) for k, v in self.evaluations.items()},
            "bypasses": [asdict(b) for b in self.bypasses],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StudyQc:
        evaluations = {}
        for name, e in (data.get("evaluations") or {}).items():
            checks = [CheckResult(**c) for c in e.get("checks") or []]
            evaluations[name] = Evaluation(e.get("project", name), checks, e.get("gates") or [])
        return cls(
            study_uid=data["study_uid"],
            checked_at=float(data.get("checked_at") or 0),
            series_changed=data.get("series_changed"),
            facts=StudyFacts.from_json(data.get("facts") or {"study_uid": data["study_uid"]}),
            evaluations=evaluations,
            bypasses=[Bypass(**b) for b in data.get("bypasses") or []],
        )
