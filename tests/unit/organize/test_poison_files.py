"""Files the classifier cannot handle: filed when only an element is bad, moved to broken/ once
(with a reason, no value of the file in it or in the log) when the file cannot be filed."""

from __future__ import annotations

import io
import json
import logging
import os
from pathlib import Path

import pydicom
import pytest

from fionagw.config import SiteConfig, load_config
from fionagw.ops.log import setup_logging
from fionagw.organize.processor import UNKNOWN, Processor, file_one
from fionagw.paths import safe_uid
from support import phi_files
from support.site import raw_links, write_config


@pytest.fixture
def cfg(tmp_path: Path):  # type: ignore[no-untyped-def]
    cfg = load_config(write_config(tmp_path))
    cfg.paths.create()
    setup_logging(cfg, "processSingleFile")
    yield cfg
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
        h.close()


def plant(cfg: SiteConfig, files: dict[str, bytes]) -> dict[str, Path]:
    """Each file where the receiver puts it, archive/scp_<Study>/MR.<SOP>, so the reconcile
    pass knows it once it is filed (unreadable ones in a folder of their own)."""
    planted = {}
    for name, data in files.items():
        try:
            ds = pydicom.dcmread(io.BytesIO(data), force=True)
            study, sop = safe_uid(str(ds.StudyInstanceUID)), safe_uid(str(ds.SOPInstanceUID))
        except Exception:
            study, sop = "1.2.826.0.1.3680043.2.1143.999", name
        folder = cfg.paths.archive_study_dir(study)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"MR.{sop}"
        path.write_bytes(data)
        planted[name] = path
    return planted


def log_entries(cfg: SiteConfig) -> list[dict]:
    path = cfg.paths.logfile("processSingleFile")
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_bad_elements_are_filed_and_unfileable_files_go_to_broken(cfg, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    files = {**phi_files.broken_files(tmp_path), **phi_files.unsendable_files(tmp_path)}
    planted = plant(cfg, files)
    processor = Processor(cfg)
    assert processor.reconcile(full=True) == len(files)
    broken = {"pid_too_long", "pid_length_past_end", "truncated_name"}
    for name, path in planted.items():
        moved = cfg.paths.broken / path.parent.name / path.name
        assert moved.exists() == (name in broken), name
        assert path.exists() == (name not in broken), name
    # a wrong VR or an odd length in one element (the crash of issue 11) files the image
    assert len(raw_links(cfg.datadir)) == len(files) - len(broken)
    moved = cfg.paths.broken / planted["pid_too_long"].relative_to(cfg.paths.archive)
    reason = moved.with_name(moved.name + ".reason")
    text = reason.read_text()
    assert text.startswith("classifier failed: OSError: [Errno 36 ENAMETOOLONG] (at ")
    assert "in _link_participant" in text and "Traceback" in text  # the frames, for a developer
    log = cfg.paths.logfile("processSingleFile").read_text()
    assert phi_files.MARKER not in log
    for r in cfg.paths.broken.rglob("*.reason"):
        assert phi_files.MARKER not in r.read_text()
    assert not any("exception" in e for e in log_entries(cfg))

    # the next start and reconcile pass meet none of them again
    before = len(log_entries(cfg))
    processor = Processor(cfg)
    assert processor.reconcile(full=True) == 0
    assert len(log_entries(cfg)) == before


def test_a_poison_file_leaves_its_series_batch_as_it_was(cfg, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The poison file fails after its series record was computed: the batch must not keep its
    link or count it."""
    good = phi_files.base_file(tmp_path, 11)
    # same seed: same study and series; another instance
    poison = phi_files.splice(
        phi_files.broken_files(tmp_path)["pid_too_long"],
        "SOPInstanceUID",
        "UI",
        b"1.2.826.0.1.3680043.2.1143.77\0",
    )
    planted = plant(cfg, {"good": good})
    folder = planted["good"].parent
    poison_path = folder / "MR.poison"
    poison_path.write_bytes(poison)
    processor = Processor(cfg)
    assert file_one(processor.organizer, poison_path, UNKNOWN).ok is False
    assert file_one(processor.organizer, planted["good"], UNKNOWN).ok is True
    processor.flush(force=True)
    links = raw_links(cfg.datadir)
    assert len(links) == 1 and os.readlink(links[0]) == str(planted["good"].resolve())
    (series_json,) = cfg.paths.raw.glob("*/*.json")
    assert json.loads(series_json.read_text())["NumFiles"] == "1"


def test_machine_errors_are_retried_not_moved(cfg, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """An OSError the file's values did not cause (here raw/ is not a folder) leaves the file
    in the archive for the next reconcile."""
    planted = plant(cfg, {"plain": phi_files.base_file(tmp_path, 1)})
    path = planted["plain"]
    processor = Processor(cfg)
    raw = cfg.paths.raw
    raw.rmdir()
    raw.write_text("")
    outcome = file_one(processor.organizer, path, UNKNOWN)
    assert not outcome.ok and path.exists() and not list(cfg.paths.broken.rglob("*"))
    (entry,) = [e for e in log_entries(cfg) if e["level"] == "ERROR"]
    assert entry["message"] == "processing failed; will retry at the next reconcile"
    assert entry["error"].startswith("NotADirectoryError: [Errno 20 ENOTDIR] (at ")
    raw.unlink()
    raw.mkdir()
    assert processor.reconcile(full=True) == 1 and len(raw_links(cfg.datadir)) == 1
