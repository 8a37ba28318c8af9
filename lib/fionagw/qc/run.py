"""Run QC on a study and keep the result fresh.

:func:`check_study` scans the study's headers once (scan.py) and evaluates the checks for the
site's defaults and for each project asked for; the result is stored with the bypasses it
had. :func:`current` is what a gate or a page uses: the stored result when no series changed
since it was made (and it has the project's evaluation), else a new one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from fionagw import notify
from fionagw.config import SiteConfig
from fionagw.config.projects import Project
from fionagw.config.qc import QcRules
from fionagw.organize.series_json import newest_change
from fionagw.qc import events, store
from fionagw.qc.checks import run_checks
from fionagw.qc.results import Evaluation, StudyQc
from fionagw.qc.scan import StudyFacts, scan_study

LOGGER = logging.getLogger(__name__)
DEFAULTS = QcRules()  # a study no project has yet: demographics, lossless, integrity


def rules_for(cfg: SiteConfig, project: Project | None) -> QcRules:
    """The project's rules: projects.yml's ``qc`` (local tracker), else config.json's
    ``qc.projects.<NAME>`` (REDCap), else none (nothing gates its transfers)."""
    if project is None:
        return DEFAULTS
    if project.qc is not None:
        return project.qc
    return cfg.qc.projects.get(project.name, DEFAULTS)


def evaluate(facts: StudyFacts, project: str, rules: QcRules) -> Evaluation:
    return Evaluation(project, run_checks(facts, rules), list(rules.gates))


def check_study(
    cfg: SiteConfig, study_uid: str, projects: Iterable[Project] = (), *, rescan: bool = True
) -> StudyQc:
    """Check the study now (for the defaults and each of ``projects``) and store the result
    with its bypasses; ``rescan=False`` reuses the stored facts when no series changed (and
    with them the other projects' evaluations; new facts drop those until asked again)."""
    changed = newest_change(cfg.paths.raw_study_dir(study_uid))
    old = store.load(cfg.paths, study_uid)
    result = StudyQc(study_uid, time.time(), changed, StudyFacts(study_uid))
    if not rescan and old is not None and old.series_changed == changed:
        result.facts = old.facts
        result.evaluations = dict(old.evaluations)
    else:
        result.facts = scan_study(cfg.paths, study_uid)
    if old is not None:
        result.bypasses = old.bypasses
    result.evaluations[""] = evaluate(result.facts, "", DEFAULTS)
    for project in projects:
        result.evaluations[project.name] = evaluate(
            result.facts, project.name, rules_for(cfg, project)
        )
    store.save(cfg.paths, result)
    failed = sorted({c for e in result.evaluations.values() for c in e.failed()})
    LOGGER.info(
        "study checked",
        extra={
            "study_uid": study_uid,
            "series": len(result.facts.series),
            "images": result.facts.images,
            "failed": ",".join(failed),
        },
    )
    events.emit("qc-checked", study_uid=study_uid, state=result.state(), failed=failed)
    if old is None or old.state() != result.state():  # news only: a re-check is no event
        notify.emit(cfg, f"qc-{result.state()}", ref=study_uid, failed=failed)
    return result


def current(cfg: SiteConfig, study_uid: str, project: Project | None = None) -> StudyQc:
    """The study's QC result: scanned again when a series changed since it was made, and
    evaluated again for ``project`` when that evaluation is missing or its rules changed."""
    result = store.load(cfg.paths, study_uid)
    changed = newest_change(cfg.paths.raw_study_dir(study_uid))
    if result is None or result.series_changed != changed:
        return check_study(cfg, study_uid, [project] if project else [])
    if project is not None:
        fresh = evaluate(result.facts, project.name, rules_for(cfg, project))
        if result.evaluations.get(project.name) != fresh:
            return check_study(cfg, study_uid, [project], rescan=False)
    return result
