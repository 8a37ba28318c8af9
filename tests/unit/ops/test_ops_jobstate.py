"""Job run records: each cron job's outcome, duration and summary, read back by last_run."""

from __future__ import annotations

import errno
from pathlib import Path

from fionagw.config import load_config
from fionagw.ops.jobstate import job_run, last_run
from support.site import write_config


def test_job_run_records_outcomes(tmp_path: Path) -> None:
    cfg = load_config(write_config(tmp_path))
    with job_run(cfg, "sendFiles") as run:
        run.summary = "3 files sent"
    assert (r := last_run(cfg, "sendFiles")) and r.ok and r.summary == "3 files sent"
    try:
        with job_run(cfg, "sendFiles"):
            raise OSError(errno.ENOSPC, "No space left on device", "/data/ZQXPHI")
    except OSError:
        pass
    assert (r := last_run(cfg, "sendFiles")) and not r.ok and "ENOSPC" in r.summary
    assert "ZQXPHI" not in r.summary  # a file name may hold data: the summary is POSTed
    assert (cfg.paths.pids / "sendFiles.last.json").exists()
