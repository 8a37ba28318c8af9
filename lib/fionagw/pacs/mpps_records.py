"""The MPPS receiver's records and what detectStudyArrival asks of them (no pynetdicom here:
detectStudyArrival runs 4 times a minute and must stay cheap).

    DATADIR/scanner/<PPS SOP Instance UID>.json   one record per performed procedure step:
        status (IN PROGRESS, COMPLETED, DISCONTINUED), study_uids, modality, station (the
        calling AE), started/ended (DICOM date time), series [{series_uid, images, sop_uids}],
        images (the total), created/updated (epoch)
    DATADIR/scanner/completed/<StudyUID>          the PPS UIDs that COMPLETED for the study
                                                   (one per line): the arrival's index

Records hold UIDs, no names or IDs; they are written atomically with mode 0640.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from fionagw.config.site import SiteConfig
from fionagw.ops.atomic import write_bytes_atomic, write_json_atomic
from fionagw.ops.perms import FILE_MODE, make_dirs
from fionagw.paths import SitePaths, safe_uid

log = logging.getLogger("fionagw.pacs.mpps")

IN_PROGRESS, COMPLETED, DISCONTINUED = "IN PROGRESS", "COMPLETED", "DISCONTINUED"
STATUSES = (IN_PROGRESS, COMPLETED, DISCONTINUED)


def record_path(cfg: SiteConfig | SitePaths, pps_uid: str) -> Path:
    return _paths(cfg).scanner / f"{safe_uid(pps_uid)}.json"


def completed_index(cfg: SiteConfig | SitePaths, study_uid: str) -> Path:
    return _paths(cfg).scanner / "completed" / safe_uid(study_uid)


def _paths(where: SiteConfig | SitePaths) -> SitePaths:
    return where if isinstance(where, SitePaths) else where.paths


def read_record(cfg: SiteConfig | SitePaths, pps_uid: str) -> dict[str, Any] | None:
    try:
        data = json.loads(record_path(cfg, pps_uid).read_text())
    except (FileNotFoundError, NotADirectoryError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_record(cfg: SiteConfig, record: dict[str, Any]) -> None:
    """Write the record; a COMPLETED one is indexed by each of its studies."""
    make_dirs(cfg.paths.scanner)
    write_json_atomic(
        record_path(cfg, record["sop_instance_uid"]), record, mode=FILE_MODE, tmpdir=cfg.paths.temp
    )
    if record.get("status") != COMPLETED:
        return
    make_dirs(cfg.paths.scanner / "completed")
    for study in record.get("study_uids", []):
        index = completed_index(cfg, study)
        try:
            known = index.read_text().split()
        except FileNotFoundError:
            known = []
        if record["sop_instance_uid"] not in known:
            text = "".join(f"{u}\n" for u in [*known, record["sop_instance_uid"]])
            write_bytes_atomic(index, text.encode(), mode=FILE_MODE, tmpdir=cfg.paths.temp)


def expected_instances(cfg: SiteConfig | SitePaths, study_uid: str) -> dict[str, set[str]] | None:
    """Series UID -> SOP UIDs the COMPLETED procedure steps of the study reference, or None
    when no step of the study has COMPLETED (or one referenced no image: counts unknown)."""
    try:
        pps_uids = completed_index(cfg, study_uid).read_text().split()
    except (FileNotFoundError, NotADirectoryError):
        return None
    out: dict[str, set[str]] = {}
    for pps in pps_uids:
        record = read_record(cfg, pps)
        if record is None or record.get("status") != COMPLETED:
            continue
        for series in record.get("series", []):
            sops = set(series.get("sop_uids", []))
            if not sops:
                return None  # a series without its images listed: the quiet period decides
            out.setdefault(series["series_uid"], set()).update(sops)
    return out or None


def complete_by_mpps(cfg: SiteConfig, study_uids: Iterable[str]) -> set[str]:
    """The studies among ``study_uids`` that a COMPLETED MPPS describes and of which raw/
    holds every referenced instance: detectStudyArrival need not wait for their quiet period."""
    if not cfg.paths.scanner.is_dir():
        return set()
    done = set()
    for uid in set(study_uids):
        expected = expected_instances(cfg, uid)
        if expected is None:
            continue
        study_dir = cfg.paths.raw_study_dir(safe_uid(uid))
        if all(
            (study_dir / safe_uid(series) / safe_uid(sop)).exists()
            for series, sops in expected.items()
            for sop in sops
        ):
            done.add(uid)
    return done


def mpps_counts(paths: SitePaths, study_uid: str) -> dict[str, int]:
    """Series UID -> the instances COMPLETED procedure steps of the study reference (QC's
    integrity check compares them with what arrived); {} without such a step."""
    return {s: len(sops) for s, sops in (expected_instances(paths, study_uid) or {}).items()}
