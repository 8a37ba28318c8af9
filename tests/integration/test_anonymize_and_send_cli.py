"""bin/anonymizeAndSend as cron runs it: a study sent from a bare environment, a second run
silent, a bad destination configuration reported in one line, a research PACS (Orthanc) that is
down retried with backoff until it is up, and a release-check failure tried only once."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pydicom
import pytest

from fionagw.config import load_config
from fionagw.tracking.local import LocalTracker
from fionagw.transfers.queue import RequestQueue
from support.orthanc_peer import OrthancPeer
from support.site import BIN, run_bin, write_config
from support.transfer_site import (
    PROJECTS,
    hide_phi_in_private_sequence,
    ingest,
    mr_study,
    request,
    sent_files,
    transfer_site,
)


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


PACS_PROJECT = """\
  PACS:
    participant_id: '^P[0-9]{3}$'
    destination: orthanc
    deid: {mode: keyed}
"""


@pytest.mark.slow
def test_pacs_down_is_retried_with_backoff_until_up_and_a_release_failure_is_tried_once(
    tmp_path: Path,
) -> None:
    orthanc = OrthancPeer(tmp_path / "orthanc")  # not started: the research PACS is down
    projects = tmp_path / "projects.yml"
    projects.write_text(PROJECTS + PACS_PROJECT)
    config = write_config(
        tmp_path,
        tracker={"projects_file": str(projects)},
        destinations={
            "orthanc": {
                "type": "dicom",
                "host": "127.0.0.1",
                "port": orthanc.dicom_port,
                "called_aetitle": orthanc.aet,
            },
            "research-folder": {"type": "folder", "path": str(tmp_path / "outbox")},
        },
        sending={"max_attempts": 4, "retry_base_seconds": 6, "retry_max_seconds": 60},
    )
    cfg = load_config(config)
    cfg.paths.create()
    tracker = LocalTracker(cfg.paths.tracker_db, projects)
    try:
        study = ingest(cfg, mr_study(tmp_path / "a", n=1))
        # filed ten minutes ago (a series newer than the transfer's minute would be sent again)
        for series in cfg.paths.raw_study_dir(study).glob("*.json"):
            os.utime(series, (time.time() - 600, time.time() - 600))
        req = request(cfg, tracker, study, "PACS", "P001")
        files = mr_study(tmp_path / "b", n=1, study_uid="1.2.826.0.1.3680043.9.7777.2")
        hide_phi_in_private_sequence(files[0])
        leaky = request(cfg, tracker, ingest(cfg, files), "KEEPPRIV", "K001")

        first = _cron_run(config)
        assert first.returncode == 0, first.stderr
        assert "1 failed, 1 to retry" in first.stdout, first.stdout
        assert req.exists() and not leaky.exists()
        next_try = RequestQueue(cfg.paths).state(req).next_try
        second = _cron_run(config)  # within the backoff: not tried, and the failure neither
        assert time.time() < next_try, "the machine is too slow for this backoff"
        assert "1 waiting for their retry time" in second.stdout, second.stdout
        orthanc.start()
        time.sleep(max(0.0, next_try - time.time() + 0.2))
        third = _cron_run(config)
        assert "1 sent" in third.stdout, third.stdout + third.stderr
        assert len(orthanc.study_uids()) == 1 and study not in orthanc.study_uids()
        for _ in range(2):  # more cron minutes: createTransferRequest holds the failed one
            assert run_bin("createTransferRequest", config=config).returncode == 0
            assert _cron_run(config).stdout == ""

        outcomes = {
            e["request"]: e["outcome"]
            for e in (json.loads(p.read_text()) for p in sorted(cfg.paths.events.glob("*-tr*")))
            if e["outcome"] != "deferred"
        }
        assert outcomes == {req.name: "sent", leaky.name: "failed"}
        status = run_bin("fiona", "status", config=config).stdout
        assert "requests failed 1 (release_check 1); cancelled 0" in status, status
        assert "attempts 3 (deferred 1, failed 1, sent 1)" in status, status
        assert "send failures 2 (release_check 1, send 1)" in status, status
    finally:
        tracker.close()
        orthanc.stop()


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
