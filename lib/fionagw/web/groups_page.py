"""What the Groups page shows and does: the groups a user may see (those of projects with the
assign role), a group's studies as its report's rows, "send report" (a report made now, whose
event sendNotifications delivers), the report files to download, a study added by hand."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fionagw.config import SiteConfig
from fionagw.notify import groups as g
from fionagw.tracking.base import Tracker

ROLE = "assign"


def _stamp(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(epoch))


def groups_list(cfg: SiteConfig, may_see: Callable[[str], bool]) -> list[dict[str, Any]]:
    out = []
    for name, grp in sorted(g.load_groups(cfg).items()):
        if not may_see(grp["project"]):
            continue
        last = grp["reports"][-1] if grp.get("reports") else None
        out.append(
            {
                "name": name,
                "project": grp["project"],
                "studies": len(grp["studies"]),
                "schedule": grp.get("schedule", ""),
                "last": f"{last['reason']} {_stamp(last['at'])}" if last else "",
            }
        )
    return out


def group_view(cfg: SiteConfig, tracker: Tracker, name: str) -> dict[str, Any] | None:
    grp = g.load_groups(cfg).get(name)
    if grp is None:
        return None
    rows = g.rows(cfg, tracker, grp)
    auto = grp.get("auto") or {}
    return {
        "name": name,
        "project": grp["project"],
        "columns": g.COLUMNS,
        "rows": rows,
        "complete": g.complete(rows),
        "auto": ", ".join(
            text
            for key, text in (
                ("called", f"called AE {auto.get('called')}"),
                ("calling", f"calling AE {auto.get('calling')}"),
                ("project", "every study sent to the project"),
            )
            if auto.get(key)
        ),
        "schedule": grp.get("schedule", ""),
        "reports": [{**r, "when": _stamp(r["at"])} for r in reversed(grp.get("reports", []))],
    }


def project_of(cfg: SiteConfig, name: str) -> str | None:
    grp = g.load_groups(cfg).get(name)
    return grp["project"] if grp else None


def send_report(cfg: SiteConfig, tracker: Tracker, name: str) -> str:
    path = g.make_report(cfg, tracker, name, "manual")
    return f"Report {path.name} made; sendNotifications delivers it to the group's subscribers."


def add_study(cfg: SiteConfig, name: str, study: str) -> str:
    study = study.strip()
    if not study or not cfg.paths.raw_study_dir(study).is_dir():
        raise g.GroupError("no such study in the gateway (give its StudyInstanceUID)")
    n = g.add_studies(cfg, name, [study])
    return "Study added." if n else "The study is in the group already."


def report_file(cfg: SiteConfig, name: str, file: str) -> Path | None:
    return g.report_path(cfg, name, file)
