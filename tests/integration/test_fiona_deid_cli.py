"""`fiona deid`: end to end on files written by synth, as cron or a shell would run it."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from pydicom import dcmread

from fionagw.deid import check_release, collect_identifiers, fiona_uid, keyed_uid
from support import synth
from support.site import run_bin, write_config

pytestmark = pytest.mark.slow  # each test runs bin/fiona deid (about 1 s each)

PROJECTS = """
projects:
  LEG:
    participant_id: '^LEG[0-9]{4}$'
    events: [baseline, followup]
    deid: {mode: fiona}
  KEY:
    participant_id: '^K[0-9]+$'
    deid: {mode: keyed, tag_changes: ["0008,1030=PROJECTNAME"]}
  HIT:
    participant_id: '^LEG[0-9]{4}$'
    deid: {mode: fiona, tag_changes: ["0008,1030=Follow-up of Kari Hansen"]}
  BAD:
    participant_id: '.*'
    deid: {mode: keyed, times: sometimes}
"""
STUDY = {
    "patient_name": "Hansen^Kari^Marie",
    "patient_id": "MRN31337",
    "accession": "ACC2024X",
    "study_description": "Brain research protocol",
}


@pytest.fixture
def site(tmp_path: Path) -> Path:
    (tmp_path / "projects.yml").write_text(PROJECTS)
    return write_config(tmp_path, tracker={"projects_file": str(tmp_path / "projects.yml")})


def deid(config: Path, *args: str) -> subprocess.CompletedProcess:
    result = run_bin("fiona", "deid", *map(str, args), config=config)
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result


def test_fiona_project_end_to_end(site, tmp_path):
    files = synth.standard_mr_study(tmp_path / "in" / "mr", "SIEMENS", n_per_series=2, **STUDY)
    files += synth.ct_study(tmp_path / "in" / "ct", "GE", n_images=3, seed=7, **STUDY)
    out = tmp_path / "out"
    result = deid(
        site,
        tmp_path / "in",
        "--project",
        "LEG",
        "--participant",
        "LEG0001",
        "--event",
        "baseline",
        "--out",
        out,
    )
    assert result.returncode == 0, result.stderr
    assert f"{len(files)} of {len(files)} file(s) written" in result.stdout
    assert "(8 series, 2 studies)" in result.stdout
    originals = [dcmread(f) for f in files]
    ids = collect_identifiers(originals)
    written = sorted(out.rglob("*.dcm"))
    assert len(written) == len(files)
    for orig in originals:  # FIONA's -b layout: <newSeries>/<Modality>.<newSOP>.dcm
        path = (
            out
            / fiona_uid(orig.SeriesInstanceUID, "LEG")
            / f"{orig.Modality}.{fiona_uid(orig.SOPInstanceUID, 'LEG')}.dcm"
        )
        ds = dcmread(path)
        assert ds.SOPInstanceUID == fiona_uid(orig.SOPInstanceUID, "LEG")
        assert ds.PatientID == "LEG0001" and ds.ClinicalTrialTimePointID == "baseline"
        assert ds.ReferringPhysicianName == "EventName:baseline" and ds.InstitutionName == "LEG"
        assert check_release(ds, ids) == []
        assert ds.PixelData == orig.PixelData
    # the mapping re-identifies: kept in the gateway's protected store, never beside the data
    assert not list(out.rglob("mapping.json")) and not list(out.rglob("*.json"))
    (kept,) = (tmp_path / "data" / "mappings" / "LEG").glob("deid-*.json")
    assert f"UID mapping kept in {kept}" in result.stdout
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert stat.S_IMODE(kept.parent.stat().st_mode) == 0o700
    mapping = json.loads(kept.read_text())
    studies = sorted({o.StudyInstanceUID for o in originals})
    series = sorted({o.SeriesInstanceUID for o in originals})
    assert mapping == {
        "StudyInstanceUID": {s: fiona_uid(s, "LEG") for s in studies},
        "SeriesInstanceUID": {s: fiona_uid(s, "LEG") for s in series},
    }
    dcmftest = shutil.which("dcmftest")
    assert dcmftest, "dcmtk is not installed: run ./tests/run"
    check = subprocess.run([dcmftest, *map(str, written)], capture_output=True, text=True)
    assert check.returncode == 0 and check.stdout.count("yes:") == len(written), check.stdout
    dump = subprocess.run(["dcmdump", "-q", str(written[0])], capture_output=True, text=True)
    assert dump.returncode == 0 and "LEG0001" in dump.stdout and "MRN31337" not in dump.stdout


def test_keyed_project_is_deterministic_and_logs_no_key(site, tmp_path):
    files = synth.standard_mr_study(tmp_path / "in", "PHILIPS", n_per_series=1, **STUDY)
    runs = []
    for name in ("a", "b"):
        result = deid(
            site,
            tmp_path / "in",
            "--project",
            "KEY",
            "--participant",
            "K7",
            "--out",
            tmp_path / name,
        )
        assert result.returncode == 0, result.stderr
        runs.append(
            {
                p.relative_to(tmp_path / name): p.read_bytes()
                for p in (tmp_path / name).rglob("*.dcm")
            }
        )
    assert runs[0] == runs[1] and len(runs[0]) == len(files)  # a resend gives the same objects
    key_file = tmp_path / "data" / "keys" / "KEY.key"
    key = key_file.read_bytes()
    assert len(key) == 32 and key_file.stat().st_mode & 0o777 == 0o600
    orig = dcmread(files[0])
    new_series = keyed_uid(orig.SeriesInstanceUID, key)
    new_sop = keyed_uid(orig.SOPInstanceUID, key)
    out = dcmread(tmp_path / "a" / new_series / f"MR.{new_sop}.dcm")
    assert out.StudyDescription == "KEY"  # the project's tag change
    log = (tmp_path / "data" / "logs" / "deid.log").read_text()
    assert log.count("created a new de-identification key") == 1
    assert key.hex() not in log and "MRN31337" not in log and "Hansen" not in log


def test_bad_inputs_are_reported_and_counted(site, tmp_path):
    good = synth.standard_mr_study(tmp_path / "in" / "study", "GE", n_per_series=1, **STUDY)
    (tmp_path / "in" / "notes.txt").write_text("not DICOM")
    (tmp_path / "in" / "empty.dcm").write_bytes(b"")
    whole = good[1].read_bytes()
    (tmp_path / "in" / "cut.dcm").write_bytes(whole[: len(whole) - 1000])  # pixels cut short
    (tmp_path / "in" / "header.dcm").write_bytes(whole[:200])  # ends inside the header
    odd = dcmread(good[0])  # an invalid birth date: pydicom would quote it in a warning
    odd.add_new(0x00100030, "DA", "1961-07-14")
    odd.save_as(good[0])
    result = deid(
        site,
        tmp_path / "in",
        tmp_path / "missing.dcm",
        "--project",
        "LEG",
        "--participant",
        "LEG0002",
        "--out",
        tmp_path / "out",
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    for name, reason in (
        ("notes.txt", "not a DICOM file"),
        ("empty.dcm", "not a DICOM file"),
        ("cut.dcm", "truncated file: (7FE0,0010)"),
        ("header.dcm", "not a DICOM object (no SOP Instance UID)"),
        ("missing.dcm", "no such file or folder"),
    ):
        mine = [line for line in lines if f"/{name}:" in line]
        assert len(mine) == 1 and reason in mine[0], (name, lines)
    assert f"{len(good)} of {len(good) + 5} file(s) written" in result.stdout
    assert "5 unreadable" in result.stdout
    assert len(list((tmp_path / "out").rglob("*.dcm"))) == len(good)  # the good copy, not cut.dcm
    log = (tmp_path / "data" / "logs" / "deid.log").read_text()
    assert "1961-07-14" not in log + result.stderr and "Invalid value" not in result.stderr


def test_release_check_hit_writes_nothing(site, tmp_path):
    synth.standard_mr_study(
        tmp_path / "in",
        "SIEMENS",
        n_per_series=1,
        **STUDY,
    )
    # the engine cleans kept descriptions now; a project's literal tag change is not cleaned
    result = deid(
        site,
        tmp_path / "in",
        "--project",
        "HIT",
        "--participant",
        "LEG0003",
        "--out",
        tmp_path / "out",
    )
    assert result.returncode == 1
    hits = [line for line in result.stderr.splitlines() if "release check" in line]
    assert hits and all("patient_name found at (0008,1030)" in h for h in hits)
    assert "Kari" not in result.stderr and "Hansen" not in result.stderr
    assert not (tmp_path / "out").exists()  # not a single file, no mapping.json
    assert "with release-check hits" in result.stdout


@pytest.mark.parametrize(
    "args,message",
    [
        (["--project", "LEG", "--participant", "SUBJ1"], "does not match project LEG's pattern"),
        (
            ["--project", "NOPE", "--participant", "X"],
            "unknown project 'NOPE' (known: BAD, HIT, KEY, LEG)",
        ),
        (
            ["--project", "LEG", "--participant", "LEG0001", "--event", "week9"],
            "not an event of project LEG",
        ),
        (["--project", "BAD", "--participant", "X"], "projects.BAD.deid.times"),
    ],
)
def test_refused_before_anything_is_written(site, tmp_path, args, message):
    synth.standard_mr_study(tmp_path / "in", "SIEMENS", n_per_series=1, **STUDY)
    result = deid(site, tmp_path / "in", "--out", tmp_path / "out", *args)
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_one_sop_uid_in_two_different_files_is_an_error_naming_both(site, tmp_path):
    (a,) = synth.standard_mr_study(tmp_path / "in", "SIEMENS", n_per_series=1, **STUDY)[:1]
    ds = dcmread(a)
    ds.ImageComments = "a different object"
    b = tmp_path / "in" / "other.dcm"
    ds.save_as(b)
    shutil.copy(a, tmp_path / "in" / "copy.dcm")
    args = ("--project", "LEG", "--participant", "LEG0004", "--out", tmp_path / "out")
    result = deid(site, a, b, tmp_path / "in" / "copy.dcm", *args)
    assert result.returncode == 1
    clash = [line for line in result.stderr.splitlines() if "different content" in line]
    assert len(clash) == 3 and str(a) in clash[1] and str(b) in clash[0]
    assert "0 of 3 file(s) written" in result.stdout
