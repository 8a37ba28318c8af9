"""bin/anonymizeAndSend as cron runs it: a study sent from a bare environment, a second run
silent, and a bad destination configuration reported in one line."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pydicom
import pytest

from support.site import BIN, run_bin, write_config
from support.transfer_site import ingest, mr_study, request, sent_files, transfer_site


@pytest.fixture
def site(tmp_path: Path):  # type: ignore[no-untyped-def]
    yield from transfer_site(tmp_path)


@pytest.mark.slow
def test_job_from_cron_environment(site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg, tracker, outbox, config = site
    study = ingest(cfg, mr_study(tmp_path, n=1))
    request(cfg, tracker, study, "FIONAPROJ", "F001")
    result = _cron_run(config)
    assert result.returncode == 0, result.stderr
    assert "1 sent" in result.stdout
    out = sent_files(outbox)
    assert out and all(
        pydicom.dcmread(p).StudyInstanceUID.startswith("1.3.6.1.4.1.45037.") for p in out
    )
    # a second run has nothing to do and says nothing
    again = _cron_run(config)
    assert again.returncode == 0 and again.stdout == ""


def test_bad_destination_config_is_one_line(site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg, tracker, outbox, _ = site
    (tmp_path / "bad").mkdir()
    bad = write_config(tmp_path / "bad", destinations={"x": {"type": "carrier-pigeon"}})
    result = run_bin("anonymizeAndSend", config=bad)
    assert result.returncode == 1
    assert "destinations.x" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# --- helpers ---------------------------------------------------------------------------------


def _cron_run(config: Path) -> subprocess.CompletedProcess:
    """As cron runs it: a bare environment (env -i plus cron's PATH)."""
    return subprocess.run(
        [str(BIN / "anonymizeAndSend"), "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin"},
    )
