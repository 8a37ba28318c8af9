"""detectStudyArrival end to end: dcmtk storescu -> storectl -> processSingleFile -> quiet period
-> bin/detectStudyArrival (quarantine, incoming list, events), as cron runs it."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from fionagw.arrival import events, incoming, quarantine
from fionagw.config import SiteConfig, load_config
from fionagw.ops.locks import cron_lock
from support import synth
from support.site import BIN, run_bin, storescu, wait_for, write_config

pytestmark = pytest.mark.slow

QUIET = 2


def n_links(cfg: SiteConfig) -> int:
    return sum(1 for p in cfg.paths.raw.glob("*/*/*") if p.is_symlink())


def jobs(cfg: SiteConfig) -> list[Path]:
    return sorted(p for p in cfg.paths.arrived.iterdir() if not p.name.startswith("."))


def wait_quiet(cfg: SiteConfig, expected_links: int) -> None:
    """All images filed and every job file older than the quiet period."""
    wait_for(lambda: n_links(cfg) >= expected_links, what=f"{expected_links} raw/ links")
    assert n_links(cfg) == expected_links
    wait_for(
        lambda: all(time.time() - p.stat().st_mtime > QUIET + 0.2 for p in jobs(cfg)),
        what="job files to become quiet",
    )


def detect(cfg: SiteConfig, *args: str) -> subprocess.CompletedProcess:
    r = run_bin("detectStudyArrival", *args, config=cfg.config_file)
    assert r.returncode == 0, r.stderr
    return r


@pytest.fixture
def daemons(tmp_path: Path):  # type: ignore[no-untyped-def]
    config = write_config(tmp_path, arrival={"quiet_seconds": QUIET})
    for program in ("processSingleFile", "storectl"):
        r = run_bin(program, "start", config=config)
        assert r.returncode == 0, r.stderr + r.stdout
    yield load_config(config)
    for program in ("storectl", "processSingleFile"):
        run_bin(program, "stop", config=config)


def check_quarantine(cfg: SiteConfig, study: str, series: str) -> None:
    """tgz = the series' files byte for byte + its JSON; .md5sum as md5sum -b; .json copy."""
    tgz, md5sum, copy = quarantine.names(cfg, study, series)
    series_json = cfg.paths.series_json(study, series).read_bytes()
    assert copy.read_bytes() == series_json
    digest = hashlib.md5(tgz.read_bytes()).hexdigest()
    assert md5sum.read_text() == f"{digest} *{tgz.name}\n"
    assert subprocess.run(["md5sum", "-c", "--quiet", md5sum.name], cwd=tgz.parent).returncode == 0
    with tarfile.open(tgz) as tar:
        content = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    base = f"site/raw/{study}/{series}"
    assert content.pop(f"{base}.json") == series_json
    series_dir = cfg.paths.raw_series_dir(study, series)
    expected = {f"{base}/{p.name}": p.resolve().read_bytes() for p in series_dir.iterdir()}
    assert content == expected and len(expected) == int(json.loads(series_json)["NumFiles"])


