"""Workflows end to end with real peers: dcmtk storescu sends a study to the stream's AE title,
detectStudyArrival queues the job, bin/runOneJob runs a container step (Podman, an image built
here FROM scratch with busybox) and an exec step, the derived series is C-STOREd to Orthanc in
the input's study and verified there, output.json lands in the tracker. An output that names a
foreign study is refused and nothing is sent."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest

from fionagw.config import SiteConfig, load_config
from fionagw.tracking.factory import open_tracker
from fionagw.workflows.jobs import JobList
from support.containers import build_image, containers_conf, podman_env
from support.site import run_bin, storescu, wait_for, write_config
from support.synth import standard_mr_study

pytestmark = pytest.mark.slow  # Orthanc, the daemons, podman

if shutil.which("podman") is None:  # tests/run installs it; say so rather than skip
    raise RuntimeError("podman is not installed: run ./tests/run, which installs it")

PROJECTS = """
projects:
  ALPHA:
    participant_id: '^ALPHA[0-9]{3}$'
    destination: research-pacs
"""
# The exec step: a derived series (new series and instance UIDs) of the first input image;
# with --study it names that study instead (the foreign-study case).
DERIVE = r"""
import pathlib, sys
import pydicom
from pydicom.uid import generate_uid
src, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
study = sys.argv[3] if len(sys.argv) > 3 else None
series = generate_uid()
for i, f in enumerate(sorted(p for p in src.rglob("*") if p.is_file())[:2]):
    ds = pydicom.dcmread(f)
    ds.SeriesInstanceUID, ds.SOPInstanceUID = series, generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.SeriesDescription, ds.SeriesNumber = "QC derived", 900
    if study:
        ds.StudyInstanceUID = study
    ds.save_as(out / f"derived{i}.dcm")
