"""`fiona cron install|show|remove` with Debian's crontab; every installed line runs under
`env -i`."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import filelock
import pytest

from fionagw.config import load_config
from fionagw.ops.crontab import job_lines, render
from support.site import run_bin, write_config

pytestmark = pytest.mark.slow

OTHER = "# someone else's job\n17 4 * * * /usr/bin/true other-job\n"


def crontab_l() -> str:
    r = subprocess.run(["crontab", "-l"], capture_output=True, text=True)
    return r.stdout if r.returncode == 0 else ""


@pytest.fixture
def user_crontab() -> Iterator[None]:
    """The current user's crontab, restored afterwards (the test edits it for real).

    A machine-wide lock keeps two test runs on one machine from editing it at once.
    """
    assert shutil.which("crontab"), (
        "Debian's cron is not installed: run ./tests/run, which installs it"
    )
    with filelock.FileLock(f"/tmp/fionagw-crontab-test-{os.geteuid()}.lock", timeout=600):
        saved = subprocess.run(["crontab", "-l"], capture_output=True, text=True)
        subprocess.run(["crontab", "-"], input=OTHER, text=True, check=True)
        try:
            yield
        finally:
            if saved.returncode == 0:
                subprocess.run(["crontab", "-"], input=saved.stdout, text=True, check=True)
            else:
                subprocess.run(["crontab", "-r"], capture_output=True)


def test_cron_install_runs_bare_and_remove_keeps_other_lines(
    tmp_path: Path, user_crontab: None
) -> None:
    config = write_config(tmp_path)
    cfg = load_config(config)
    r = run_bin("fiona", "cron", "install", config=config)
    assert r.returncode == 0, r.stdout + r.stderr
    again = run_bin("fiona", "cron", "install", config=config)  # idempotent: no second copy
    assert again.returncode == 0
    installed = crontab_l()
    assert "17 4 * * * /usr/bin/true other-job" in installed
    expected = job_lines(render(config))
    got = job_lines(installed)
    for line in expected:
        assert sum(g.command == line.command and g.schedule == line.schedule for g in got) == 1, (
            line
        )
    show = run_bin("fiona", "cron", "show", config=config)
    assert show.returncode == 0 and "lines installed" in show.stdout

    # Every line's command, as cron would run it: bare environment, no sleep, no redirection.
    try:
        for line in job_lines(installed):
            if "other-job" in line.command:
                continue
            done = subprocess.run(
                ["env", "-i", "/bin/sh", "-c", line.bare_command],
                capture_output=True,
                text=True,
                timeout=180,
                cwd="/",
            )
            assert done.returncode == 0, f"{line.bare_command}: {done.stdout} {done.stderr}"
        assert (cfg.paths.pids / "heartbeat.last.json").exists()
    finally:
        run_bin("storectl", "stop", config=config)
        run_bin("processSingleFile", "stop", config=config)

    r = run_bin("fiona", "cron", "remove", config=config)
    assert r.returncode == 0, r.stdout + r.stderr
    left = crontab_l()
    assert left.strip() == OTHER.strip()
    r = run_bin("fiona", "cron", "remove", config=config)
    assert r.returncode == 0 and "were not in" in r.stdout
