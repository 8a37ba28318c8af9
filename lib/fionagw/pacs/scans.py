"""moveFromScanner: complete the studies listed in DATADIR/active-scans/ from the PACS.

An active scan is a file named by its StudyInstanceUID (``touch active-scans/<UID>`` by hand,
or written by MPPS and the resend); its optional JSON says the source, the attempts so far
and the last reason. Each run compares the PACS's instance count of every series with what
raw/ holds and C-MOVEs (or C-GETs) only the series that are short, then waits for the
receiver to file them. A complete study moves to finished-scans/; one that keeps failing
(``max_attempts`` runs, or the PACS does not know it) to failed-scans/ with the reason. A
PACS that cannot be reached fails the run and leaves every file where it is, so the next
run tries again.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fionagw.config.pacs import PacsSettings, load_pacs
from fionagw.config.site import SiteConfig
from fionagw.ops.atomic import write_json_atomic
from fionagw.ops.perms import FILE_MODE, make_dirs
from fionagw.pacs.client import PacsClient, PacsError, Retrieved, opaque
from fionagw.pacs.local import local_counts, local_sops
from fionagw.paths import safe_uid

log = logging.getLogger("fionagw.pacs.scans")

FINISHED, FAILED, WAITING = "finished", "failed", "waiting"
# the PACS's answers that another run will not change
PERMANENT = (0xA801, 0xA900)


@dataclass
class ScanRun:
    finished: int = 0
    failed: int = 0
    waiting: int = 0
    moved: int = 0  # sub-operations completed
    outcomes: dict[str, str] = field(default_factory=dict)  # opaque key -> outcome

    def summary(self) -> str:
        if not (self.finished or self.failed or self.waiting):
            return ""
        return (
            f"{self.finished} finished, {self.failed} failed, {self.waiting} waiting; "
            f"{self.moved} instances retrieved"
        )


def scan_file(folder: Path, study_uid: str) -> Path:
    return folder / safe_uid(study_uid)


def add_active_scan(cfg: SiteConfig, study_uid: str, **info: Any) -> Path:
    """List a study for moveFromScanner (no-op when it is already listed)."""
    make_dirs(cfg.paths.active_scans)
    path = scan_file(cfg.paths.active_scans, study_uid)
    if not path.exists():
        write_json_atomic(path, {"created": time.time(), "attempts": 0, **info}, mode=FILE_MODE)
    return path


def active_scans(cfg: SiteConfig) -> list[tuple[str, Path]]:
    """(StudyUID, file) of every active scan, oldest first."""
    try:
        entries = [p for p in cfg.paths.active_scans.iterdir() if p.is_file()]
    except FileNotFoundError:
        return []
    out = []
    for p in sorted(entries, key=lambda p: p.stat().st_mtime):
        uid = p.name[:-5] if p.name.endswith(".json") else p.name
        if uid and not uid.startswith("."):
            out.append((uid, p))
    return out


def _info(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text() or "{}")
    except (ValueError, OSError):
        return {}
    return data if isinstance(data, dict) else {}


def missing_series(remote: dict[str, int], here: dict[str, int]) -> list[str]:
    """The series of which the gateway holds fewer instances than the PACS."""
    return [s for s, n in remote.items() if here.get(safe_uid(s), here.get(s, 0)) < n]


def wait_until_filed(
    cfg: SiteConfig, study_uid: str, remote: dict[str, int], seconds: float
) -> list[str]:
    """Wait for the receiver and processSingleFile to file the retrieved images; the series
    still short when the time is up."""
    deadline = time.monotonic() + seconds
    while True:
        short = missing_series(remote, local_counts(cfg, study_uid))
        if not short or time.monotonic() >= deadline:
            return short
        time.sleep(0.5)


def _settle(cfg: SiteConfig, path: Path, outcome: str, info: dict[str, Any]) -> None:
    folder = cfg.paths.finished_scans if outcome == FINISHED else cfg.paths.failed_scans
    make_dirs(folder)
    info["ended"] = time.time()
    target = folder / path.name
    write_json_atomic(target, info, mode=FILE_MODE, tmpdir=cfg.paths.temp)
    path.unlink(missing_ok=True)


def complete_study(
    cfg: SiteConfig, client: PacsClient, study_uid: str, wait_seconds: float
) -> tuple[list[str], Retrieved | None, dict[str, int]]:
    """Retrieve what the gateway lacks of one study; (series still short, the retrieve or
    None when nothing was missing, the PACS's counts). PacsError when the PACS fails."""
    remote = client.series(study_uid)
    if not remote:
        return [], None, remote
    here = local_counts(cfg, study_uid)
    short = missing_series(remote, here)
    if not short:
        return [], None, remote
    # a series partly here: ask which instances the PACS has and retrieve only the others
    partial = {}
    for series in short:
        if here.get(safe_uid(series), here.get(series, 0)) > 0:
            filed = local_sops(cfg, study_uid, series)
            partial[series] = sorted(client.sop_uids(study_uid, series) - filed)
    got = client.retrieve(study_uid, short, partial)
    if got.error:
        return short, got, remote
    return wait_until_filed(cfg, study_uid, remote, wait_seconds), got, remote


def move_from_scanner(cfg: SiteConfig, settings: PacsSettings | None = None) -> ScanRun:
    """One run over active-scans/. PacsError (nothing moved to failed-scans/) when the
    source cannot be reached: the next run retries."""
    settings = settings or load_pacs(cfg)
    run = ScanRun()
    scans = active_scans(cfg)
    if not scans:
        return run
    if not settings.sources:  # keep them: a source may be configured later
        log.warning("active scans but no PACS source configured", extra={"scans": len(scans)})
        return run
    errors: list[str] = []
    by_source: dict[str, list[tuple[str, Path]]] = {}
    for uid, path in scans:
        by_source.setdefault(str(_info(path).get("source") or settings.default), []).append(
            (uid, path)
        )
    for source_name, studies in by_source.items():
        try:
            source = settings.source(source_name)
        except KeyError as exc:
            for uid, path in studies:
                _fail(cfg, run, uid, path, _info(path), str(exc.args[0]))
            continue
        try:
            with PacsClient(source, settings.move_destination, cfg) as client:
                for uid, path in studies:
                    _one(cfg, settings, client, run, uid, path)
        except PacsError as exc:  # this source is down: the others are still tried
            errors.append(str(exc))
    if errors:
        raise PacsError("; ".join(errors))
    return run


def _requeue(cfg: SiteConfig, uid: str) -> int:
    from fionagw.pacs.requeue import requeue_assignments
    from fionagw.tracking.factory import open_tracker

    tracker = open_tracker(cfg)
    try:
        return requeue_assignments(cfg, tracker, uid)
    finally:
        tracker.close()


def _fail(
    cfg: SiteConfig, run: ScanRun, uid: str, path: Path, info: dict[str, Any], reason: str
) -> None:
    info["reason"] = reason
    _settle(cfg, path, FAILED, info)
    run.failed += 1
    run.outcomes[opaque(uid)] = FAILED
    log.warning("scan failed", extra={"study_key": opaque(uid), "reason": reason})


def _one(
    cfg: SiteConfig,
    settings: PacsSettings,
    client: PacsClient,
    run: ScanRun,
    uid: str,
    path: Path,
) -> None:
    info = _info(path)
    attempts = int(info.get("attempts", 0)) + 1
    info["attempts"] = attempts
    try:
        short, got, remote = complete_study(cfg, client, uid, settings.wait_seconds)
    except PacsError:
        raise  # the source is down: leave the file, fail the run
    if got is not None:
        run.moved += got.completed
    if not remote:
        reason = f"the PACS ({client.source.name}) does not know the study"
    elif got is not None and got.error:
        reason = got.error
    elif short:
        reason = f"{len(short)} series still short after the retrieve"
    else:
        info["series"] = len(remote)
        info["instances"] = sum(remote.values())
        info.pop("reason", None)
        if info.get("resend"):  # the Assign page's Resend: send it again as assigned
            info["requeued"] = _requeue(cfg, uid)
        _settle(cfg, path, FINISHED, info)
        run.finished += 1
        run.outcomes[opaque(uid)] = FINISHED
        log.info(
            "scan complete",
            extra={
                "study_key": opaque(uid),
                "series": len(remote),
                "instances": sum(remote.values()),
            },
        )
        return
    permanent = got is not None and got.status in PERMANENT
    if permanent or attempts >= settings.max_attempts:
        _fail(cfg, run, uid, path, info, reason)
        return
    info["reason"] = reason
    write_json_atomic(path, info, mode=FILE_MODE, tmpdir=cfg.paths.temp)
    run.waiting += 1
    run.outcomes[opaque(uid)] = WAITING
    log.info("scan not complete yet", extra={"study_key": opaque(uid), "attempts": attempts})
