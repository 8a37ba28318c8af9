"""A site for anonymizeAndSend: projects of each de-identification kind, a folder and an
unreachable DICOM destination, the local tracker; synthetic studies filed into it in-process."""

from __future__ import annotations

import shutil
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from fionagw.classify import Connection, RuleSet
from fionagw.config import load_config
from fionagw.organize.tree import Organizer
from fionagw.routing.requests import create_transfer_requests
from fionagw.tracking.local import LocalTracker
from support.site import free_port, write_config
from support.synth import standard_mr_series, write_study

# (the synthetic operator is "Operator^Synthetic": a description with "Synthetic" would be a hit)
PATIENT = {
    "patient_id": "PID-4711",
    "patient_name": "Nordmann^Kari",
    "accession": "ACC-99812",
    "study_description": "MR brain",
}


PROJECTS = """
projects:
  ALPHA:
    participant_id: '^ALPHA[0-9]{3}$'
    events: [baseline, followup]
    features: {remove_presentation_states: true}
    deid: {mode: keyed}
  FIONAPROJ:
    participant_id: '^F[0-9]{3}$'
    deid: {mode: fiona}
  KEEPPRIV:
    participant_id: '^K[0-9]{3}$'
    deid:
      mode: keyed
      private_keep: ["0019,ACME LEAKY,10", "0019,ACME LEAKY,11"]
  SCREENS:
    participant_id: '^S[0-9]{3}$'
    features: {never_rewrite_pixels: true}
  NOPIX:
    participant_id: '^N[0-9]{3}$'
    features: {remove_presentation_states: true}
    deid: {mode: keyed, pixels: {enabled: false}}
  PIXELS:
    participant_id: '^P[0-9]{3}$'
    deid:
      mode: keyed
      pixels: {exclusions: [{tag: "0008,103E", regexp: "^KEEP"}]}
"""


def transfer_site(tmp_path: Path):  # type: ignore[no-untyped-def]
    """(config, tracker, outbox, config.json path) of a fresh site; closes the tracker after."""
    projects = tmp_path / "projects.yml"
    projects.write_text(PROJECTS)
    outbox = tmp_path / "outbox"
    config = write_config(
        tmp_path,
        tracker={"projects_file": str(projects)},
        destinations={
            "research-folder": {"type": "folder", "path": str(outbox)},
            "down-pacs": {
                "type": "dicom",
                "host": "127.0.0.1",
                "port": free_port(),
                "called_aetitle": "NOBODY",
            },
        },
        sending={"max_attempts": 3, "retry_base_seconds": 60, "retry_max_seconds": 600},
    )
    cfg = load_config(config)
    cfg.paths.create()
    tracker = LocalTracker(cfg.paths.tracker_db, projects)
    yield cfg, tracker, outbox, config
    tracker.close()


def ingest(cfg, files: list[Path]) -> str:  # type: ignore[no-untyped-def]
    """Put files where the receiver would and classify them (as processSingleFile does)."""
    organizer = Organizer(cfg, RuleSet.load(cfg.classify_rules), touch_jobs=False)
    study = ""
    for f in files:
        ds = pydicom.dcmread(f, stop_before_pixels=True)
        study = ds.StudyInstanceUID
        target = cfg.paths.archive / f"scp_{study}" / f"{ds.Modality}.{ds.SOPInstanceUID}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, target)
        organizer.process(target, Connection("MODALITY", "FIONA", "127.0.0.1"))
    organizer.flush()
    return study


def request(cfg, tracker, study: str, project: str, participant: str, event: str = "") -> Path:  # type: ignore[no-untyped-def]
    assert tracker.request_transfer(study, project, participant, event) is not None
    [path] = [
        p for p in create_transfer_requests(cfg, tracker) if study in p.name and project in p.name
    ]
    return path


def mr_study(tmp_path: Path, n: int = 3, **extra) -> list[Path]:  # type: ignore[no-untyped-def]
    return write_study(
        tmp_path / "in",
        vendor="SIEMENS",
        series=standard_mr_series("SIEMENS", n)[:3],
        **PATIENT,
        **extra,
    )


def sent_files(outbox: Path) -> list[Path]:
    return sorted(p for p in outbox.rglob("*.dcm"))


def hide_phi_in_private_sequence(path: Path) -> None:
    """A private block the project keeps: a text element with the patient's ID and a
    sequence whose item has the name in an attribute the profile keeps as it stands (Sequence
    Name, keep_list.KEEP; a Code Meaning would be cleaned of it, not refused)."""
    ds = pydicom.dcmread(path)
    block = ds.private_block(0x0019, "ACME LEAKY", create=True)
    item = Dataset()
    item.SequenceName = f"fu {ds.PatientName.family_name} {ds.PatientName.given_name}"
    block.add_new(0x10, "SQ", Sequence([item]))
    block.add_new(0x11, "LO", f"ref {ds.PatientID}")
    ds.save_as(path, enforce_file_format=True)
