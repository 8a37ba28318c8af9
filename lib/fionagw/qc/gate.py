"""Does QC hold a transfer request? The project's gating checks that failed and nobody bypassed.

anonymizeAndSend asks before it de-identifies anything; a held request fails with reason
``qc`` (transfers/failures.py: "held by QC") and is held there like every permanent failure
until the study or the project's settings change, or an admin's bypass (bypass.py) queues
it again.
"""

from __future__ import annotations

from fionagw import notify
from fionagw.config import SiteConfig
from fionagw.config.projects import Project
from fionagw.qc import events
from fionagw.qc.run import current, rules_for

REASON = "qc"  # the failure reason of a held request


def held_checks(cfg: SiteConfig, study_uid: str, project: Project) -> tuple[list[str], str]:
    """(the failing gating checks, a one-line message naming them and their first finding);
    ([], "") when the project gates nothing or every gate passed or was bypassed."""
    if not rules_for(cfg, project).gates:
        return [], ""
    result = current(cfg, study_uid, project)
    held = result.held_by(project.name)
    if not held:
        return [], ""
    checks = {c.name: c for c in result.evaluations[project.name].checks}
    parts = []
    for name in held:
        c = checks[name]
        parts.append(f"{name} ({c.summary}" + (f": {c.details[0]})" if c.details else ")"))
    events.emit("qc-held", study_uid=study_uid, project=project.name, checks=held)
    notify.emit(cfg, "qc-failed", ref=study_uid, project=project.name, checks=held, held=True)
    return held, "held by QC: " + "; ".join(parts)