def test_two_studies_then_a_late_series(daemons, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = daemons
    s1, s2 = tmp_path / "s1", tmp_path / "s2"
    f1 = synth.standard_mr_study(
        s1,
        vendor="SIEMENS",
        n_per_series=3,
        seed=21,
        patient_id="PID-ONE",
        patient_name="One^Patient",
        accession="ACC-1",
    )
    f2 = synth.standard_mr_study(
        s2,
        vendor="GE",
        n_per_series=2,
        seed=22,
        patient_id="PID-TWO",
        patient_name="Two^Patient",
        accession="ACC-2",
    )
    series_dirs = sorted(p for p in s1.iterdir() if p.is_dir())
    late_dir = series_dirs[-1]
    first = [p for p in f1 if p.parent != late_dir]
    assert storescu(cfg.dicom_port, *series_dirs[:-1], aet="MODALITY1").returncode == 0
    assert storescu(cfg.dicom_port, s2, aet="MODALITY2").returncode == 0
    wait_quiet(cfg, len(first) + len(f2))

    # An image arriving refreshes the jobs (as the SCP and the classifier do): too young. Dated
    # a minute ahead, so a loaded machine's slow start of detectStudyArrival cannot age them.
    ahead = time.time() + 60
    for job in jobs(cfg):
        os.utime(job, (ahead, ahead))
    before = [p.name for p in jobs(cfg)]
    detect(cfg)
    assert [p.name for p in jobs(cfg)] == before
    assert not list(cfg.paths.quarantine.iterdir()) and not cfg.paths.incoming_list.exists()

    for job in jobs(cfg):
        os.utime(job)
    time.sleep(QUIET + 0.3)
    r = detect(cfg, "-v")
    assert "study " in r.stdout
    assert jobs(cfg) == []
    studies = sorted(p.name for p in cfg.paths.raw.iterdir())
    assert len(studies) == 2
    for study in studies:
        for sj in cfg.paths.raw_study_dir(study).glob("*.json"):
            check_quarantine(cfg, study, sj.stem)
    assert len(list(cfg.paths.quarantine.glob("*.tgz"))) == 6 + 7

    entries = {e.study_uid: e for e in incoming.read_entries(cfg)}
    assert len(cfg.paths.incoming_list.read_text().splitlines()) == 2 and sorted(entries) == studies
    by_acc = {e.info["accession"]: e for e in entries.values()}
    one, two = by_acc["ACC-1"].info, by_acc["ACC-2"].info
    assert (one["calling"], one["called"], one["ip"]) == ("MODALITY1", "FIONA", "127.0.0.1")
    assert two["calling"] == "MODALITY2" and two["modalities"] == ["MR"]
    assert one["series_count"] == 6 and one["images"] == len(first)
    assert two["series_count"] == 7 and two["images"] == len(f2)
    assert all(abs(e.epoch - time.time()) < 60 for e in entries.values())
    text = cfg.paths.incoming_list.read_text()
    assert "PID-ONE" not in text and "Patient" not in text
    arrived = events.list_events(cfg, type="study-arrived")
    assert sorted(e["study_uid"] for e in arrived) == studies
    assert {e["images"] for e in arrived} == {len(first), len(f2)}
    assert all("PID-" not in json.dumps(e) for e in arrived)

    # The late series of study 1: same study, one entry updated, its series count grows.
    study1 = by_acc["ACC-1"].study_uid
    assert storescu(cfg.dicom_port, late_dir, aet="MODALITY1").returncode == 0
    wait_quiet(cfg, len(f1) + len(f2))
    detect(cfg)
    assert jobs(cfg) == []
    entries = incoming.read_entries(cfg)
    assert len(entries) == 2
    updated = next(e for e in entries if e.study_uid == study1)
    assert updated.info["series_count"] == 7 and updated.info["images"] == len(f1)
    assert updated.info["first_arrived"] == by_acc["ACC-1"].info["first_arrived"]
    assert len(events.list_events(cfg, type="study-arrived")) == 2
    (update,) = events.list_events(cfg, type="study-updated")
    assert update["study_uid"] == study1 and update["images"] == len(f1)
    late_series = {p.stem for p in cfg.paths.raw_study_dir(study1).glob("*.json")} - {
        s["uid"] for s in by_acc["ACC-1"].info["series"]
    }
    (late_uid,) = late_series
    check_quarantine(cfg, study1, late_uid)


def test_concurrent_runs_and_the_lock(daemons, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = daemons
    files = synth.standard_mr_study(
        tmp_path / "s", vendor="PHILIPS", n_per_series=25, seed=31, pixel_bytes=64 * 1024
    )
    assert storescu(cfg.dicom_port, tmp_path / "s", aet="SCANNER").returncode == 0
    wait_quiet(cfg, len(files))
    before = [p.name for p in jobs(cfg)]

    with cron_lock(cfg, "detectStudyArrival"):  # another copy is running: exit 0, touch nothing
        r = detect(cfg)
        assert r.stdout == "" and r.stderr == ""
    assert [p.name for p in jobs(cfg)] == before

    procs = [
        subprocess.Popen(
            [str(BIN / "detectStudyArrival"), "--config", str(cfg.config_file)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    assert jobs(cfg) == []
    assert len(events.list_events(cfg)) == 1 and len(incoming.read_entries(cfg)) == 1
    assert len(list(cfg.paths.quarantine.glob("*.tgz"))) == 7
    log = [
        json.loads(line)
        for line in cfg.paths.logfile("detectStudyArrival").read_text().splitlines()
    ]
    assert sum(1 for e in log if e["message"] == "study complete") == 1
    assert sum(1 for e in log if e["message"] == "series complete") == 7
    assert any("another copy holds the lock" in e["message"] for e in log)  # the held lock above


def test_runs_from_cron_bare_environment(daemons, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = daemons
    files = synth.ct_study(tmp_path / "ct", n_images=5, seed=41)
    assert storescu(cfg.dicom_port, tmp_path / "ct", aet="CT1").returncode == 0
    wait_quiet(cfg, len(files))
    r = subprocess.run(
        ["env", "-i", str(BIN / "detectStudyArrival"), "--config", str(cfg.config_file)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/",
    )
    assert r.returncode == 0, r.stderr
    assert jobs(cfg) == []
    (entry,) = incoming.read_entries(cfg)
    assert (
        entry.info["calling"] == "CT1"
        and entry.info["modalities"] == ["CT"]
        and entry.info["images"] == 5
    )
    assert len(list(cfg.paths.quarantine.glob("*.md5sum"))) == 1
    r = subprocess.run(
        ["env", "-i", str(BIN / "removeOldEntries"), "--config", str(cfg.config_file)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/",
    )
    assert r.returncode == 0, r.stderr
    assert len(incoming.read_entries(cfg)) == 1
