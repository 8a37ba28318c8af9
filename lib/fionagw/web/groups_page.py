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


FIELDS = ("name", "project", "called", "calling", "schedule", "template")


class FormErrors(Exception):
    """The create form's problems by field (shown at each field)."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


def create_group(cfg: SiteConfig, form: Any, allowed: list[str]) -> str:
    """A group from the Create form; ``allowed``: the projects the user has the role on."""
    v = {k: str(form.get(k, "") or "").strip() for k in FIELDS}
    v["template"] = v["template"] or g.DEFAULT_TEMPLATE
    errors = g.check_group(
        v["name"], v["project"], v["called"], v["calling"], v["schedule"], v["template"]
    )
    if v["project"] and v["project"] not in allowed:
        errors["project"] = f"not a project of yours with the {ROLE} role"
    if errors:
        raise FormErrors(errors)
    try:
        g.create_group(
            cfg,
            v["name"],
            v["project"],
            called=v["called"],
            calling=v["calling"],
            by_project=bool(form.get("by_project")),
            schedule=v["schedule"],
            template=v["template"],
        )
    except g.GroupError as exc:
        raise FormErrors({"name": str(exc)}) from None
    return f"Group {v['name']} created."


def drop_folder(cfg: SiteConfig, given: str) -> Path:
    """The folder to upload from: only one under web.group_drop_folder (resolved, links
    followed, so neither ``..`` nor a link can leave it)."""
    root = cfg.web.group_drop_folder
    if root is None:
        raise g.GroupError("bulk upload is off: no web.group_drop_folder in the configuration")
    given = given.strip()
    if not given:
        raise g.GroupError(f"give a folder under {root}")
    base = root.resolve()
    path = Path(given)
    path = (path if path.is_absolute() else base / path).resolve()
    if path != base and base not in path.parents:
        raise g.GroupError(f"{given}: not under the drop folder {root}")
    if not path.is_dir():
        raise g.GroupError(f"{given}: not a folder under {root}")
    return path


def bulk_upload(cfg: SiteConfig, name: str, given: str, user: str) -> list[tuple[str, str]]:
    """Every ZIP of a folder under the drop folder into the group (groups.upload_folder)."""
    return g.upload_folder(cfg, name, drop_folder(cfg, given), user)


def report_file(cfg: SiteConfig, name: str, file: str) -> Path | None:
    return g.report_path(cfg, name, file)
