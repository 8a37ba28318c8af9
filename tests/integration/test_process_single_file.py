"""processSingleFile end to end: dcmtk storescu -> storectl -> FIFO -> raw/ tree, with faults."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from io import BytesIO
from pathlib import Path

import pytest
from pydicom import dcmread

from fionagw.config import load_config
from support import phi_files
from support.site import (
    BIN,
    pydicom_test_file,
    raw_links,
    read_log,
    run_bin,
    storescu,
    wait_for,
    write_config,
)
from support.synth import standard_mr_study

pytestmark = pytest.mark.slow

BUNDLED = ["MR_small.dcm", "CT_small.dcm", "test-SR.dcm"]  # transfer syntaxes: test_receive_scp


@pytest.fixture
def daemons(site_config: Path):  # type: ignore[no-untyped-def]
    """Both daemons started the way cron starts them; stopped (and checked gone) afterwards."""
    for program in ("processSingleFile", "storectl"):
        r = run_bin(program, "start", config=site_config)
        assert r.returncode == 0, r.stderr + r.stdout
    cfg = load_config(site_config)
    yield cfg
    pids = []
    for program, component in (
        ("storectl", "storescpd"),
        ("processSingleFile", "processSingleFile"),
    ):
        pidfile = cfg.paths.pidfile(component)
        if pidfile.exists():
            pids.append(int(pidfile.read_text()))
        run_bin(program, "stop", config=site_config)
    for pid in pids:
        assert (
            not Path(f"/proc/{pid}").exists()
            or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
        )


def test_ingest_classifies_into_raw(daemons, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = daemons
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in BUNDLED:
        (corpus / name).write_bytes(pydicom_test_file(name).read_bytes())
    mr = standard_mr_study(tmp_path / "siemens", vendor="SIEMENS", n_per_series=3, seed=1)
    r = storescu(cfg.dicom_port, corpus, tmp_path / "siemens", aet="MODALITY1")
    assert r.returncode == 0, r.stderr
    expected = len(BUNDLED) + len(mr)
    links = wait_for(
        lambda: (ls := raw_links(cfg.datadir)) and len(ls) >= expected and ls,
        what=f"{expected} raw/ links",
    )
    assert len(links) == expected
    for link in links:
        target = Path(os.readlink(link))
        assert target.is_file() and target.is_relative_to(cfg.paths.archive)
        assert target.name.endswith("." + link.name)  # <MOD>.<SOPUID>

    # Series JSON: FIONA keys and types; NumFiles equals the links of the series.
    jsons = list(cfg.paths.raw.glob("*/*.json"))
    wait_for(
        lambda: all(
            json.loads(j.read_text())["NumFiles"] == str(len(list(j.with_suffix("").iterdir())))
            for j in jsons
        ),
        what="NumFiles",
    )
    for j in jsons:
        rec = json.loads(j.read_text())
        assert isinstance(rec["NumFiles"], str) and isinstance(rec["ClassifyType"], list)
        assert isinstance(rec["Modality"], list) and len(rec["Modality"]) == 1
        assert rec["IncomingConnection"]["AETitleCaller"] == "MODALITY1"
        assert rec["IncomingConnection"]["AETitleCalled"] == "FIONA"
        assert rec["IncomingConnection"]["CallerIP"] == "127.0.0.1"
        assert rec["SeriesInstanceUID"] == j.stem
    types = {t for j in jsons for t in json.loads(j.read_text())["ClassifyType"]}
    assert {"SIEMENS", "mosaic"} <= types

    # participants/<PatientID>/<StudyDate>_<StudyTime> -> raw/<Study>
    plinks = [p for p in cfg.paths.participants.glob("*/*") if p.is_symlink()]
    assert plinks and all(Path(os.readlink(p)).parent == cfg.paths.raw for p in plinks)
    # SR gets an srs/ link
    srs = [p for p in cfg.paths.srs.glob("*/*/*") if p.is_symlink()]
    assert len(srs) == 1 and srs[0].resolve().is_file()
    # a series job per series, and the study jobs from the SCP
    jobs = [p.name for p in cfg.paths.arrived.iterdir()]
    assert sum(1 for n in jobs if len(n.split(" ")) == 5) == len(jsons)
    assert any(n.startswith("MODALITY1 FIONA 127.0.0.1 scp_") for n in jobs)


def test_files_stored_while_classifier_is_down_are_reconciled(
    site_config: Path, tmp_path: Path
) -> None:
    cfg = load_config(site_config)
    assert run_bin("storectl", "start", config=site_config).returncode == 0
    try:
        files = standard_mr_study(tmp_path / "ge", vendor="GE", n_per_series=100, seed=2)
        files = files[:500]
        send_dir = tmp_path / "send"
        send_dir.mkdir()
        for i, f in enumerate(files):
            os.link(f, send_dir / f"{i:04d}.dcm")
        r = storescu(cfg.dicom_port, send_dir)
        assert r.returncode == 0, r.stderr
        archived = list(cfg.paths.archive.glob("scp_*/*"))
        assert len(archived) == 500
        assert raw_links(cfg.datadir) == []
        r = run_bin("processSingleFile", "start", config=site_config)
        assert r.returncode == 0, r.stderr
        wait_for(lambda: len(raw_links(cfg.datadir)) == 500, what="500 raw/ links after reconcile")
    finally:
        run_bin("processSingleFile", "stop", config=site_config)
        run_bin("storectl", "stop", config=site_config)


def test_broken_files_are_moved_aside_and_daemon_goes_on(daemons, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = daemons
    archive_dir = cfg.paths.archive_study_dir("1.2.3.4")
    archive_dir.mkdir(parents=True)
    text = archive_dir / "MR.1.2.3.4.5"
    text.write_text("this is not DICOM\n")
    good_src = pydicom_test_file("MR_small.dcm").read_bytes()
    truncated = archive_dir / "MR.1.2.3.4.6"
    truncated.write_bytes(good_src[:600])
    good = tmp_path / "good.dcm"
    good.write_bytes(good_src)
    r = run_bin("processSingleFile", "send", str(text), str(truncated), config=cfg.config_file)
    assert r.returncode == 0, r.stderr
    wait_for(
        lambda: (
            (cfg.paths.broken / "scp_1.2.3.4" / "MR.1.2.3.4.5").exists()
            and (cfg.paths.broken / "scp_1.2.3.4" / "MR.1.2.3.4.6").exists()
        ),
        what="files moved aside",
    )
    assert not text.exists() and not truncated.exists()
    reason = (cfg.paths.broken / "scp_1.2.3.4" / "MR.1.2.3.4.5.reason").read_text()
    assert reason.strip()
    log = [
        json.loads(line) for line in cfg.paths.logfile("processSingleFile").read_text().splitlines()
    ]
    errors = [e for e in log if e["level"] == "ERROR"]
    assert any(e.get("file") == str(text) and e.get("reason") for e in errors)
    # the daemon is alive and still works
    assert run_bin("processSingleFile", "status", config=cfg.config_file).returncode == 0
    r = storescu(cfg.dicom_port, good)
    assert r.returncode == 0
    wait_for(lambda: len(raw_links(cfg.datadir)) == 1, what="good file classified")


def test_rebuild_recreates_derived_trees(daemons, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = daemons
    files = standard_mr_study(tmp_path / "ph", vendor="PHILIPS", n_per_series=4, seed=3)
    assert storescu(cfg.dicom_port, tmp_path / "ph", aet="SCANNER").returncode == 0
    wait_for(lambda: len(raw_links(cfg.datadir)) == len(files), what="ingest")
    time.sleep(0.5)
    before = {
        p.relative_to(cfg.paths.raw): json.loads(p.read_text())
        for p in cfg.paths.raw.glob("*/*.json")
    }
    r = run_bin("processSingleFile", "rebuild", config=cfg.config_file)
    assert r.returncode == 1 and "stop it before a rebuild" in r.stderr
    assert run_bin("processSingleFile", "stop", config=cfg.config_file).returncode == 0
    r = run_bin("processSingleFile", "rebuild", config=cfg.config_file)
    assert r.returncode == 0, r.stderr
    after = {
        p.relative_to(cfg.paths.raw): json.loads(p.read_text())
        for p in cfg.paths.raw.glob("*/*.json")
    }
    assert after.keys() == before.keys()
    for key in before:
        assert after[key]["ClassifyType"] == before[key]["ClassifyType"]
        assert after[key]["NumFiles"] == before[key]["NumFiles"]
        assert after[key]["IncomingConnection"]["AETitleCaller"] == "SCANNER"
    assert len(raw_links(cfg.datadir)) == len(files)


def test_fiona_run_receives_and_stops_cleanly(tmp_path: Path) -> None:
    site_config = write_config(tmp_path, web={"enabled": False}, metrics={"enabled": False})
    cfg = load_config(site_config)
    proc = subprocess.Popen(
        [sys.executable, str(BIN / "fiona"), "--config", str(site_config), "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        banner = []
        for line in proc.stdout:  # type: ignore[union-attr]
            banner.append(line)
            if "listening on" in line:
                break
        text = "".join(banner)
        assert f"127.0.0.1:{cfg.dicom_port}" in text and str(cfg.datadir) in text
        assert storescu(cfg.dicom_port, pydicom_test_file("CT_small.dcm")).returncode == 0
        wait_for(lambda: len(raw_links(cfg.datadir)) == 1, what="file classified under fiona run")
        children = subprocess.run(
            ["pgrep", "-P", str(proc.pid)], capture_output=True, text=True
        ).stdout.split()
        assert len(children) >= 2  # the receiver, processSingleFile (and any due cron job)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    for pid in children:
        assert not Path(f"/proc/{pid}").exists()
    assert not cfg.paths.pidfile("storescpd").exists()
    assert not cfg.paths.pidfile("processSingleFile").exists()


def test_a_poison_file_goes_to_broken_once(site_config: Path, tmp_path: Path) -> None:
    """A file that makes the classifier raise (its PatientID is too long for a folder name) is
    moved to broken/ with its reason at the first start, and the next start and reconcile never
    meet it again: one log entry about it, no traceback."""
    cfg = load_config(site_config)
    poison = phi_files.broken_files(tmp_path)["pid_too_long"]
    study = str(dcmread(BytesIO(poison), stop_before_pixels=True).StudyInstanceUID)
    archived = cfg.paths.archive_study_dir(study) / "MR.1.2.826.0.1.3680043.2.1143.5"
    archived.parent.mkdir(parents=True)
    archived.write_bytes(poison)
    moved = cfg.paths.broken / archived.parent.name / archived.name
    good = pydicom_test_file("MR_small.dcm").read_bytes()
    good_study = str(dcmread(BytesIO(good), stop_before_pixels=True).StudyInstanceUID)
    for n in (1, 2):  # start (its reconcile files the archive), stop; then again
        if n == 2:  # a file only the second start's reconcile can find: it has run when filed
            later = (
                cfg.paths.archive_study_dir(good_study)
                / "MR.1.3.6.1.4.1.5962.1.1.4.1.1.20040826185059.5457"
            )
            later.parent.mkdir(parents=True)
            later.write_bytes(good)
        r = run_bin("processSingleFile", "start", config=site_config)
        assert r.returncode == 0, r.stderr
        try:
            wait_for(moved.exists, what="the poison file in broken/")
            wait_for(lambda n=n: len(raw_links(cfg.datadir)) == n - 1, what="the reconcile pass")
        finally:
            assert run_bin("processSingleFile", "stop", config=site_config).returncode == 0
    assert not archived.exists() and moved.read_bytes() == poison
    reason = moved.with_name(moved.name + ".reason").read_text()
    assert reason.startswith("classifier failed: OSError: [Errno 36 ENAMETOOLONG]")
    entries = read_log(cfg.paths.logfile("processSingleFile"))
    about = [e for e in entries if str(archived) in json.dumps(e)]
    assert len(about) == 1, about
    assert about[0]["message"] == "file the classifier cannot handle: moved aside"
    assert about[0]["reason"].startswith("classifier failed: OSError")
    assert not any("exception" in e for e in entries)
    assert phi_files.MARKER not in cfg.paths.logfile("processSingleFile").read_text()
    assert sum(1 for e in entries if e["message"] == "processSingleFile started") == 2


def test_test_classifies_one_file_and_writes_nothing(daemons, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`processSingleFile test FILE` prints the series JSON and ClassifyType the daemon makes
    for the same file, with the site's rules, and leaves DATADIR as it was."""
    cfg = daemons
    real = pydicom_test_file("MR_small.dcm")
    mosaic = standard_mr_study(tmp_path / "s", vendor="SIEMENS", n_per_series=1, seed=7)[0]

    def snapshot() -> dict[str, float]:
        return {str(p): p.stat().st_mtime for p in cfg.datadir.rglob("*") if "logs" not in p.parts}

    for path in (real, mosaic):
        before = snapshot()
        r = run_bin("processSingleFile", "test", str(path), config=cfg.config_file)
        assert r.returncode == 0, r.stderr
        assert snapshot() == before  # nothing written (the logs are the daemons')
        text, _, last = r.stdout.rstrip("\n").rpartition("\n")
        printed = json.loads(text)
        assert last == "ClassifyType: " + ", ".join(printed["ClassifyType"])
        # the daemon, sent the same file, writes the same record
        assert storescu(cfg.dicom_port, path).returncode == 0
        uid = printed["SeriesInstanceUID"]
        series_json = cfg.paths.series_json(printed["StudyInstanceUID"], uid)
        wait_for(series_json.exists, what="the daemon's series JSON")
        filed = json.loads(series_json.read_text())
        for key in ("IncomingConnection",):
            filed.pop(key), printed.pop(key)
        assert filed == printed
    assert "MR" in json.loads(text)["ClassifyType"]

    # the site's own rules, by SITE name: a site whose rules know one type only
    rules = tmp_path / "rules.json"
    rules.write_text(
        json.dumps([{"type": "TRYME", "rules": [{"tag": ["0x08", "0x60"], "value": "^MR$"}]}])
    )
    config = json.loads(cfg.config_file.read_text())
    config["SITES"] = {"TRY": {"DATADIR": str(tmp_path / "try"), "CLASSIFY_RULES": str(rules)}}
    cfg.config_file.write_text(json.dumps(config))
    for argv in (("test", str(real), "TRY"), ("test", "TRY", str(real))):
        r = run_bin("processSingleFile", *argv, config=cfg.config_file)
        assert r.returncode == 0, r.stderr
        assert r.stdout.rstrip().endswith("ClassifyType: TRYME")
    assert not (tmp_path / "try").exists()

    # what is not a DICOM file, or is missing: one line, exit 1
    r = run_bin("processSingleFile", "test", str(cfg.config_file), config=cfg.config_file)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "not DICOM" in r.stderr
    r = run_bin("processSingleFile", "test", str(tmp_path / "none.dcm"), config=cfg.config_file)
    assert r.returncode == 1 and "no such file" in r.stderr.lower().replace("directory", "file")
    r = run_bin("processSingleFile", "test", "--help")
    assert "series JSON" in r.stdout and "ClassifyType" in r.stdout
