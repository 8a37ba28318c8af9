"""detectStudyArrival pieces: tgz writer, cron locks, incoming list, events, the run itself.

Sites here are filed in-process with the real Organizer (no network); tests/test_arrival_e2e.py
covers the same with dcmtk storescu and the daemons.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tarfile
import time
import zlib
from pathlib import Path

import pytest

from conftest import run_bin, write_config
from fionagw import synth
from fionagw.arrival import detect, events, incoming, quarantine
from fionagw.arrival.quarantine import Member, crc32_combine, write_tgz
from fionagw.classify import Connection, RuleSet, read_header
from fionagw.config import SiteConfig, load_config
from fionagw.ops.locks import cron_lock, info_path, lock_info
from fionagw.organize.tree import Organizer
from fionagw.receive.notify import touch_study_job

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
            touch_study_job(cfg.paths, calling, "FIONA", "10.1.2.3", study)
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


@pytest.fixture
def site(tmp_path: Path) -> SiteConfig:
    cfg = load_config(write_config(tmp_path, arrival={"quiet_seconds": 2}))
    cfg.paths.create()
    return cfg


@pytest.fixture
def mr_study(tmp_path: Path) -> Path:
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


# -- tgz writer --------------------------------------------------------------------------------


def test_crc32_combine() -> None:
    rng = random.Random(1)
    for _ in range(20):
        a, b = rng.randbytes(rng.randrange(0, 5000)), rng.randbytes(rng.randrange(0, 70000))
        assert crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(a + b)


def test_tar_headers_match_tarfile() -> None:
    st = os.stat(__file__)
    long_uid = "1.2.840." + "9" * 56
    for name in (
        "a/b.dcm",
        f"site/raw/{long_uid}/{long_uid}/{long_uid}",
        "x" * 130,
        f"site/raw/{long_uid}",
    ):
        for kind in (tarfile.REGTYPE, tarfile.DIRTYPE):
            size = 1234 if kind == tarfile.REGTYPE else 0
            ours = quarantine._header(name, st, kind, size)
            info = tarfile.TarInfo(name)
            info.type, info.size, info.mode, info.mtime = (
                kind,
                size,
                st.st_mode & 0o7777,
                int(st.st_mtime),
            )
            info.uid, info.gid = st.st_uid, st.st_gid
            info.uname, info.gname = quarantine._user(st.st_uid), quarantine._group(st.st_gid)
            try:
                ref = info.tobuf(tarfile.USTAR_FORMAT)
            except ValueError:
                ref = info.tobuf(tarfile.GNU_FORMAT)
            assert ours == ref, name


def test_write_tgz_round_trip(tmp_path: Path) -> None:
    rng = random.Random(2)
    src = tmp_path / "src"
    src.mkdir()
    members = [Member("top/dir", src, True)]
    blobs = {
        "noise": rng.randbytes(3 * quarantine.CHUNK + 17),  # stored chunks
        "text": b"ClassifyType mosaic SIEMENS " * 120000,  # deflated chunks
        "empty": b"",
        "small": b"x" * 511,
        "zeros": bytes(quarantine.CHUNK),
    }
    for i, (name, data) in enumerate(blobs.items()):
        (src / name).write_bytes(data)
        os.symlink(src / name, src / f"link-{name}")
        members.append(Member(f"top/dir/{'long-' * 30}{i}-{name}", src / f"link-{name}"))
    dest = tmp_path / "q" / "out.tgz"
    result = write_tgz(dest, members)
    assert result.stored_chunks and result.deflated_chunks
    data = dest.read_bytes()
    assert result.md5 == hashlib.md5(data).hexdigest()
    assert result.bytes_out == len(data) < result.bytes_in
    assert len(gzip.decompress(data)) == result.bytes_in
    assert subprocess.run(["gzip", "-t", str(dest)]).returncode == 0
    with tarfile.open(dest) as tar:
        names = tar.getnames()
        assert names[0] == "top/dir" and tar.getmember("top/dir").isdir()
        for m in members[1:]:
            info = tar.getmember(m.arcname)
            assert info.isfile()  # symlinks dereferenced
            assert tar.extractfile(info).read() == m.path.read_bytes()
    listing = subprocess.run(
        ["tar", "-tzf", str(dest)], capture_output=True, text=True, check=True
    ).stdout
    assert len(listing.splitlines()) == len(members)
    assert not [p for p in dest.parent.iterdir() if p.name.startswith(".tmp")]


def test_write_tgz_skips_dangling_link_and_cleans_up_on_error(tmp_path: Path) -> None:
    (tmp_path / "gone").symlink_to(tmp_path / "missing")
    (tmp_path / "ok").write_bytes(b"data")
    result = write_tgz(
        tmp_path / "a.tgz", [Member("a/gone", tmp_path / "gone"), Member("a/ok", tmp_path / "ok")]
    )
    assert result.skipped == ["a/gone"]
    with tarfile.open(tmp_path / "a.tgz") as tar:
        assert tar.getnames() == ["a/ok"]
    old = (tmp_path / "a.tgz").read_bytes()
    with pytest.raises(OSError):  # a folder where a file is expected: read fails
        write_tgz(tmp_path / "a.tgz", [Member("a/ok", tmp_path / "ok"), Member("a/bad", tmp_path)])
    assert (tmp_path / "a.tgz").read_bytes() == old
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp")]


# -- cron locks --------------------------------------------------------------------------------


def test_cron_lock_and_lock_info(site: SiteConfig) -> None:
    assert lock_info(site, "detectStudyArrival") is None
    with cron_lock(site, "detectStudyArrival") as held:
        assert held.acquired
        assert held.path == site.paths.pids / "detectStudyArrival.lock"
        info = lock_info(site, "detectStudyArrival")
        assert info is not None and info.pid == os.getpid() and info.alive()
        assert 0 <= info.age_s() < 5
        other = cron_lock(site, "detectStudyArrival", exit_if_busy=False)
        with other:
            assert not other.acquired
        with pytest.raises(SystemExit) as exc:
            with cron_lock(site, "detectStudyArrival"):
                raise AssertionError("body must not run while another copy holds the lock")
        assert exc.value.code == 0
        with cron_lock(site, "removeOldEntries") as unrelated:  # another job: its own lock
            assert unrelated.acquired
    assert lock_info(site, "detectStudyArrival") is None
    assert not info_path(site, "detectStudyArrival").exists()
    # a sidecar left by a killed holder is stale once the lock is free
    info_path(site, "detectStudyArrival").write_text(
        json.dumps({"job": "detectStudyArrival", "site": "", "pid": 999999, "started": 1.0})
    )
    assert lock_info(site, "detectStudyArrival") is None
    assert not info_path(site, "detectStudyArrival").exists()


def test_lock_info_sees_another_process(site: SiteConfig) -> None:
    code = (
        "import sys, time; sys.path.insert(0, 'lib'); from fionagw.config import load_config; "
        "from fionagw.ops.locks import cron_lock; cfg = load_config(sys.argv[1]); "
        "lock = cron_lock(cfg, 'detectStudyArrival'); lock.__enter__(); print('held', flush=True); "
        "time.sleep(60)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(site.config_file)],
        cwd=Path(__file__).resolve().parents[1],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        info = lock_info(site, "detectStudyArrival")
        assert info is not None and info.pid == proc.pid and info.alive()
        r = run_bin("detectStudyArrival", config=site.config_file)
        assert r.returncode == 0 and r.stdout == "" and r.stderr == ""
        proc.kill()  # what heartbeat does to a job that ran too long: the kernel frees the flock
        proc.wait()
        assert not info.alive()
        assert lock_info(site, "detectStudyArrival") is None
    finally:
        proc.kill()
        proc.wait()


# -- incoming list and events ------------------------------------------------------------------


def test_incoming_list_upsert_and_prune(site: SiteConfig) -> None:
    path = site.paths.incoming_list
    path.write_text("1000 1.2.3 legacy FIONA line\n\nnot-an-epoch whatever\n")
    e1, prev = incoming.upsert(site, "1.2.840.1", {"images": 3, "series_count": 1}, now=5000)
    assert prev is None and e1.info["first_arrived"] == 5000
    incoming.upsert(site, "1.2.840.2", {"images": 1}, now=5001)
    e3, prev = incoming.upsert(site, "1.2.840.1", {"images": 5, "series_count": 2}, now=6000)
    assert prev is not None and prev.info["images"] == 3
    lines = path.read_text().splitlines()
    assert lines[0] == "1000 1.2.3 legacy FIONA line" and lines[1] == "not-an-epoch whatever"
    assert lines[2].startswith("5001 1.2.840.2 {")
    assert lines[3].startswith("6000 1.2.840.1 {") and len(lines) == 4
    assert json.loads(lines[3].split(" ", 2)[2]) == {
        "images": 5,
        "series_count": 2,
        "first_arrived": 5000,
    }
    assert incoming.find(site, "1.2.840.1") == e3
    dropped = incoming.remove_old(site, days=1, now=6000 + 86400 - 500)
    assert sorted(e.epoch for e in dropped) == [1000, 5001]
    assert [e.study_uid for e in incoming.read_entries(site)] == ["", "1.2.840.1"]
    assert incoming.remove(site, "1.2.840.1") and not incoming.remove(site, "1.2.840.1")


def test_events_record_and_list(site: SiteConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    t0 = time.time()
    p1 = events.record_event(site, "study-arrived", study_uid="1.2.3", images=4)
    p2 = events.record_event(site, "qc-failed", study_uid="1.2.3", check="x")
    assert p1.name.endswith("-study-arrived-1.2.3.json") and p1.name.split("-")[0].isdigit()
    monkeypatch.setattr(events.time, "time_ns", lambda: 42)
    a = events.record_event(site, "study", note="same nanosecond")
    b = events.record_event(site, "study", note="same nanosecond")
    assert a != b and a.name == "42-study.json" and b.name == "43-study.json"
    assert [e["type"] for e in events.list_events(site, type="study")] == ["study", "study"]
    arrived = events.list_events(site, type="study-arrived")
    assert len(arrived) == 1 and arrived[0]["images"] == 4 and arrived[0]["site"] == ""
    assert arrived[0]["id"] == p1.name[:-5] and "time" in arrived[0]
    assert [e["type"] for e in events.list_events(site, since=t0)] == ["study-arrived", "qc-failed"]
    assert events.list_events(site, since=time.time() + 10) == []
    assert p2.exists()
    with pytest.raises(ValueError):
        events.record_event(site, "Bad Type")


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
    assert report.completed_studies == [study] and report.studies[0].new
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
    assert report.completed_studies == [study] and jobs(site) == []


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
    assert report.completed_studies == [study]  # the study job itself was not touched
    assert time.time() - victim.stat().st_mtime < 5  # kept with its new mtime


def test_interrupted_claim_is_put_back(site: SiteConfig, mr_study: Path) -> None:
    study = file_study(site, mr_study)
    age_jobs(site)
    study_job = next(p for p in site.paths.arrived.iterdir() if "scp_" in p.name)
    os.rename(study_job, study_job.with_name(f"{detect.CLAIM_PREFIX}12345-{study_job.name}"))
    report = detect.run(site)
    assert report.completed_studies == [study] and jobs(site) == []


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
    assert report.completed_studies == [study] and report.studies[0].new
    assert report.studies[0].calling == "SCANNER"  # from the series job
    file_study(site, late)
    age_jobs(site)
    report = detect.run(site)
    assert (
        len(report.series) == 1
        and report.completed_studies == [study]
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
    assert report.completed_studies == [study] and jobs(site) == []


def test_series_folder_gone_drops_job(site: SiteConfig) -> None:
    job = site.paths.series_job("A", "B", "1.1.1.1", "1.2.3", "1.2.3.4")
    job.touch()
    age_jobs(site)
    report = detect.run(site)
    assert report.series[0].missing and not report.errors and jobs(site) == []
    assert not report.studies and not site.paths.incoming_list.exists()


def test_broken_series_json_keeps_job_and_fails(site: SiteConfig, mr_study: Path) -> None:
    study = file_study(site, mr_study)
    sj = sorted(site.paths.raw_study_dir(study).glob("*.json"))[0]
    sj.write_text("{broken")
    age_jobs(site)
    r = run_bin("detectStudyArrival", config=site.config_file)
    assert r.returncode == 1 and sj.stem in r.stderr
    assert [n for n in jobs(site) if sj.stem in n]  # kept for the next run
    log = [
        json.loads(line)
        for line in site.paths.logfile("detectStudyArrival").read_text().splitlines()
    ]
    assert any(e["level"] == "ERROR" and e.get("series_uid") == sj.stem for e in log)


# -- the programs -----------------------------------------------------------------------------


def test_quarantine_off_for_one_site(tmp_path: Path, mr_study: Path) -> None:
    config = write_config(
        tmp_path,
        arrival={"quiet_seconds": 2},
        SITES={
            "NOQ": {
                "DATADIR": str(tmp_path / "noq"),
                "DICOMPORT": 11999,
                "arrival": {"quarantine": False},
            }
        },
    )
    default, noq = load_config(config), load_config(config, "NOQ")
    assert default.arrival.quarantine and not noq.arrival.quarantine
    for cfg in (default, noq):
        cfg.paths.create()
        file_study(cfg, mr_study)
        age_jobs(cfg)
    r = run_bin("detectStudyArrival", "NOQ", config=config)
    assert r.returncode == 0, r.stderr
    assert jobs(noq) == [] and not list(noq.paths.quarantine.iterdir())
    assert (
        len(incoming.read_entries(noq)) == 1
        and noq.paths.logfile("detectStudyArrival").name == "detectStudyArrivalNOQ.log"
    )
    assert len(jobs(default)) == 8  # the other site is untouched
    r = run_bin("detectStudyArrival", "-v", config=config)
    assert r.returncode == 0 and "study " in r.stdout
    assert len(list(default.paths.quarantine.glob("*.tgz"))) == 7


def test_remove_old_entries_program(site: SiteConfig) -> None:
    now = int(time.time())
    old, fresh = now - 8 * 86400, now - 6 * 86400
    site.paths.incoming_list.write_text(
        f'{old} 1.2.3.1 {{"images":1}}\n{fresh} 1.2.3.2 {{"images":2}}\n{old} legacy line\n{now} 1.2.3.3 {{}}\n'
    )
    r = run_bin("removeOldEntries", config=site.config_file)
    assert r.returncode == 0 and r.stdout == "", r.stderr
    assert [e.study_uid for e in incoming.read_entries(site)] == ["1.2.3.2", "1.2.3.3"]
    r = run_bin("removeOldEntries", "--days", "1", "-v", config=site.config_file)
    assert r.returncode == 0 and "1.2.3.2" in r.stdout
    assert [e.study_uid for e in incoming.read_entries(site)] == ["1.2.3.3"]
