"""Workflows limits with real containers (Podman, an image built here FROM scratch): 4 jobs
queued with max_concurrent 2 run 2 at a time; a cancelled job's container stops; a step that
allocates over its memory limit is killed and the job fails with that reason (the same step
under a larger limit succeeds); a container has no network but loopback and the CPU and memory
limits it was given; an exec step over its time limit is stopped; without a runtime the job says so."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest

from fionagw.config import SiteConfig, load_config
from fionagw.workflows.jobs import JobList
from fionagw.workflows.triggers import launch
from support.containers import build_image, containers_conf, podman_env
from support.site import BIN, run_bin, wait_for, write_config
from support.synth import standard_mr_study

pytestmark = pytest.mark.slow  # podman

# what a step sees of its limits: network interfaces, CPU quota/period, memory limit (cgroup v1)
CONFINED = (
    "ls /sys/class/net; cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us"
    " /sys/fs/cgroup/memory/memory.limit_in_bytes"
)
HOG = """#!/bin/sh
x=$(head -c 60000000 /dev/zero | tr '\\0' a)
echo "allocated ${#x} bytes"
"""


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    base = tmp_path_factory.mktemp("images")
    conf = containers_conf(base)
    yield conf, build_image(base, "localhost/fionagw-hog:1", {"/bin/hog": HOG}, podman_env(conf))


def _container(image: str, *cmd: str) -> dict:
    return {"type": "container", "image": image, "cmd": list(cmd)}


def _stream(name: str, steps: list[dict], **limits: object) -> dict:
    return {
        "name": name,
        "trigger": {"AETitleCalled": "^NEVER$"},
        "trigger-study": steps,
        "limits": limits,
    }


@pytest.fixture
def site(tmp_path: Path, image, monkeypatch) -> SiteConfig:  # type: ignore[no-untyped-def]
    conf, tag = image
    monkeypatch.setenv("CONTAINERS_CONF", str(conf))
    config = write_config(
        tmp_path,
        workflows={"runtime": "podman", "max_concurrent": 2},
        Streams=[
            _stream("nap", [_container(tag, "sleep", "2")]),
            _stream("long", [_container(tag, "sleep", "60")]),
            _stream("long-exec", [{"type": "exec", "cmd": ["sleep", "60"]}]),
            _stream("hog", [_container(tag, "/bin/hog")], memory_mb=32),
            _stream("roomy", [_container(tag, "/bin/hog")], memory_mb=512),
            _stream(
                "confined",
                [_container(tag, "/bin/sh", "-c", CONFINED)],
                cpus=0.5,
                memory_mb=48,
            ),
            _stream("missing-image", [_container("localhost/not-built:1", "true")]),
            _stream("slow-exec", [{"type": "exec", "cmd": ["sleep", "30"]}], time_limit_s=2),
        ],
    )
    cfg = load_config(config)
    # a study in raw/ as processSingleFile files it (links to the received files)
    files = standard_mr_study(tmp_path / "mr", "SIEMENS", n_per_series=1, seed=7)[:3]
    for f in files:
        ds = pydicom.dcmread(f, stop_before_pixels=True)
        folder = cfg.paths.raw_series_dir(ds.StudyInstanceUID, ds.SeriesInstanceUID)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / ds.SOPInstanceUID).symlink_to(f)
    cfg.paths.create()
    return cfg


def _study(cfg: SiteConfig) -> str:
    return next(cfg.paths.raw.iterdir()).name


def _queue(cfg: SiteConfig, stream: str, times: int = 1) -> list[int]:
    """Queue jobs as `fiona workflow run` does (in-process: the CLI has its own tests)."""
    return [
        job.job_number
        for _ in range(times)
        for job in launch(cfg, stream, [_study(cfg)], user="test")
    ]


def _running_containers() -> list[str]:
    r = subprocess.run(
        ["podman", "ps", "--filter", "name=fionagw-job-", "--format", "{{.Names}}"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return r.stdout.split()


def test_four_jobs_with_limit_two_run_two_at_a_time(site: SiteConfig) -> None:
    numbers = _queue(site, "nap", 4)
    seen: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            seen.append(len(_running_containers()))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.monotonic()
    try:
        r = run_bin("runOneJob", config=site.config_file, timeout=300)
    finally:
        stop.set()
        sampler.join()
    took = time.monotonic() - started
    assert r.returncode == 0, r.stderr
    assert "4 done, 0 failed (at most 2 at once)" in r.stdout, r.stdout
    jobs = {j.job_number: j for j in JobList(site.paths.workflow_jobs).all()}
    assert all(jobs[n].status == "done" for n in numbers)
    assert max(seen) == 2, seen  # podman itself never ran more than two
    assert took >= 4.0, took  # two rounds of 2 s
    print(f"4 jobs of 2 s, 2 at a time: {took:.1f} s; containers seen at once: {max(seen)}")


def test_cancel_stops_the_running_container_and_exec_step(site: SiteConfig) -> None:
    [number] = _queue(site, "long")
    [exec_number] = _queue(site, "long-exec")  # runs beside it (max_concurrent 2)
    runner = subprocess.Popen(
        [str(BIN / "runOneJob"), "--config", str(site.config_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    try:
        wait_for(lambda: f"fionagw-job-{number}" in _running_containers(), 60, "the container")
        t0 = time.monotonic()
        r = run_bin("fiona", "workflow", "cancel", str(number), config=site.config_file)
        assert r.returncode == 0 and "stopping" in r.stdout, r
        wait_for(lambda: f"fionagw-job-{number}" not in _running_containers(), 20, "container gone")
        gone = time.monotonic() - t0
        assert (
            run_bin(
                "fiona", "workflow", "cancel", str(exec_number), config=site.config_file
            ).returncode
            == 0
        )
        out, err = runner.communicate(timeout=60)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 0, err
    job = JobList(site.paths.workflow_jobs).get(number)
    assert job.status == "cancelled" and job.reason == "cancelled", job
    exec_job = JobList(site.paths.workflow_jobs).get(exec_number)
    assert exec_job.status == "cancelled" and exec_job.exit_code == -9, exec_job  # SIGKILLed
    assert gone < 30, gone  # the CLI's own start-up included (a loaded machine is slow)
    print(f"cancel -> container gone in {gone:.1f} s")
    again = run_bin("fiona", "workflow", "cancel", str(number), config=site.config_file)
    assert again.returncode == 1 and "already ended (cancelled)" in again.stderr


def test_step_over_its_memory_limit_is_killed_and_the_job_fails(site: SiteConfig) -> None:
    hog, roomy, confined, missing, slow = (
        (_queue(site, "hog") + _queue(site, "roomy") + _queue(site, "confined"))
        + _queue(site, "missing-image")
        + _queue(site, "slow-exec")
    )
    r = run_bin("runOneJob", config=site.config_file, timeout=300)
    assert r.returncode == 0, r.stderr
    jobs = {j.job_number: j for j in JobList(site.paths.workflow_jobs).all()}
    assert jobs[hog].status == "failed" and jobs[hog].exit_code == 137
    assert "out of memory, over its limit of 32 MB" in jobs[hog].reason, jobs[hog].reason
    # the same step with 512 MB allocates its 60 MB: the limit is what killed it
    assert jobs[roomy].status == "done", jobs[roomy].reason
    log = (site.paths.workflow_job_dir("", jobs[roomy].ror_folder) / "job.log").read_text()
    assert "allocated 60000000 bytes" in log
    # no network but loopback, half a CPU, 48 MB: what the container itself sees
    assert jobs[confined].status == "done", jobs[confined].reason
    log = (site.paths.workflow_job_dir("", jobs[confined].ror_folder) / "job.log").read_text()
    seen = log.split("== step 1 (container localhost/fionagw-hog:1)\n")[1].split("== step 1:")[0]
    assert seen.split() == ["lo", "50000", "100000", str(48 << 20)], seen
    # an image that is not there is named, and never pulled
    assert jobs[missing].status == "failed"
    assert jobs[missing].reason == (
        "step 1: image localhost/not-built:1 is not in podman's local images (never pulled:"
        " build or load it)"
    ), jobs[missing].reason
    # an exec step over its time limit is stopped
    assert jobs[slow].status == "failed", jobs[slow]
    assert "time limit of 2 s exceeded" in jobs[slow].reason, jobs[slow].reason


def test_no_container_runtime_is_a_clear_job_failure(site: SiteConfig, tmp_path: Path) -> None:
    [number] = _queue(site, "nap")
    only_python = tmp_path / "path"
    only_python.mkdir()
    (only_python / "python3").symlink_to(sys.executable)
    # a PATH with neither podman nor docker on it
    r = run_bin("runOneJob", config=site.config_file, env={"PATH": str(only_python)})
    assert r.returncode == 0, r.stderr
    job = JobList(site.paths.workflow_jobs).get(number)
    assert job.status == "failed"
    assert job.reason == (
        "step 1: no container runtime works (install Podman or Docker): podman: not installed"
    ), job.reason
