"""clearOldFiles and clearStaleLinks on real files: oldest first, pending/failed/young studies kept."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from fionagw.config import load_config
from fionagw.ops.jobstate import last_run
from fionagw.ops.retention import tree_bytes
from fionagw.tracking.factory import open_tracker
from fionagw.tracking.records import COMPLETE_ERROR, COMPLETE_OK
from support.site import read_log, run_bin, write_config

STUDY_BYTES = 1024 * 1024
DAY = 86400


def _age(path: Path, seconds: float) -> None:
    t = time.time() - seconds
    os.utime(path, (t, t), follow_symlinks=False)


def make_study(cfg, uid: str, age_s: float, *, sr: bool = False) -> None:  # type: ignore[no-untyped-def]
    p = cfg.paths
    series = f"{uid}.1"
    archive = p.archive_study_dir(uid)
    archive.mkdir(parents=True)
    raw_series = p.raw_series_dir(uid, series)
    raw_series.mkdir(parents=True)
    for i in range(4):
        f = archive / f"MR.{uid}.{i}"
        f.write_bytes(os.urandom(STUDY_BYTES // 4))
        (raw_series / f"{uid}.{i}").symlink_to(f)
    p.series_json(uid, series).write_text("{}")
    person = p.participants / f"P{uid[-1]}"
    person.mkdir(parents=True, exist_ok=True)
    (person / "20240101_120000").symlink_to(p.raw_study_dir(uid))
    if sr:
        srs = p.srs / "_" / uid
        srs.mkdir(parents=True)
        (srs / f"{uid}.0").symlink_to(raw_series / f"{uid}.0")
    p.quarantine.mkdir(parents=True, exist_ok=True)
    (p.quarantine / f"{uid}_{series}.tgz").write_bytes(b"x" * 100)
    (p.quarantine / f"{uid}_{series}.md5sum").write_text("0 *x\n")
    _age(archive, age_s)


def study_exists(cfg, uid: str) -> bool:  # type: ignore[no-untyped-def]
    return cfg.paths.archive_study_dir(uid).exists() or cfg.paths.raw_study_dir(uid).exists()


def setup_site(tmp_path: Path):  # type: ignore[no-untyped-def]
    config = write_config(tmp_path)
    cfg = load_config(config)
    cfg.paths.create()
    ages = {
        "1.2.1": 10 * DAY,
        "1.2.2": 9 * DAY,
        "1.2.3": 8 * DAY,
        "1.2.4": 7 * DAY,
        "1.2.5": 6 * DAY,
        "1.2.6": 3600,
    }
    for uid, age in ages.items():
        make_study(cfg, uid, age, sr=uid == "1.2.3")
    tracker = open_tracker(cfg)
    try:
        tracker.request_transfer("1.2.1", "ProjA", "P001")  # pending: no transfer_date
        failed = tracker.request_transfer("1.2.2", "ProjA", "P002")
        assert failed is not None
        failed.transfer_date = "2024-01-02 10:00:00"
        failed.transfers_complete = COMPLETE_ERROR
        failed.transfer_error = {3}
        tracker.update_transfer(failed)
        done = tracker.request_transfer("1.2.3", "ProjA", "P003")
        assert done is not None
        done.transfer_date = "2024-01-02 10:00:00"
        done.transfers_complete = COMPLETE_OK
        tracker.update_transfer(done)
    finally:
        tracker.close()
    return cfg


def with_capacity(tmp_path: Path, cfg, capacity: int) -> Path:  # type: ignore[no-untyped-def]
    return write_config(tmp_path, DICOMPORT=cfg.dicom_port, retention={"capacity_bytes": capacity})


@pytest.mark.slow
def test_clear_old_files_deletes_oldest_first_and_spares_wanted_studies(tmp_path: Path) -> None:
    cfg = setup_site(tmp_path)
    used = tree_bytes(cfg.datadir)
    # Free space becomes enough after two deletions, not after one (target 20 %).
    config = with_capacity(tmp_path, cfg, int((used - 1.5 * STUDY_BYTES) / 0.8))
    r = run_bin("clearOldFiles", "-v", config=config)
    assert r.returncode == 0, r.stdout + r.stderr
    gone = {
        uid
        for uid in ("1.2.1", "1.2.2", "1.2.3", "1.2.4", "1.2.5", "1.2.6")
        if not study_exists(cfg, uid)
    }
    # 1.2.1 (pending request) and 1.2.2 (failed request) are older, but must stay.
    assert gone == {"1.2.3", "1.2.4"}, r.stdout
    p = cfg.paths
    assert not list(p.quarantine.glob("1.2.3_*")) and not list(p.quarantine.glob("1.2.4_*"))
    assert len(list(p.quarantine.glob("1.2.1_*"))) == 2
    assert not (p.srs / "_" / "1.2.3").exists()
    assert not (p.participants / "P3").exists() and not (p.participants / "P4").exists()
    assert (p.participants / "P1" / "20240101_120000").resolve() == p.raw_study_dir(
        "1.2.1"
    ).resolve()
    entries = [e for e in read_log(p.logfile("clearOldFiles")) if e["message"] == "study deleted"]
    assert [e["study"] for e in entries] == ["1.2.3", "1.2.4"]
    assert all(e["bytes"] >= STUDY_BYTES and "under target" in e["reason"] for e in entries)
    run = last_run(cfg, "clearOldFiles")
    assert run and run.ok and "2 studies deleted" in run.summary

    # A second run with enough space does nothing.
    r = run_bin("clearOldFiles", "-v", config=config)
    assert r.returncode == 0 and "0 studies deleted" in r.stdout


@pytest.mark.slow
def test_clear_old_files_never_deletes_young_or_wanted_studies(tmp_path: Path) -> None:
    cfg = setup_site(tmp_path)
    config = with_capacity(tmp_path, cfg, tree_bytes(cfg.datadir) // 2)  # over quota
    dry = run_bin("clearOldFiles", "--dry-run", config=config)
    assert dry.returncode == 0 and "would delete 1.2.3" in dry.stdout
    assert study_exists(cfg, "1.2.3")
    r = run_bin("clearOldFiles", "-v", config=config)
    assert r.returncode == 0, r.stdout + r.stderr
    left = {
        uid
        for uid in ("1.2.1", "1.2.2", "1.2.3", "1.2.4", "1.2.5", "1.2.6")
        if study_exists(cfg, uid)
    }
    assert left == {"1.2.1", "1.2.2", "1.2.6"}
    assert "kept 1.2.1: pending transfer request" in r.stdout
    assert "kept 1.2.2: failed transfer request" in r.stdout
    assert "kept 1.2.6: younger than retention.min_age_hours" in r.stdout
    log = read_log(cfg.paths.logfile("clearOldFiles"))
    assert any(e["message"] == "free space still under target" for e in log)
    text = cfg.paths.logfile("clearOldFiles").read_text()
    assert "P001" not in text and "P002" not in text  # no participant IDs in the log


def test_log_retention(tmp_path: Path) -> None:
    config = write_config(tmp_path, retention={"log_days": 90})
    cfg = load_config(config)
    cfg.paths.create()
    old = [cfg.paths.logs / "storescpd.log.3", cfg.paths.logs / "storescpd-start.log"]
    new = [cfg.paths.logs / "storescpd.log", cfg.paths.logs / "storescpd.log.1"]
    for f in old + new:
        f.write_text("{}\n")
    for f in old:
        _age(f, 91 * DAY)
    _age(new[1], 89 * DAY)
    r = run_bin("clearOldFiles", "-v", config=config)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 old log files deleted" in r.stdout
    assert not any(f.exists() for f in old) and all(f.exists() for f in new)


def test_clear_stale_links(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    cfg = load_config(config)
    cfg.paths.create()
    make_study(cfg, "1.3.1", 0, sr=True)
    p = cfg.paths
    # Study 1.3.1 lost its archive: every link into it is broken.
    for f in p.archive_study_dir("1.3.1").iterdir():
        f.unlink()
    p.archive_study_dir("1.3.1").rmdir()
    # A series JSON whose folder is gone, an empty study folder, a broken participant link.
    orphan = p.raw / "1.3.2" / "1.3.2.9.json"
    orphan.parent.mkdir(parents=True)
    orphan.write_text("{}")
    _age(orphan, 2 * 3600)
    young = p.raw / "1.3.4" / "1.3.4.9.json"
    young.parent.mkdir(parents=True)
    young.write_text("{}")
    (p.raw / "1.3.3").mkdir()
    (p.participants / "PX").mkdir()
    (p.participants / "PX" / "20240101_000000").symlink_to(p.raw / "1.9.9")
    # A healthy study stays as it is.
    make_study(cfg, "1.3.5", 0)

    r = run_bin("clearStaleLinks", "-v", "--min-age", "0", config=config)
    assert r.returncode == 0, r.stdout + r.stderr
    assert not (p.raw / "1.3.1").exists()  # links, series JSON and folders all gone
    assert not (p.srs / "_").exists()
    assert not orphan.exists() and not (p.raw / "1.3.2").exists()
    assert not (p.raw / "1.3.3").exists()
    assert not (p.participants / "PX").exists()
    assert len(list(p.raw_series_dir("1.3.5", "1.3.5.1").iterdir())) == 4
    assert p.series_json("1.3.5", "1.3.5.1").exists()
    assert (p.participants / "P5" / "20240101_120000").exists()
    assert not young.exists()  # --min-age 0 takes young files too
    assert p.raw.is_dir() and p.participants.is_dir() and p.srs.is_dir()
    run = last_run(cfg, "clearStaleLinks")
    assert run and run.ok and "broken links" in run.summary


def test_clear_stale_links_leaves_fresh_files(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    cfg = load_config(config)
    cfg.paths.create()
    fresh = (
        cfg.paths.raw / "1.4.1" / "1.4.1.1.json"
    )  # processSingleFile is about to make the folder
    fresh.parent.mkdir(parents=True)
    fresh.write_text("{}")
    r = run_bin("clearStaleLinks", config=config)
    assert r.returncode == 0, r.stdout + r.stderr
    assert fresh.exists()
