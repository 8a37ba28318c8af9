"""detectStudyArrival runs in-process: job names, finished series and studies, quiet periods,
claims, late images and series, and jobs whose series folder is gone.

Sites here are filed in-process with the real Organizer (no network); bin/detectStudyArrival
is run in tests/integration/test_arrival_cli.py and end to end in test_arrival_e2e.py."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import time
from pathlib import Path

import pytest

from fionagw.arrival import detect, events, incoming, quarantine
from fionagw.classify import read_header
from fionagw.config import SiteConfig
from support import synth
from support.arrival_site import (
    PATIENT_ID,
    age_jobs,
    arrival_mr_study,
    arrival_site,
    file_study,
    jobs,
)


@pytest.fixture
def site(tmp_path: Path) -> SiteConfig:
    return arrival_site(tmp_path)


@pytest.fixture
def mr_study(tmp_path: Path) -> Path:
    return arrival_mr_study(tmp_path)


# -- detectStudyArrival runs -------------------------------------------------------------------


def test_job_names() -> None:
    job = detect.parse_job(Path("MRI FIONA 10.0.0.1 1.2.3 1.2.3.4"), 7)
    assert (
        job is not None
        and job.is_series
        and (job.calling, job.study_uid, job.series_uid) == ("MRI", "1.2.3", "1.2.3.4")
    )
    job = detect.parse_job(Path("MRI FIONA 10.0.0.1 scp_1.2.3"), 7)
    assert job is not None and not job.is_series and job.study_uid == "1.2.3"
    for bad in (
        "MRI FIONA 10.0.0.1 .. 1.2",
        "MRI FIONA ip scp_..",
        "MRI FIONA ip scp_",
        "MRI FIONA 1.2.3",
        "MRI FIONA ip 1.2.3",
        "a b c d e f",
    ):
        assert detect.parse_job(Path(bad), 7) is None, bad


def test_run_handles_finished_series_and_study(site: SiteConfig, mr_study: Path) -> None:
    study = file_study(site, mr_study, calling="MRI7")
    series = sorted(p.stem for p in site.paths.raw_study_dir(study).glob("*.json"))
    assert len(series) == 7 and len(jobs(site)) == 8
    # a stale NumFiles is corrected from the folder
    sj = site.paths.series_json(study, series[0])
    rec = json.loads(sj.read_text())
    rec["NumFiles"] = "999"
    sj.write_text(json.dumps(rec))
    age_jobs(site)
    report = detect.run(site)
    assert not report.errors and not report.waiting and not report.kept
    assert sorted(s.series_uid for s in report.series) == series
    assert [s.study_uid for s in report.studies] == [study] and report.studies[0].new
    assert jobs(site) == []
    for s in series:
        rec = json.loads(site.paths.series_json(study, s).read_text())
        n = len(list(site.paths.raw_series_dir(study, s).iterdir()))
        assert rec["NumFiles"] == str(n) and rec["ClassifyType"]
        tgz, md5sum, copy = quarantine.names(site, study, s)
        assert copy.read_bytes() == site.paths.series_json(study, s).read_bytes()
        assert md5sum.read_text() == f"{hashlib.md5(tgz.read_bytes()).hexdigest()} *{tgz.name}\n"
        assert quarantine.verify(tgz)
        with tarfile.open(tgz) as tar:
            files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
        base = f"site/raw/{study}/{s}"
        assert files.pop(f"{base}.json") == site.paths.series_json(study, s).read_bytes()
        assert files == {
            f"{base}/{p.name}": p.read_bytes()
            for p in site.paths.raw_series_dir(study, s).iterdir()
        }
    (entry,) = incoming.read_entries(site)
    info = entry.info
    assert entry.study_uid == study and abs(entry.epoch - time.time()) < 60
    assert (info["calling"], info["called"], info["ip"]) == ("MRI7", "FIONA", "10.1.2.3")
    assert (
        info["accession"] == "ACC77"
        and info["study_date"] == "20240102"
        and info["modalities"] == ["MR"]
    )
    assert info["series_count"] == 7 and info["images"] == sum(
        s["num_files"] for s in info["series"]
    )
    assert [s["uid"] for s in info["series"]] and {s["uid"] for s in info["series"]} == set(series)
    assert info["series"][0]["number"] == 1 and info["series"][0]["description"] == "localizer"
    assert info["patient_id_hash"] == hashlib.sha256(PATIENT_ID.encode()).hexdigest()
    (event,) = events.list_events(site)
    assert (
        event["type"] == "study-arrived"
        and event["study_uid"] == study
        and event["images"] == info["images"]
    )
    assert event["calling"] == "MRI7" and len(event["series"]) == 7
    for text in (site.paths.incoming_list.read_text(), Path(report.studies[0].event).read_text()):
        assert PATIENT_ID not in text and "Doe" not in text
    # nothing left to do: a second run is a no-op
    again = detect.run(site)
    assert not again.series and not again.studies and len(events.list_events(site)) == 1


def test_young_jobs_wait(site: SiteConfig, mr_study: Path) -> None:
    study = file_study(site, mr_study)
    before = jobs(site)
    report = detect.run(site)
    assert sorted(report.waiting) == before and not report.series and not report.studies
    assert jobs(site) == before and not list(site.paths.quarantine.iterdir())
    assert not site.paths.incoming_list.exists()
    # the study job is quiet but its series are not: series wait, the study is deferred
    age_jobs(site, only="scp_")
    report = detect.run(site)
    assert report.deferred == [study] and not report.studies and jobs(site) == before
    age_jobs(site)
    report = detect.run(site)
    assert [s.study_uid for s in report.studies] == [study] and jobs(site) == []


def test_job_touched_while_handled_is_kept(
    site: SiteConfig, mr_study: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    study = file_study(site, mr_study)
    age_jobs(site)
    victim = sorted(p for p in site.paths.arrived.iterdir() if len(p.name.split()) == 5)[0]
    real = detect.quarantine_series

    def slow_quarantine(cfg, study_uid, series_uid, **kw):  # type: ignore[no-untyped-def]
        if victim.name.endswith(series_uid):
            os.utime(victim)  # a late image of this series is filed meanwhile
        return real(cfg, study_uid, series_uid, **kw)

    monkeypatch.setattr(detect, "quarantine_series", slow_quarantine)
    report = detect.run(site)
    assert report.kept == [victim.name] and jobs(site) == [victim.name]
    assert [s.study_uid for s in report.studies] == [study]  # the study job itself was not touched
    assert time.time() - victim.stat().st_mtime < 5  # kept with its new mtime


def test_interrupted_claim_is_put_back(site: SiteConfig, mr_study: Path) -> None:
    study = file_study(site, mr_study)
    age_jobs(site)
    study_job = next(p for p in site.paths.arrived.iterdir() if "scp_" in p.name)
    os.rename(study_job, study_job.with_name(f"{detect.CLAIM_PREFIX}12345-{study_job.name}"))
    report = detect.run(site)
    assert [s.study_uid for s in report.studies] == [study] and jobs(site) == []


def test_series_only_study_and_late_series(site: SiteConfig, tmp_path: Path) -> None:
    """Files filed without the SCP (no study job) still reach the list; a late series of a
    listed study updates its entry instead of adding a second study."""
    src = tmp_path / "ct"
    synth.ct_study(src, n_images=4, seed=9, study_uid="1.2.826.0.1.3680043.2.1143.77")
    late = tmp_path / "late"
    synth.secondary_capture(late, n_images=2, seed=10, study_uid="1.2.826.0.1.3680043.2.1143.77")
    study = file_study(site, src, study_job=False)
    age_jobs(site)
    report = detect.run(site)
    assert [s.study_uid for s in report.studies] == [study] and report.studies[0].new
    assert report.studies[0].calling == "SCANNER"  # from the series job
    file_study(site, late)
    age_jobs(site)
    report = detect.run(site)
    assert (
        len(report.series) == 1
        and [s.study_uid for s in report.studies] == [study]
        and not report.studies[0].new
    )
    (entry,) = incoming.read_entries(site)
    assert entry.info["series_count"] == 2 and entry.info["images"] == 6
    assert entry.info["modalities"] == ["CT", "OT"]
    assert [e["type"] for e in events.list_events(site)] == ["study-arrived", "study-updated"]


def test_late_image_remakes_the_series_tgz(
    site: SiteConfig, mr_study: Path, tmp_path: Path
) -> None:
    late = tmp_path / "late"
    late.mkdir()
    moved = sorted((mr_study / "S002").iterdir())[-1]
    shutil.move(moved, late / moved.name)
    study = file_study(site, mr_study)
    age_jobs(site)
    detect.run(site)
    series = str(read_header(late / moved.name).SeriesInstanceUID)
    tgz = quarantine.names(site, study, series)[0]
    with tarfile.open(tgz) as tar:
        n_before = sum(1 for m in tar.getmembers() if m.isfile() and not m.name.endswith(".json"))
    assert n_before == 2
    file_study(site, late)
    age_jobs(site)
    report = detect.run(site)
    assert [s.series_uid for s in report.series] == [series] and report.series[0].num_files == 3
    with tarfile.open(tgz) as tar:
        assert sum(1 for m in tar.getmembers() if m.isfile() and not m.name.endswith(".json")) == 3
    assert quarantine.verify(tgz)
    assert json.loads(quarantine.names(site, study, series)[2].read_text())["NumFiles"] == "3"
    (entry,) = incoming.read_entries(site)
    assert entry.info["images"] == 21 and not report.studies[0].new


def test_study_waits_for_unfiled_archive_images(site: SiteConfig, mr_study: Path) -> None:
    study = file_study(site, mr_study)
    stray = site.paths.archive_study_dir(study) / "MR.1.2.3.999"  # stored, not yet filed
    shutil.copyfile(next(mr_study.rglob("*.dcm")), stray)
    age_jobs(site)
    report = detect.run(site)
    assert report.deferred == [study] and len(report.series) == 7 and not report.studies
    assert [n for n in jobs(site) if "scp_" in n]
    age_jobs(site, seconds=detect.UNFILED_PATIENCE_S + 5)
    report = detect.run(site)
    assert [s.study_uid for s in report.studies] == [study] and jobs(site) == []


def test_series_folder_gone_drops_job(site: SiteConfig) -> None:
    job = site.paths.series_job("A", "B", "1.1.1.1", "1.2.3", "1.2.3.4")
    job.touch()
    age_jobs(site)
    report = detect.run(site)
    assert report.series[0].missing and not report.errors and jobs(site) == []
    assert not report.studies and not site.paths.incoming_list.exists()
