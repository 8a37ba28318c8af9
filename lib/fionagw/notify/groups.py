"""Groups (cohorts): studies of one project reported on together, as CSV.

``DATADIR/groups/groups.json`` holds every group (written atomically under a lock)::

    {"COHORT1": {"project": "ALPHA", "studies": ["<study key>", ...],
                 "auto": {"called": "^ALPHA_AE$", "calling": "", "project": false},
                 "schedule": "0 6 * * 1", "template": "{group_name}_{report_type}_{date}.csv",
                 "reported_complete": 3, "scheduled_at": 1733300000.0,
                 "reports": [{"file": "...", "reason": "complete", "at": ..., "studies": 3}]}}

Studies join a group by hand (``fiona group add``, the Groups page) or automatically: every
study that arrives on the called AE or from the calling AE (regular expressions searched in
the incoming list's AE titles), or (``"project": true``) every study with a transfer to the
group's project. A report is made when every study of the group is in a terminal state (sent,
failed, cancelled, held by QC), again when more studies join later, on the group's schedule
(a cron expression, evaluated with croniter) and on demand; each is one ``group-report`` event
(``group-completed`` first when it is the completion), delivered like any other. The CSV names
studies by pseudonym and de-identified UID only.
"""

from __future__ import annotations

import csv
import io
import re
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import filelock

from fionagw.config import SiteConfig
from fionagw.notify.events import emit
from fionagw.ops.atomic import write_bytes_atomic, write_json_atomic
from fionagw.ops.perms import make_dirs
from fionagw.tracking.base import Tracker, TrackerError

DEFAULT_TEMPLATE = "{group_name}_{report_type}_{date}.csv"
COLUMNS = (
    "pseudonym",
    "event",
    "study_uid",
    "study_date",
    "series",
    "qc",
    "transfer",
    "requested",
    "sent",
    "verification",
)
TERMINAL = ("sent", "failed", "cancelled", "held by QC")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class GroupError(Exception):
    """A bad group request; str() is one line for the user."""


def _dir(cfg: SiteConfig) -> Path:
    return cfg.datadir / "groups"


def _file(cfg: SiteConfig) -> Path:
    return _dir(cfg) / "groups.json"


def _lock(cfg: SiteConfig) -> filelock.FileLock:
    make_dirs(_dir(cfg))
    return filelock.FileLock(str(_dir(cfg) / ".groups.lock"))


def load_groups(cfg: SiteConfig) -> dict[str, dict[str, Any]]:
    import json

    try:
        data = json.loads(_file(cfg).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise GroupError(f"{_file(cfg)}: not valid JSON ({exc})") from None
    return data if isinstance(data, dict) else {}


def _save(cfg: SiteConfig, groups: dict[str, dict[str, Any]]) -> None:
    write_json_atomic(_file(cfg), groups, durable=True)


def report_name(template: str, group: str, report_type: str, now: float | None = None) -> str:
    """The file name from ``template`` ({group_name}, {report_type}, {date}), made safe."""
    stamp = datetime.fromtimestamp(time.time() if now is None else now)
    try:
        name = template.format(
            group_name=group, report_type=report_type, date=stamp.strftime("%Y%m%dT%H%M%S")
        )
    except (KeyError, IndexError, ValueError) as exc:
        raise GroupError(f"bad report name template {template!r}: {exc}") from None
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".")
    return name if name.endswith(".csv") else name + ".csv"


def check_group(
    name: str, project: str, called: str, calling: str, schedule: str, template: str
) -> dict[str, str]:
    """What is wrong with a new group's settings, by field ({} when nothing)."""
    from croniter import croniter

    problems = {}
    if not _NAME.match(name):
        problems["name"] = f"bad group name {name!r}: 1-64 letters, digits, '.', '_', '-'"
    if not project:
        problems["project"] = "a group needs its project (all its studies belong to it)"
    for key, what, rx in (("called", "called AE", called), ("calling", "calling AE", calling)):
        try:
            re.compile(rx)
        except re.error as exc:
            problems[key] = f"bad {what} expression {rx!r}: {exc}"
    if schedule and not croniter.is_valid(schedule):
        problems["schedule"] = f"bad schedule {schedule!r}: expected a cron expression (5 fields)"
    try:
        report_name(template, name if _NAME.match(name) else "G", "test")
    except GroupError as exc:
        problems["template"] = str(exc)
    return problems


