"""The permission policy after a whole pipeline run: storescu -> storectl -> processSingleFile
-> detectStudyArrival -> populateIncoming (local tracker); nothing under DATADIR is open to
others and the series JSON (patient names and IDs) is 0640."""

from __future__ import annotations

import os
import stat
import subprocess
import time
from pathlib import Path

import pytest

from fionagw.config import load_config
from support.site import raw_links, run_bin, storescu, wait_for, write_config
from support.synth import standard_mr_study

pytestmark = pytest.mark.slow


def test_pipeline_leaves_nothing_open_to_others(tmp_path: Path) -> None:
    projects = tmp_path / "projects.yml"
    projects.write_text("projects:\n  ALPHA:\n    participant_id: '^ALPHA[0-9]{3}$'\n")
    cfg_path = write_config(
        tmp_path,
        tracker={"backend": "local", "projects_file": str(projects)},
        arrival={"quiet_seconds": 1},
    )
    cfg = load_config(cfg_path)
    # A permissive caller (umask 0) must not matter: the programs set their own umask.
    old = os.umask(0)
    try:
        for program in ("processSingleFile", "storectl"):
            r = run_bin(program, "start", config=cfg_path)
            assert r.returncode == 0, r.stderr + r.stdout
        try:
            files = standard_mr_study(
                tmp_path / "study",
                vendor="SIEMENS",
                n_per_series=2,
                seed=5,
                patient_id="PAT-PERM",
                patient_name="Perm^Patient",
                accession="ACC-P",
            )
            assert storescu(cfg.dicom_port, tmp_path / "study").returncode == 0
            wait_for(lambda: len(raw_links(cfg.datadir)) == len(files), what="raw/ links")
            time.sleep(1.5)  # the arrival quiet period
            assert run_bin("detectStudyArrival", config=cfg_path).returncode == 0
            wait_for(lambda: cfg.paths.incoming_list.exists(), what="the incoming list")
            settled = time.time() - 120
            for j in cfg.paths.raw.glob("*/*.json"):
                os.utime(j, (settled, settled))
            r = run_bin("populateIncoming", config=cfg_path)
            assert r.returncode == 0, r.stderr
        finally:
            for program in ("storectl", "processSingleFile"):
                run_bin(program, "stop", config=cfg_path)
    finally:
        os.umask(old)

    assert any(cfg.paths.quarantine.iterdir())
    assert any(cfg.paths.tracker_db.parent.iterdir())
    found = subprocess.run(
        ["find", str(cfg.datadir), "-perm", "/o+rwx", "-not", "-type", "l"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert found == []
    series_json = list(cfg.paths.raw.glob("*/*.json"))
    assert series_json
    assert {stat.S_IMODE(p.stat().st_mode) for p in series_json} == {0o640}
    assert stat.S_IMODE(cfg.datadir.stat().st_mode) == 0o750
    for p in cfg.paths.archive.glob("*/*"):
        assert stat.S_IMODE(p.stat().st_mode) == 0o640

    # The warning of check-config and status when DATADIR is opened to others.
    cfg.datadir.chmod(0o755)
    r = run_bin("fiona", "check-config", config=cfg_path)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("open to others") == 1
    r = run_bin("fiona", "status", config=cfg_path)
    assert r.stdout.count("open to others") == 1
