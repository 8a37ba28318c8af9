"""bin/detectStudyArrival and bin/removeOldEntries on sites filed in-process: a lock held by
another process, a broken series JSON, quarantine switched off for one site, old entries removed.

tests/integration/test_arrival_e2e.py covers the same with dcmtk storescu and the daemons."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fionagw.arrival import incoming
from fionagw.config import SiteConfig, load_config
from fionagw.ops.locks import lock_info
from support.arrival_site import age_jobs, arrival_mr_study, arrival_site, file_study, jobs
from support.site import ROOT, run_bin, write_config


@pytest.fixture
def site(tmp_path: Path) -> SiteConfig:
    return arrival_site(tmp_path)


@pytest.fixture
def mr_study(tmp_path: Path) -> Path:
    return arrival_mr_study(tmp_path)


@pytest.mark.slow
def test_lock_info_sees_another_process(site: SiteConfig) -> None:
    code = (
        "import sys, time; sys.path.insert(0, 'lib'); from fionagw.config import load_config; "
        "from fionagw.ops.locks import cron_lock; cfg = load_config(sys.argv[1]); "
        "lock = cron_lock(cfg, 'detectStudyArrival'); lock.__enter__(); print('held', flush=True); "
        "time.sleep(60)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(site.config_file)],
        cwd=ROOT,
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


@pytest.mark.slow
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


@pytest.mark.slow
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
