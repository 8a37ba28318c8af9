"""The record of an upload (``DATADIR/uploads/<id>/metadata.json``): what came, what was stored,
what was left out and why. The Attach page lists them; Assign reads the project chosen for a
study from them."""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fionagw.config import SiteConfig
from fionagw.ops.atomic import write_json_atomic

# Ids start with their local time, so sorting them sorts uploads by age.
UPLOAD_ID = re.compile(r"^[0-9]{8}T[0-9]{6}-[0-9a-f]{8}$")


@dataclass
class Skipped:
    name: str
    reason: str


@dataclass
class UploadRecord:
    upload_id: str
    kind: str  # "dicom" or "nifti"
    # "stored" (DICOM in the pipeline / NIfTI kept), "partial" (stopped by a write error)
    status: str
    created: float
    user: str = ""
    project: str = ""
    source: str = ""  # "zip" or "folder"
    metadata: dict[str, str] = field(default_factory=dict)  # applied (form > sidecar)
    studies: list[str] = field(default_factory=list)  # StudyInstanceUIDs stored
    stored: int = 0  # DICOM files committed
    replaced: int = 0  # of which an earlier copy existed
    files: list[str] = field(default_factory=list)  # NIfTI set files kept
    volumes: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UploadRecord:
        names = set(cls.__dataclass_fields__)
        values = {k: v for k, v in data.items() if k in names}
        values["skipped"] = [Skipped(**s) for s in values.get("skipped") or []]
        return cls(**values)


def new_upload_id(now: float | None = None) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%S", time.localtime(time.time() if now is None else now))
    return f"{stamp}-{secrets.token_hex(4)}"


def record_path(cfg: SiteConfig, upload_id: str) -> Path:
    if not UPLOAD_ID.match(upload_id):
        raise ValueError(f"not an upload id: {upload_id!r}")
    return cfg.paths.upload_record(upload_id)


def save_record(cfg: SiteConfig, record: UploadRecord) -> None:
    path = record_path(cfg, record.upload_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, record.to_json(), durable=True)


def load_record(cfg: SiteConfig, upload_id: str) -> UploadRecord | None:
    try:
        data = json.loads(record_path(cfg, upload_id).read_text(encoding="utf-8"))
        return UploadRecord.from_json(data)
    except (OSError, ValueError, TypeError):
        return None


def _upload_ids(cfg: SiteConfig) -> list[str]:
    """Every upload's id, oldest first."""
    try:
        return sorted(e.name for e in os.scandir(cfg.paths.uploads) if UPLOAD_ID.match(e.name))
    except FileNotFoundError:
        return []


def list_uploads(cfg: SiteConfig, limit: int = 100) -> list[UploadRecord]:
    """The newest uploads first."""
    records = []
    for name in _upload_ids(cfg)[::-1][:limit]:
        record = load_record(cfg, name)
        if record is not None:
            records.append(record)
    return records


def upload_projects(cfg: SiteConfig, since: float) -> dict[str, str]:
    """StudyInstanceUID -> project for DICOM uploads made for a project since ``since``."""
    found: dict[str, str] = {}
    cutoff = time.strftime("%Y%m%dT%H%M%S", time.localtime(since))
    for name in (n for n in _upload_ids(cfg) if n >= cutoff):
        record = load_record(cfg, name)
        if record is not None and record.kind == "dicom" and record.project:
            for uid in record.studies:
                found[uid] = record.project
    return found


def skipped_text(skipped: Iterable[Skipped], limit: int = 20) -> list[str]:
    """Lines for the page: every left-out file with its reason (the first ``limit``)."""
    items = list(skipped)
    lines = [f"{s.name}: {s.reason}" for s in items[:limit]]
    if len(items) > limit:
        lines.append(f"... and {len(items) - limit} more")
    return lines