def create_group(
    cfg: SiteConfig,
    name: str,
    project: str,
    *,
    called: str = "",
    calling: str = "",
    by_project: bool = False,
    schedule: str = "",
    template: str = DEFAULT_TEMPLATE,
) -> dict[str, Any]:
    problems = check_group(name, project, called, calling, schedule, template)
    if problems:
        raise GroupError(next(iter(problems.values())))
    with _lock(cfg):
        groups = load_groups(cfg)
        if name in groups:
            raise GroupError(f"group {name!r} exists already")
        groups[name] = {
            "project": project,
            "studies": [],
            "auto": {"called": called, "calling": calling, "project": by_project},
            "schedule": schedule,
            "template": template,
            "reported_complete": 0,
            "scheduled_at": time.time(),
            "reports": [],
        }
        _save(cfg, groups)
        return groups[name]


def add_studies(cfg: SiteConfig, name: str, studies: list[str]) -> int:
    """Add studies (their keys: StudyInstanceUIDs as filed); how many were new."""
    with _lock(cfg):
        groups = load_groups(cfg)
        if name not in groups:
            raise GroupError(f"no group {name!r}")
        have = groups[name]["studies"]
        new = [s for s in dict.fromkeys(studies) if s and s not in have]
        have.extend(new)
        if new:
            _save(cfg, groups)
        return len(new)


def auto_assign(cfg: SiteConfig, tracker: Tracker | None) -> int:
    """Put arrivals matching a group's automatic rules into it; how many joined."""
    from fionagw.arrival.incoming import read_entries

    groups = load_groups(cfg)
    wanted = {n: g for n, g in groups.items() if any((g.get("auto") or {}).values())}
    if not wanted:
        return 0
    entries = read_entries(cfg)
    joined = 0
    for name, g in wanted.items():
        auto = g["auto"]
        found = []
        for e in entries:
            called, calling = str(e.info.get("called", "")), str(e.info.get("calling", ""))
            if auto.get("called") and re.search(auto["called"], called):
                found.append(e.study_uid)
            elif auto.get("calling") and re.search(auto["calling"], calling):
                found.append(e.study_uid)
        if auto.get("project") and tracker is not None:
            try:
                found += [t.study_instance_uid for t in tracker.transfers(project=g["project"])]
            except TrackerError:
                pass
        if found:
            joined += add_studies(cfg, name, found)
    return joined


def rows(cfg: SiteConfig, tracker: Tracker, group: dict[str, Any]) -> list[dict[str, str]]:
    """One row per study of the group, from the tracker (its project's transfer), the QC
    result and the PACS checks."""
    from fionagw.qc import store
    from fionagw.transfers.actions import request_name
    from fionagw.transfers.failures import read_record

    project = group["project"]
    # three tracker calls per group, not three per study (REDCap is an HTTP API)
    try:
        by_study: dict[str, list[Any]] = {}
        for t in tracker.transfers(project=project):
            by_study.setdefault(t.study_instance_uid, []).append(t)
        checks = {(c.study_instance_uid, c.transfer_instance): c for c in tracker.pacs_checks()}
        dates = {i.img_study_instance_uid: i.img_study_date for i in tracker.imaging(project)}
    except TrackerError:
        by_study, checks, dates = {}, {}, {}
    out = []
    for study in group["studies"]:
        row = dict.fromkeys(COLUMNS, "")
        transfers = by_study.get(study, [])
        qc = store.load(cfg.paths, study)
        if qc is not None:
            row["qc"] = qc.state(project)
            row["series"] = str(len(qc.facts.series))
        row["transfer"] = "not requested"  # no transfer to the group's project yet
        if transfers:
            t = transfers[-1]
            record = read_record(cfg.paths, request_name(cfg, t))
            state = "sent" if t.transfer_date else "requested"
            if record is not None:
                state = (
                    "cancelled"
                    if record.cancelled
                    else ("held by QC" if record.reason == "qc" else "failed")
                )
            mapped = (t.transfer_mapped_uid or "").split(",")[0]
            row.update(
                pseudonym=t.transfer_name,
                event=t.transfer_event_name,
                study_uid=mapped,
                transfer=state,
                requested=t.transfer_requested_date,
                sent=t.transfer_date,
            )
            check = checks.get((study, t.instance))
            row["verification"] = check.summary() if check is not None else ""
            row["study_date"] = dates.get(mapped, "") if mapped else ""  # shifted, as sent
        out.append(row)
    return out


def complete(group_rows: list[dict[str, str]]) -> bool:
    return bool(group_rows) and all(r["transfer"] in TERMINAL for r in group_rows)


def to_csv(group_rows: list[dict[str, str]]) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(group_rows)
    return buf.getvalue().encode("utf-8")


