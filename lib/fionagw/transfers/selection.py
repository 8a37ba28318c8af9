"""Which series of a study a transfer sends (FIONA's anonymizeAndSend series loop).

Per series, from its ``raw/<study>/<series>.json`` record and the project's features:

* Modality PR and ``remove_presentation_states`` -> skipped;
* ``remove_secondary_captures`` -> series classified CHECKBURNEDINFO, or of a secondary-capture
  SOP class, are skipped (FIONA skipped the CHECKBURNEDINFO ones);
* CHECKBURNEDINFO otherwise (burned-in annotation or a screen capture; FIONA's ``(shadow) ``
  series excepted) -> its pixels are cleaned (``clean_pixels``: deid/pixels.py, what still
  fails the verification is held back file by file), unless the project says
  ``never_rewrite_pixels`` (FIONA's feature 1: the project accepts the pixels unchanged);
  with pixel cleaning switched off (``deid.pixels.enabled: false``) the series is held back,
  never sent with its pixels as they are.

A held-back series makes the transfer an error the data manager sees, while the other series
are still sent, so a whole MR study does not wait for one screenshot.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from fionagw.config.projects import Project
from fionagw.organize.series_json import (
    SUFFIX,
    SeriesJSONError,
    SeriesRecord,
    classify_types,
    modalities,
    read_series,
)

LOGGER = logging.getLogger(__name__)

BURNED_IN = "CHECKBURNEDINFO"
SC_CLASS_PREFIX = (
    "1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture Image Storage and its multi-frame kin
)


@dataclass
class SeriesPlan:
    series_uid: str
    record: SeriesRecord
    files: list[Path] = field(default_factory=list)  # archive files
    sops: list[str] = field(default_factory=list)  # their SOPInstanceUIDs (the raw/ link names)
    missing: int = 0  # raw/ links whose archive file is gone
    skip: str = ""  # reason the project does not want it
    hold: str = ""  # reason it must not leave as it is
    clean_pixels: bool = False  # burned-in text is looked for and masked (deid/pixels.py)

    @property
    def description(self) -> str:
        return str(self.record.get("SeriesDescription") or "")

    @property
    def modality(self) -> str:
        return (modalities(self.record) or ["OT"])[0]

    @property
    def sends(self) -> bool:
        return not (self.skip or self.hold)


def plan_series(raw_study: Path, project: Project) -> list[SeriesPlan]:
    """One plan per series directory of the study (sorted by series UID for a stable order)."""
    plans = []
    for series_dir in sorted(p for p in raw_study.iterdir() if p.is_dir()):
        try:
            record = read_series(raw_study / f"{series_dir.name}{SUFFIX}")
        except SeriesJSONError as exc:
            LOGGER.warning(
                "series JSON unreadable: series planned without its record",
                extra={"file": str(exc.path), "reason": exc.reason},
            )
            record = {}
        plan = SeriesPlan(series_dir.name, record)
        for link in sorted(series_dir.iterdir()):
            target = link.resolve()
            if target.is_file():
                plan.files.append(target)
                plan.sops.append(link.name)
            else:
                plan.missing += 1
        _decide(plan, project)
        plans.append(plan)
    return plans


def _decide(plan: SeriesPlan, project: Project) -> None:
    record = plan.record
    burned = BURNED_IN in classify_types(record) and not plan.description.startswith("(shadow) ")
    secondary = str(record.get("SOPClassUID", "")).startswith(SC_CLASS_PREFIX)
    if "PR" in modalities(record) and project.has_feature("remove_presentation_states"):
        plan.skip = "presentation state (project removes them)"
    elif (burned or secondary) and project.has_feature("remove_secondary_captures"):
        plan.skip = "secondary capture / burned-in annotation (project removes them)"
    elif burned and not project.has_feature("never_rewrite_pixels") and _pixels_on(project):
        plan.clean_pixels = True
    elif burned and not project.has_feature("never_rewrite_pixels"):
        plan.hold = (
            "held back: classified CHECKBURNEDINFO (burned-in annotation possible) and "
            "pixel cleaning is switched off for the project (deid.pixels.enabled); set "
            "the project feature never_rewrite_pixels or remove_secondary_captures to decide"
        )


def _pixels_on(project: Project) -> bool:
    """Pixel cleaning is on unless the project's ``deid.pixels.enabled`` is false (a bad
    block fails later, with the other de-identification settings)."""
    spec = (project.deid or {}).get("pixels") if isinstance(project.deid, dict) else None
    return not (isinstance(spec, dict) and spec.get("enabled") is False)
