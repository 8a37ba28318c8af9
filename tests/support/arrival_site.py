"""Sites for the detectStudyArrival tests, filed in-process: studies archived and classified by
the real Organizer (no network), job files aged by hand."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from fionagw.classify import Connection, RuleSet, read_header
from fionagw.config import SiteConfig, load_config
from fionagw.organize.tree import Organizer
from fionagw.receive.notify import touch
from support import synth
from support.site import write_config

PATIENT_ID, PATIENT_NAME = "PATID4711", "Doe^Jane"


def file_study(
    cfg: SiteConfig, src: Path, *, calling: str = "SCANNER", study_job: bool = True
) -> str:
    """Archive and file every DICOM file under ``src`` as the SCP + processSingleFile would."""
    organizer = Organizer(cfg, RuleSet.load(cfg.classify_rules))
    study = ""
    for f in sorted(src.rglob("*.dcm")):
        ds = read_header(f)
        study = str(ds.StudyInstanceUID)
        target = cfg.paths.archive_study_dir(study) / f"{ds.Modality}.{ds.SOPInstanceUID}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, target)
        if study_job:
            touch(cfg.paths.study_job(calling, "FIONA", "10.1.2.3", study))
        organizer.process(target, Connection(calling, "FIONA", "10.1.2.3"))
    organizer.flush()
    return study


def age_jobs(cfg: SiteConfig, seconds: float = 60, only: str = "") -> None:
    past = time.time() - seconds
    for job in cfg.paths.arrived.iterdir():
        if only in job.name:
            os.utime(job, (past, past))


def jobs(cfg: SiteConfig) -> list[str]:
    return sorted(p.name for p in cfg.paths.arrived.iterdir())


def arrival_site(tmp_path: Path) -> SiteConfig:
    """A site whose quiet period is 2 s, its folders made."""
    cfg = load_config(write_config(tmp_path, arrival={"quiet_seconds": 2}))
    cfg.paths.create()
    return cfg


def arrival_mr_study(tmp_path: Path) -> Path:
    """A 3-images-per-series Siemens MR study written under tmp_path/src."""
    src = tmp_path / "src"
    synth.standard_mr_study(
        src,
        vendor="SIEMENS",
        n_per_series=3,
        seed=5,
        patient_id=PATIENT_ID,
        patient_name=PATIENT_NAME,
        accession="ACC77",
    )
    return src