def make_report(
    cfg: SiteConfig, tracker: Tracker, name: str, reason: str, now: float | None = None
) -> Path:
    """Write the group's CSV report, record it and emit its ``group-report`` event."""
    with _lock(cfg):
        groups = load_groups(cfg)
        if name not in groups:
            raise GroupError(f"no group {name!r}")
        g = groups[name]
        group_rows = rows(cfg, tracker, g)
        file = report_name(g.get("template") or DEFAULT_TEMPLATE, name, reason, now)
        folder = _dir(cfg) / "reports" / name
        make_dirs(folder)
        path = folder / file
        write_bytes_atomic(path, to_csv(group_rows))
        g["reports"].append(
            {"file": file, "reason": reason, "at": time.time(), "studies": len(group_rows)}
        )
        if reason == "complete":
            g["reported_complete"] = len(group_rows)
        _save(cfg, groups)
    if reason == "complete":
        emit(cfg, "group-completed", project=g["project"], group=name, studies=len(group_rows))
    emit(cfg, "report-generated", project=g["project"], kind="group", group=name, file=file)
    emit(
        cfg,
        "group-report",
        project=g["project"],
        group=name,
        file=file,
        reason=reason,
        studies=len(group_rows),
    )
    return path


@dataclass
class GroupsRun:
    joined: int = 0
    reports: int = 0

    def summary(self) -> str:
        return f"groups: {self.joined} studies joined, {self.reports} reports"


def run_groups(cfg: SiteConfig, tracker: Tracker, now: float | None = None) -> GroupsRun:
    """Automatic assignment, then the reports that are due (completion, schedule)."""
    from croniter import croniter

    clock = time.time() if now is None else now
    result = GroupsRun(joined=auto_assign(cfg, tracker))
    for name, g in load_groups(cfg).items():
        # reported complete with every study it has: nothing to look up until one joins
        grown = len(g["studies"]) > int(g.get("reported_complete") or 0)
        if grown and complete(rows(cfg, tracker, g)):
            make_report(cfg, tracker, name, "complete", clock)
            result.reports += 1
        schedule = g.get("schedule")
        if schedule:
            due = croniter(schedule, float(g.get("scheduled_at") or clock)).get_next(float)
            if due <= clock:
                make_report(cfg, tracker, name, "scheduled", clock)
                with _lock(cfg):
                    groups = load_groups(cfg)
                    groups[name]["scheduled_at"] = clock
                    _save(cfg, groups)
                result.reports += 1
    return result


def report_path(cfg: SiteConfig, name: str, file: str) -> Path | None:
    """A report file of the group, or None (no path outside its folder)."""
    folder = _dir(cfg) / "reports" / name
    if not _NAME.match(name) or "/" in file or file.startswith("."):
        return None
    path = folder / file
    return path if path.is_file() else None


# -- bulk upload ---------------------------------------------------------------------------

# what a study's JSON sidecar may say (upload/metadata.py: these keys or BIDS/dcm2niix names)
SIDECAR_TEMPLATE = {
    "StudyDescription": "MR brain (the study's name)",
    "AccessionNumber": "",
    "PatientAge": "034Y",
    "PatientSex": "F",
}


@dataclass
class _Zip:
    filename: str
    stream: Any


def upload_folder(cfg: SiteConfig, name: str, folder: Path, user: str) -> list[tuple[str, str]]:
    """Take every ``*.zip`` of ``folder`` as one upload (the Attach page's checks: DICOM with
    an optional JSON sidecar, or a NIfTI set with .bvec, .bval and sidecar) and put the
    studies it stored into the group; (zip name, outcome) for each, a refusal included."""
    from fionagw.upload.accept import accept_upload
    from fionagw.upload.errors import UploadError
    from fionagw.upload.limits import UploadLimits

    grp = load_groups(cfg).get(name)
    if grp is None:
        raise GroupError(f"no group {name!r}")
    if not folder.is_dir():
        raise GroupError(f"{folder}: not a folder")
    limits = UploadLimits.from_mb(cfg.web.max_upload_mb)
    out = []
    for path in sorted(folder.glob("*.zip")):
        with open(path, "rb") as f:
            try:
                record = accept_upload(
                    cfg,
                    limits,
                    archive=_Zip(path.name, f),
                    folder=[],
                    form={},
                    user=user,
                    project=grp["project"],
                )
            except UploadError as exc:
                out.append((path.name, f"refused: {exc}"))
                continue
        add_studies(cfg, name, record.studies)
        if record.kind == "nifti":
            out.append((path.name, f"NIfTI kept ({len(record.files)} files; no DICOM study)"))
        else:
            out.append((path.name, f"{record.stored} DICOM files, {len(record.studies)} study"))
    return out
