"""The job list (FIONA's workflow_joblist.jobs lines kept), triggers, placeholders, and the
output check that refuses foreign studies and reused series UIDs."""

from __future__ import annotations

import json
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import generate_uid

from fionagw.config import load_config
from fionagw.workflows.jobs import JobError, JobList, job_folder
from fionagw.workflows.results import OutputRefused, check_output, index_input
from fionagw.workflows.runner import expand
from fionagw.workflows.runtime import RuntimeMissing, find_runtime
from fionagw.workflows.triggers import on_arrival
from support.site import write_config
from support.synth import standard_mr_study

FIONA_LINE = {
    "type": "ror",
    "project": "ALPHA",
    "job_number": 7,
    "image": "mriqc:21.0.0rc2",
    "user": "hauke",
    "date": "2021-03-01",
    "ROR_CONT_OPTIONS": "-e X=1",
}


def test_fiona_lines_are_kept_and_new_jobs_numbered_after_them(tmp_path: Path) -> None:
    path = tmp_path / "workflow_joblist.jobs"
    path.write_text(json.dumps(FIONA_LINE) + "\n")
    jobs = JobList(path)
    from fionagw.workflows.jobs import Job

    job = jobs.add(lambda n: Job(n, "ALPHA", "qc", ["1.2.3"], ror_folder=job_folder(n, "a/b:1")))
    assert job is not None and job.job_number == 8 and job.ror_folder == "datajob_8_a_b_1_"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert {k: lines[0][k] for k in FIONA_LINE} == FIONA_LINE  # FIONA's keys survive a rewrite
    assert lines[1]["status"] == "queued" and lines[1]["type"] == "stream"
    claimed = jobs.claim(4242)
    assert claimed is not None and claimed.job_number == 7  # the oldest queued first
    assert jobs.get(7).status == "running" and jobs.get(7).runner_pid == 4242
    with pytest.raises(JobError, match="no workflow job 99"):
        jobs.get(99)


def test_a_broken_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "workflow_joblist.jobs"
    path.write_text(json.dumps(FIONA_LINE) + "\n{not json\n")
    with pytest.raises(JobError, match=r"workflow_joblist.jobs: line 2: not a job"):
        JobList(path).all()


def test_placeholders() -> None:
    values = {"@PATH@": "/input", "@StudyInstanceUID@": "1.2.3", "@DESCRIPTION@": "QC"}
    assert expand(("--in=@PATH@", "@StudyInstanceUID@", "@DESCRIPTION@ run"), values) == [
        "--in=/input",
        "1.2.3",
        "QC run",
    ]


def _site(tmp_path: Path):  # type: ignore[no-untyped-def]
    def stream(name: str, trigger: dict, kind: str = "trigger-study") -> dict:
        return {"name": name, "trigger": trigger, kind: [{"type": "exec", "cmd": ["true"]}]}

    return load_config(
        write_config(
            tmp_path,
            Streams=[
                stream("by-ae", {"AETitleCalled": "^MYALGORITHM$", "AETitleCaller": "^PACS"}),
                stream(
                    "t1-series",
                    {"AETitleCalled": "^MYALGORITHM$", "ClassifyType": "^T1$"},
                    "trigger-series",
                ),
                stream("other", {"AETitleCalled": "^OTHER$"}),
            ],
        )
    )


def test_arrival_triggers_match_ae_titles_and_classify_types(tmp_path: Path) -> None:
    cfg = _site(tmp_path)
    series = [
        {"uid": "1.2.3.1", "classify_type": ["T1", "MR"]},
        {"uid": "1.2.3.2", "classify_type": ["T2"]},
    ]
    jobs = on_arrival(cfg, "1.2.3", "MYALGORITHM", "PACS1", series)
    assert [(j.stream, j.series_uid, j.trigger) for j in jobs] == [
        ("by-ae", "", "study"),
        ("t1-series", "1.2.3.1", "series"),
    ]
    assert on_arrival(cfg, "1.2.3", "MYALGORITHM", "PACS1", series) == []  # seen again: no twin
    assert [j.stream for j in on_arrival(cfg, "1.2.4", "MYALGORITHM", "SCANNER", series)] == [
        "t1-series"  # the calling AE does not match by-ae
    ]


def _derived(src: Path, out: Path, **change: str) -> Path:
    ds = pydicom.dcmread(src)
    ds.SeriesInstanceUID, ds.SOPInstanceUID = generate_uid(), generate_uid()
    for key, value in change.items():
        setattr(ds, key, value)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    path = out / f"{ds.SOPInstanceUID}.dcm"
    ds.save_as(path)
    return path


def test_output_check(tmp_path: Path) -> None:
    files = standard_mr_study(tmp_path / "mr", "SIEMENS", n_per_series=1, seed=5)[:2]
    inp, out = tmp_path / "input", tmp_path / "output"
    out.mkdir()
    for f in files:
        ds = pydicom.dcmread(f, stop_before_pixels=True)
        folder = inp / ds.StudyInstanceUID / ds.SeriesInstanceUID
        folder.mkdir(parents=True, exist_ok=True)
        (folder / ds.SOPInstanceUID).symlink_to(f)
    (out / "output.json").write_text("{}")  # not DICOM: not checked
    good = _derived(files[0], out)
    [found] = check_output(out, index_input(inp))
    assert found.path == good
    first = pydicom.dcmread(files[0])
    _derived(files[0], out, StudyInstanceUID="1.2.826.0.1.3680043.99.2")
    with pytest.raises(OutputRefused) as info:
        check_output(out, index_input(inp))
    assert "StudyInstanceUID 1.2.826.0.1.3680043.99.2 is not an input study" in str(info.value)
    assert ".dcm" not in str(info.value)  # files are named by place and SOP UID, not by name
    for p in out.glob("*.dcm"):
        p.unlink()
    _derived(files[0], out, SeriesInstanceUID=str(first.SeriesInstanceUID))
    with pytest.raises(OutputRefused, match="a derived series needs a new SeriesInstanceUID"):
        check_output(out, index_input(inp))


def test_no_runtime_on_path_names_what_was_tried(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeMissing) as info:
        find_runtime("auto")
    assert str(info.value) == (
        "no container runtime works (install Podman or Docker): podman: not installed; "
        "docker: not installed"
    )


def test_a_broken_job_list_does_not_stop_the_arrival(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    from fionagw.workflows.triggers import queue_for_arrival

    cfg = _site(tmp_path)
    cfg.paths.workflows.mkdir(parents=True)
    cfg.paths.workflow_jobs.write_text("{broken\n")
    queue_for_arrival(cfg, "1.2.3", "MYALGORITHM", "PACS1", [{"uid": "1.2.3.1"}])  # no raise
    [record] = [
        r for r in caplog.records if r.getMessage() == "workflow jobs of an arrival not queued"
    ]
    assert "line 1: not a job" in record.error  # type: ignore[attr-defined]


def test_a_job_whose_runner_is_gone_is_marked_interrupted(tmp_path: Path) -> None:
    from fionagw.workflows.jobs import FAILED
    from fionagw.workflows.worker import run_queue

    cfg = _site(tmp_path)
    cfg.paths.create()
    [job] = on_arrival(cfg, "1.2.3", "OTHER", "X", [])
    jobs = JobList(cfg.paths.workflow_jobs)
    jobs.claim(2**22 + 12345)  # a pid that is not alive (above the default pid_max)
    report = run_queue(cfg)
    assert report.interrupted == [job.job_number]
    after = jobs.get(job.job_number)
    assert after.status == FAILED and after.reason.startswith("interrupted")