"""
# The container step: counts the input it sees read-only and writes output.json
QC_SCRIPT = """#!/bin/sh
n=$(find "$1" -type f | wc -l)
if touch "$1/x" 2>/dev/null; then ro=false; else ro=true; fi
echo "{\\"images\\": $n, \\"study\\": \\"$3\\", \\"input_read_only\\": $ro, \\"mode\\": \\"$MODE\\"}" > "$2/output.json"
echo "qc: $n images"
"""


def _stream(name: str, called: str, steps: list[dict]) -> dict:
    return {
        "name": name,
        "description": f"{name} test stream",
        "trigger": {"AETitleCalled": f"^{called}$", "project": "ALPHA"},
        "trigger-study": steps,
    }


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    base = tmp_path_factory.mktemp("images")
    conf = containers_conf(base)
    tag = build_image(base, "localhost/fionagw-qc:1", {"/bin/qc": QC_SCRIPT}, podman_env(conf))
    yield conf, tag


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, orthanc_server, images
) -> Iterator[SiteConfig]:  # type: ignore[no-untyped-def]
    """One gateway (daemons) for the module; each test gets an empty Orthanc and job list."""
    conf, tag = images
    tmp_path = tmp_path_factory.mktemp("gateway")
    old = os.environ.get("CONTAINERS_CONF")
    os.environ["CONTAINERS_CONF"] = str(conf)
    derive = tmp_path / "derive.py"
    derive.write_text(DERIVE)
    projects = tmp_path / "projects.yml"
    projects.write_text(PROJECTS)
    qc = {
        "type": "container",
        "image": tag,
        "cmd": ["/bin/qc", "@PATH@", "@WorkflowsFolder@", "@StudyInstanceUID@"],
        "environment": {"MODE": "fast"},
    }
    exec_step = {
        "type": "exec",
        "cmd": [sys.executable, str(derive), "@PATH@", "@WorkflowsFolder@"],
    }
    foreign = {
        "type": "exec",
        "cmd": [
            sys.executable,
            str(derive),
            "@PATH@",
            "@WorkflowsFolder@",
            "1.2.826.0.1.3680043.99.1",
        ],
    }
    config = write_config(
        tmp_path,
        arrival={"quiet_seconds": 1},
        tracker={"projects_file": str(projects)},
        destinations={
            "research-pacs": {
                "type": "dicom",
                "host": "127.0.0.1",
                "port": orthanc_server.dicom_port,
                "called_aetitle": orthanc_server.aet,
                "calling_aetitle": "FIONA",
            }
        },
        workflows={"runtime": "podman", "limits": {"memory_mb": 64, "time_limit_s": 120}},
        Streams=[
            _stream("qc", "MYALGORITHM", [qc, exec_step]),
            _stream("foreign", "FOREIGN", [foreign]),
        ],
    )
    for program in ("processSingleFile", "storectl"):
        r = run_bin(program, "start", config=config)
        assert r.returncode == 0, r.stderr + r.stdout
    yield load_config(config)
    for program in ("storectl", "processSingleFile"):
        run_bin(program, "stop", config=config)
    if old is None:
        os.environ.pop("CONTAINERS_CONF", None)
    else:
        os.environ["CONTAINERS_CONF"] = old


@pytest.fixture
def site(gateway: SiteConfig, orthanc) -> SiteConfig:  # type: ignore[no-untyped-def]
    gateway.paths.workflow_jobs.unlink(missing_ok=True)
    return gateway


def _arrive(cfg: SiteConfig, tmp_path: Path, called: str, seed: int) -> tuple[str, int]:
    files = standard_mr_study(tmp_path / f"mr{seed}", "SIEMENS", n_per_series=2, seed=seed)
    study = str(pydicom.dcmread(files[0]).StudyInstanceUID)
    assert storescu(cfg.dicom_port, *files, aet="RESEARCHPACS", aec=called).returncode == 0
    raw = cfg.paths.raw_study_dir(study)
    wait_for(
        lambda: sum(1 for p in raw.glob("*/*") if p.is_symlink()) >= len(files),
        what="every image classified",
    )
    time.sleep(2.5)  # the classifier's write-behind flush, then the quiet period
    r = run_bin("detectStudyArrival", config=cfg.config_file)
    assert r.returncode == 0, r.stderr
    return study, len(files)


def test_arrival_runs_steps_results_reach_orthanc_and_a_foreign_study_is_refused(
    site: SiteConfig, orthanc, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    cfg = site
    study, n_images = _arrive(cfg, tmp_path, "MYALGORITHM", 3)
    jobs = JobList(cfg.paths.workflow_jobs).all()
    assert [(j.stream, j.study_uids, j.status, j.called) for j in jobs] == [
        ("qc", [study], "queued", "MYALGORITHM")
    ]
    started = time.monotonic()
    r = run_bin("runOneJob", config=cfg.config_file, timeout=300)
    took = time.monotonic() - started
    assert r.returncode == 0, r.stderr
    job = JobList(cfg.paths.workflow_jobs).get(jobs[0].job_number)
    assert job.status == "done", (job.reason, r.stdout)
    assert job.exit_code == 0 and "verified 2" in job.sent, job.sent
    print(f"runOneJob: one job, container + exec step, send and verify: {took:.1f} s")
    # the derived series is in Orthanc, in the input's study, with new series UIDs
    assert orthanc.study_uids() == [study]
    series = [orthanc.get(f"/series/{s}")["MainDicomTags"] for s in orthanc.series()]
    assert [s["SeriesDescription"] for s in series] == ["QC derived"]
    inputs = {p.name for p in cfg.paths.raw_study_dir(study).iterdir() if p.is_dir()}
    assert series[0]["SeriesInstanceUID"] not in inputs
    # output.json of the container step: it saw every image, read-only, and its environment
    tracker = open_tracker(cfg)
    try:
        outputs = tracker.workflow_outputs(study)
    finally:
        tracker.close()
    assert len(outputs) == 1
    assert json.loads(outputs[0].workflow_output) == {
        "images": n_images,
        "input_read_only": True,
        "mode": "fast",
        "study": study,
    }
    log = (cfg.paths.workflow_job_dir("ALPHA", job.ror_folder) / "job.log").read_text()
    assert f"qc: {n_images} images" in log
    status = run_bin("fiona", "workflow", "status", str(job.job_number), config=cfg.config_file)
    assert status.returncode == 0 and " done " in status.stdout, status

    # a stream whose output names a foreign study, run by hand on the same study: refused,
    # and Orthanc still holds only the derived series above
    r = run_bin("fiona", "workflow", "run", "foreign", study, config=cfg.config_file)
    assert r.returncode == 0, r.stderr
    r = run_bin("runOneJob", config=cfg.config_file, timeout=300)
    assert r.returncode == 0, r.stderr
    foreign = JobList(cfg.paths.workflow_jobs).all()[-1]
    assert foreign.stream == "foreign" and foreign.status == "failed"
    assert "output refused" in foreign.reason and "is not an input study" in foreign.reason
    assert orthanc.study_uids() == [study] and len(orthanc.instances()) == 2
