"""Quality-control rules and gates per project (read by lib/fionagw/qc/).

With the local tracker they are a project's ``qc`` key in projects.yml; with REDCap (whose
DataTransferProjects has no place for them) they are config.json's ``qc.projects.<NAME>``.
Both have the same shape::

    qc:
      gates: [lossless, demographics]     # checks whose failure holds the transfer request
      series:                             # series the study must contain
        - {name: dti, modality: MR, classify_type: DTI, description: '^neuropacs DTI$',
           min_images: 60}
      diffusion: {min_b_values: 2, min_b0: 2, min_directions: 30, b_values: [0, 1000]}
      study_description: '^MRI Brain with DTI Non-Contrast$'   # instructions for use
      series_description: '^neuropacs DTI$'                    # for every required series
      demographics: [age, sex]

A check that has nothing configured to compare with is reported as not applicable; only the
checks named in ``gates`` hold a transfer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fionagw.config.errors import ConfigError
from fionagw.config.reader import SectionReader

# every check of qc/checks.py, in the order of a report
CHECKS = ("series", "diffusion", "demographics", "ifu", "lossless", "integrity", "nifti")
RULE_KEYS = (
    "gates",
    "series",
    "diffusion",
    "study_description",
    "series_description",
    "demographics",
)
SERIES_KEYS = ("name", "modality", "classify_type", "description", "min_images")
DIFFUSION_KEYS = ("min_b_values", "min_b0", "min_directions", "b_values")
DEMOGRAPHICS = ("age", "sex")


@dataclass(frozen=True)
class SeriesRule:
    name: str
    modality: str = ""
    classify_type: str = ""
    description: str = ""  # a regular expression (re.search)
    min_images: int = 0


@dataclass(frozen=True)
class DiffusionRule:
    min_b_values: int = 0
    min_b0: int = 0
    min_directions: int = 0
    b_values: tuple[float, ...] = ()  # each must be present (within 5 s/mm2)

    @property
    def configured(self) -> bool:
        return bool(self.min_b_values or self.min_b0 or self.min_directions or self.b_values)


@dataclass(frozen=True)
class QcRules:
    gates: tuple[str, ...] = ()
    series: tuple[SeriesRule, ...] = ()
    diffusion: DiffusionRule = field(default_factory=DiffusionRule)
    study_description: str = ""
    series_description: str = ""
    demographics: tuple[str, ...] = DEMOGRAPHICS


@dataclass(frozen=True)
class QcSettings:
    """config.json's ``qc`` section: the rules of REDCap projects by name."""

    projects: dict[str, QcRules] = field(default_factory=dict)


def _pattern(r: SectionReader, key: str) -> str:
    value = r.get(key, str, "")
    try:
        re.compile(value)
    except re.error as exc:
        raise r.error(key, f"not a valid regular expression: {exc}") from None
    return value


def _count(r: SectionReader, key: str) -> int:
    value = r.get(key, int, 0)
    if value < 0:
        raise r.error(key, f"must be 0 or more, got {value}")
    return value


def parse_rules(r: SectionReader) -> QcRules:
    """One project's rules; a bad key or value raises the reader's ConfigError."""
    r.reject_unknown(RULE_KEYS, what="qc rules")
    gates = r.str_list("gates")
    for i, gate in enumerate(gates):
        if gate not in CHECKS:
            raise r.error(f"gates[{i}]", f"unknown check {gate!r} (checks: {', '.join(CHECKS)})")
    series = []
    for i, item in enumerate(r.get("series", list, [])):
        where = f"series[{i}]"
        if not isinstance(item, dict):
            raise r.error(where, "expected a mapping")
        s = SectionReader(r.file, item, f"{r.prefix}{where}.", r._error, r.warnings)
        s.reject_unknown(SERIES_KEYS, what="a required series")
        series.append(
            SeriesRule(
                name=s.get("name", str, f"series {i + 1}"),
                modality=s.get("modality", str, ""),
                classify_type=s.get("classify_type", str, ""),
                description=_pattern(s, "description"),
                min_images=_count(s, "min_images"),
            )
        )
    d = r.section("diffusion")
    d.reject_unknown(DIFFUSION_KEYS, what="diffusion rules")
    b_values = d.get("b_values", list, [])
    if not all(isinstance(b, int | float) and not isinstance(b, bool) for b in b_values):
        raise d.error("b_values", "expected a list of numbers (s/mm2)")
    demographics = r.str_list("demographics") if "demographics" in r.data else DEMOGRAPHICS
    for i, item in enumerate(demographics):
        if item not in DEMOGRAPHICS:
            raise r.error(f"demographics[{i}]", f"expected one of {', '.join(DEMOGRAPHICS)}")
    return QcRules(
        gates=gates,
        series=tuple(series),
        diffusion=DiffusionRule(
            _count(d, "min_b_values"),
            _count(d, "min_b0"),
            _count(d, "min_directions"),
            tuple(float(b) for b in b_values),
        ),
        study_description=_pattern(r, "study_description"),
        series_description=_pattern(r, "series_description"),
        demographics=tuple(demographics),
    )


def rules_from(
    data: dict[str, Any], file: Path, prefix: str, error: type[ConfigError] = ConfigError
) -> QcRules:
    """Rules from a parsed mapping (a projects.yml ``qc`` value) named ``prefix`` in errors."""
    return parse_rules(SectionReader(file, data, prefix, error))


def parse_qc(r: SectionReader) -> QcSettings:
    """config.json's ``qc`` section."""
    r.reject_unknown(("projects",), what="qc")
    projects = {}
    p = r.section("projects")
    for name in p.data:
        projects[name] = parse_rules(p.section(name))
    return QcSettings(projects)
