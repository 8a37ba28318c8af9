"""The QC checks: study facts (scan.py) against a project's rules (config/qc.py).

Each check returns one CheckResult: pass, fail, or n/a when the project configures nothing
for it to compare with (or the study has nothing it applies to). Messages name series by
number and description, counts and tags; never a patient's value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

from fionagw.config.qc import QcRules, SeriesRule
from fionagw.qc.results import FAIL, NOT_APPLICABLE, PASS, CheckResult
from fionagw.qc.scan import SeriesFacts, StudyFacts

# PS3.5 / PS3.6: syntaxes that never lose information
LOSSLESS_SYNTAXES = {
    "1.2.840.10008.1.2": "Implicit VR Little Endian",
    "1.2.840.10008.1.2.1": "Explicit VR Little Endian",
    "1.2.840.10008.1.2.1.99": "Deflated Explicit VR Little Endian",
    "1.2.840.10008.1.2.2": "Explicit VR Big Endian",
    "1.2.840.10008.1.2.4.57": "JPEG Lossless",
    "1.2.840.10008.1.2.4.70": "JPEG Lossless SV1",
    "1.2.840.10008.1.2.4.80": "JPEG-LS Lossless",
    "1.2.840.10008.1.2.4.90": "JPEG 2000 Lossless Only",
    "1.2.840.10008.1.2.4.92": "JPEG 2000 Part 2 Lossless Only",
    "1.2.840.10008.1.2.4.201": "HTJ2K Lossless",
    "1.2.840.10008.1.2.4.202": "HTJ2K Lossless RPCL",
    "1.2.840.10008.1.2.5": "RLE Lossless",
}
# lossy, or possibly lossy (.91 and .203 allow irreversible coding): named for the messages
LOSSY_SYNTAXES = {
    "1.2.840.10008.1.2.4.50": "JPEG Baseline",
    "1.2.840.10008.1.2.4.51": "JPEG Extended",
    "1.2.840.10008.1.2.4.81": "JPEG-LS Near-Lossless",
    "1.2.840.10008.1.2.4.91": "JPEG 2000 (possibly lossy)",
    "1.2.840.10008.1.2.4.93": "JPEG 2000 Part 2 (possibly lossy)",
    "1.2.840.10008.1.2.4.203": "HTJ2K (possibly lossy)",
}
B0_LIMIT = 50.0  # s/mm2: at or below it an image counts as b0 (dcm2niix's threshold too)
B_TOLERANCE = 5.0  # a configured b-value is present when an image is this close
COLLINEAR = 0.9999  # |cos| above it: the same direction (or its opposite)


def _label(s: SeriesFacts) -> str:
    return f"series {s.number or '?'} ({s.description or 'no description'})"


def _matches(pattern: str, text: str) -> bool:
    return re.search(pattern, text) is not None


def _series_matches(rule: SeriesRule, s: SeriesFacts) -> bool:
    if rule.modality and s.modality != rule.modality:
        return False
    if rule.classify_type and rule.classify_type not in s.classify_type:
        return False
    return not rule.description or _matches(rule.description, s.description)


# --- required series ---------------------------------------------------------------------------


def check_series(facts: StudyFacts, rules: QcRules) -> CheckResult:
    if not rules.series:
        return CheckResult("series", NOT_APPLICABLE, "the project requires no particular series")
    details, missing = [], 0
    for rule in rules.series:
        found = [s for s in facts.series if _series_matches(rule, s)]
        enough = [s for s in found if s.images >= rule.min_images]
        if enough:
            details.append(f"{rule.name}: {_label(enough[0])}, {enough[0].images} images")
        elif found:
            missing += 1
            details.append(
                f"{rule.name}: {_label(found[0])} has {found[0].images} images, "
                f"at least {rule.min_images} required"
            )
        else:
            missing += 1
            what = ", ".join(
                x
                for x in (
                    rule.modality and f"modality {rule.modality}",
                    rule.classify_type and f"ClassifyType {rule.classify_type}",
                    rule.description and f"description matching {rule.description!r}",
                )
                if x
            )
            details.append(f"{rule.name}: no series with {what or 'any content'}")
    if missing:
        return CheckResult(
            "series", FAIL, f"{missing} of {len(rules.series)} required series missing", details
        )
    return CheckResult("series", PASS, f"all {len(rules.series)} required series present", details)


# --- diffusion ----------------------------------------------------------------------------------


def _directions(vectors: list[list[float]]) -> int:
    """Distinct non-collinear unit directions (a direction and its opposite are one)."""
    kept: list[tuple[float, float, float]] = []
    for v in vectors:
        norm = math.sqrt(sum(x * x for x in v[:3]))
        if norm < 1e-6:
            continue
        u = (v[0] / norm, v[1] / norm, v[2] / norm)
        if all(abs(u[0] * k[0] + u[1] * k[1] + u[2] * k[2]) < COLLINEAR for k in kept):
            kept.append(u)
    return len(kept)


def _volumes(s: SeriesFacts, weighted: bool) -> int:
    """Volumes among the b0 (or weighted) entries: a mosaic image or an enhanced frame group
    is one; classic images are slices, so each (b-value, direction) counts its images over
    its distinct slice positions."""
    groups: dict[tuple[object, ...], list[object]] = {}
    for b, d, pos in s.diffusion:
        if (b > B0_LIMIT) == weighted:
            key = (round(b / B_TOLERANCE), tuple(round(x, 3) for x in d) if d else None)
            groups.setdefault(key, []).append(tuple(pos) if pos else None)
    total = 0
    for positions in groups.values():
        slices = 1 if s.mosaic else max(1, len({p for p in positions if p is not None}))
        total += -(-len(positions) // slices)
    return total


def diffusion_figures(s: SeriesFacts) -> dict[str, object]:
    """b-values (rounded to 5 s/mm2), b0 volumes and distinct directions of one series."""
    b_values = sorted({round(b / B_TOLERANCE) * B_TOLERANCE for b, _, _ in s.diffusion})
    directions = _directions([d for b, d, _ in s.diffusion if b > B0_LIMIT and d])
    return {
        "encoding": s.diffusion_encoding,
        "b_values": [int(b) if float(b).is_integer() else b for b in b_values],
        "b0_volumes": _volumes(s, False),
        "weighted_volumes": _volumes(s, True),
        "directions": directions,
        "kind": "DTI" if directions >= 6 else "DWI",
    }


def check_diffusion(facts: StudyFacts, rules: QcRules) -> CheckResult:
    found = [s for s in facts.series if s.diffusion]
    figures = {s.series_uid: diffusion_figures(s) for s in found}
    details = [
        f"{_label(s)}: {f['kind']} ({f['encoding']}), b-values {f['b_values']}, "
        f"{f['b0_volumes']} b0 volumes, {f['directions']} directions"
        for s in found
        for f in [figures[s.series_uid]]
    ]
    d = rules.diffusion
    if not d.configured:
        summary = f"{len(found)} diffusion series" if found else "no diffusion series"
        return CheckResult("diffusion", NOT_APPLICABLE, summary, details, figures)
    if not found:
        return CheckResult("diffusion", FAIL, "no diffusion series in the study", details)
    problems_of: dict[str, list[str]] = {}
    for s in found:
        f = figures[s.series_uid]
        problems = []
        if len(f["b_values"]) < d.min_b_values:  # type: ignore[arg-type]
            problems.append(f"{len(f['b_values'])} b-values, at least {d.min_b_values} required")  # type: ignore[arg-type]
        if f["b0_volumes"] < d.min_b0:  # type: ignore[operator]
            problems.append(f"{f['b0_volumes']} b0 volumes, at least {d.min_b0} required")
        if f["directions"] < d.min_directions:  # type: ignore[operator]
            problems.append(f"{f['directions']} directions, at least {d.min_directions} required")
        for b in d.b_values:
            if not any(abs(b - x) <= B_TOLERANCE for x, _, _ in s.diffusion):
                problems.append(f"no b={b:g} volume")
        problems_of[s.series_uid] = problems
    good = [s for s in found if not problems_of[s.series_uid]]
    if good:
        return CheckResult(
            "diffusion", PASS, f"{_label(good[0])} meets the diffusion rules", details, figures
        )
    details += [f"{_label(s)}: {'; '.join(problems_of[s.series_uid])}" for s in found]
    return CheckResult("diffusion", FAIL, "no diffusion series meets the rules", details, figures)


# --- demographics ------------------------------------------------------------------------------


def check_demographics(facts: StudyFacts, rules: QcRules) -> CheckResult:
    if not rules.demographics:
        return CheckResult("demographics", NOT_APPLICABLE, "the project requires no demographics")
    states = {"age": facts.age, "sex": facts.sex}
    details = [f"{k}: {states[k]}" for k in rules.demographics]
    bad = [k for k in rules.demographics if states[k] not in ("present", "derived")]
    if bad:
        return CheckResult(
            "demographics",
            FAIL,
            " and ".join(f"{k} {states[k]}" for k in bad)
            + " (PatientAge (0010,1010), PatientSex (0010,0040))",
            details,
        )
    return CheckResult("demographics", PASS, " and ".join(rules.demographics) + " present", details)


# --- instructions for use ----------------------------------------------------------------------


def check_ifu(facts: StudyFacts, rules: QcRules) -> CheckResult:
    if not rules.study_description and not rules.series_description:
        return CheckResult("ifu", NOT_APPLICABLE, "the project configures no descriptions")
    details, bad = [], 0
    if rules.study_description:
        ok = _matches(rules.study_description, facts.study_description)
        bad += not ok
        details.append(
            f"StudyDescription {'matches' if ok else 'does not match'} {rules.study_description!r}"
        )
    if rules.series_description:
        # the required series when the project names them, else every non-localizer MR series
        targets = [s for s in facts.series if any(_series_matches(r, s) for r in rules.series)] or [
            s for s in facts.series if not s.localizer and s.modality in ("MR", "")
        ]
        if not any(_matches(rules.series_description, s.description) for s in targets):
            bad += 1
            details.append(f"no SeriesDescription matches {rules.series_description!r}")
        else:
            details.append(f"a SeriesDescription matches {rules.series_description!r}")
    if bad:
        return CheckResult("ifu", FAIL, "descriptions do not follow the instructions", details)
    return CheckResult("ifu", PASS, "descriptions follow the instructions", details)


# --- lossless ----------------------------------------------------------------------------------


def check_lossless(facts: StudyFacts, rules: QcRules) -> CheckResult:
    details = []
    for s in facts.series:
        for uid in s.syntaxes:
            if uid not in LOSSLESS_SYNTAXES:
                name = LOSSY_SYNTAXES.get(uid, "an unknown transfer syntax")
                details.append(f"{_label(s)}: {name} ({uid or 'none'})")
        if s.lossy_flagged:
            details.append(
                f"{_label(s)}: {s.lossy_flagged} image(s) with LossyImageCompression "
                f"(0028,2110) = 01"
            )
    if details:
        return CheckResult("lossless", FAIL, "lossy or possibly lossy images", details)
    return CheckResult("lossless", PASS, "every image is stored losslessly")


# --- integrity ---------------------------------------------------------------------------------


def _gaps(numbers: list[int]) -> list[int]:
    if len(numbers) < 2:
        return []
    present = set(numbers)
    return [n for n in range(numbers[0], numbers[-1] + 1) if n not in present][:20]


def check_integrity(facts: StudyFacts, rules: QcRules) -> CheckResult:
    details = []
    for s in facts.series:
        label = _label(s)
        if s.unreadable:
            details.append(f"{label}: {s.unreadable} file(s) unreadable")
        gaps = _gaps(s.instance_numbers)
        if gaps:
            details.append(
                f"{label}: InstanceNumber {', '.join(map(str, gaps))} missing "
                f"({s.images} of {s.instance_numbers[-1] - s.instance_numbers[0] + 1})"
            )
        if s.duplicates:
            details.append(
                f"{label}: {s.duplicates} InstanceNumber(s) shared by different SOP Instance UIDs"
            )
        if s.expected and s.frames < s.expected:
            details.append(f"{label}: {s.frames} images, {s.expected} expected ({s.expected_from})")
        if s.geometries > 1 and not s.localizer:
            details.append(
                f"{label}: {s.geometries} different geometries (rows, columns, pixel spacing, "
                f"orientation)"
            )
    if details:
        return CheckResult("integrity", FAIL, f"{len(details)} problem(s)", details)
    return CheckResult(
        "integrity", PASS, f"{len(facts.series)} series, {facts.images} images, complete"
    )


STUDY_CHECKS: dict[str, Callable[[StudyFacts, QcRules], CheckResult]] = {
    "series": check_series,
    "diffusion": check_diffusion,
    "demographics": check_demographics,
    "ifu": check_ifu,
    "lossless": check_lossless,
    "integrity": check_integrity,
}


def run_checks(facts: StudyFacts, rules: QcRules) -> list[CheckResult]:
    """Every check of a DICOM study, in the order of a report."""
    return [check(facts, rules) for check in STUDY_CHECKS.values()]
