"""getAllPatients: what a PACS source holds (studies of the last DAYS days, their series and
instance counts), kept in DATADIR/inventory/<source>.json beside what the gateway holds.

The file names patients (PatientID, AccessionNumber): it is written atomically with mode 0640
and never logged. Runs merge: the hourly short run refreshes the last day, the nightly long
run the last week; a study not seen by any run for ``KEEP_DAYS`` days is dropped.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from fionagw.config.site import SiteConfig
from fionagw.ops.atomic import write_json_atomic
from fionagw.ops.perms import FILE_MODE, make_dirs
from fionagw.pacs.client import PacsClient, connect
from fionagw.pacs.local import local_counts
from fionagw.paths import safe_component

log = logging.getLogger("fionagw.pacs.inventory")
KEEP_DAYS = 30


@dataclass
class InventoryRun:
    source: str
    studies: int = 0
    series: int = 0
    instances: int = 0
    incomplete_here: int = 0  # studies the gateway holds fewer instances of

    def summary(self) -> str:
        return (
            f"{self.source}: {self.studies} studies, {self.series} series, "
            f"{self.instances} instances; {self.incomplete_here} incomplete here"
        )


def inventory_file(cfg: SiteConfig, source: str) -> Path:
    return cfg.paths.inventory / f"{safe_component(source)}.json"


def read_inventory(cfg: SiteConfig, source: str) -> dict[str, Any]:
    try:
        data = json.loads(inventory_file(cfg, source).read_text())
    except (FileNotFoundError, ValueError):
        return {"source": source, "studies": {}}
    return data if isinstance(data, dict) else {"source": source, "studies": {}}


def _text(ds: Any, keyword: str) -> str:
    value = ds.get(keyword, "")
    return "\\".join(str(v) for v in value) if isinstance(value, list | tuple) else str(value)


def take_inventory(
    cfg: SiteConfig,
    days: int,
    source: str = "",
    client: PacsClient | None = None,
    *,
    complete: bool = False,
) -> InventoryRun:
    """Ask the source for the studies of the last ``days`` days (0: today) and their series,
    merge them into the source's inventory file; PacsError when the PACS cannot be asked.
    ``complete``: list the studies the gateway holds only part of in active-scans/ (for
    moveFromScanner)."""
    if client is None:
        with connect(cfg, source) as c:
            return take_inventory(cfg, days, source, c, complete=complete)
    name = client.source.name
    today = date.today()
    since = today - timedelta(days=max(days, 0))
    studies = client.studies(StudyDate=f"{since:%Y%m%d}-{today:%Y%m%d}")
    data = read_inventory(cfg, name)
    known: dict[str, Any] = data.get("studies", {}) if isinstance(data.get("studies"), dict) else {}
    run = InventoryRun(name)
    now = time.time()
    for ds in studies:
        uid = str(ds.get("StudyInstanceUID", ""))
        if not uid:
            continue
        series = client.series(uid)
        here = local_counts(cfg, uid)
        remote_total = sum(series.values())
        local_total = sum(min(here.get(s, 0), n) for s, n in series.items())
        known[uid] = {
            "PatientID": _text(ds, "PatientID"),
            "AccessionNumber": _text(ds, "AccessionNumber"),
            "StudyDate": _text(ds, "StudyDate"),
            "StudyTime": _text(ds, "StudyTime"),
            "ModalitiesInStudy": _text(ds, "ModalitiesInStudy"),
            "instances": remote_total,
            "series": {s: {"instances": n, "here": here.get(s, 0)} for s, n in series.items()},
            "here": local_total,
            "seen": now,
        }
        run.studies += 1
        run.series += len(series)
        run.instances += remote_total
        if 0 < local_total < remote_total:
            run.incomplete_here += 1
            if complete:
                from fionagw.pacs.scans import add_active_scan

                add_active_scan(cfg, uid, source=name, by="getAllPatients")
    horizon = now - KEEP_DAYS * 86400
    known = {u: v for u, v in known.items() if float(v.get("seen", 0)) >= horizon}
    make_dirs(cfg.paths.inventory)
    write_json_atomic(
        inventory_file(cfg, name),
        {"source": name, "queried_at": now, "days": days, "studies": known},
        mode=FILE_MODE,
        tmpdir=cfg.paths.temp,
    )
    log.info(
        "inventory taken",
        extra={
            "source": name,
            "days": days,
            "studies": run.studies,
            "series": run.series,
            "instances": run.instances,
            "incomplete_here": run.incomplete_here,
        },
    )
    return run
