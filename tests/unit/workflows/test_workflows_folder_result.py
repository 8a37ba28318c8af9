"""A stream whose destination is a folder: runOneJob's pass (in-process) files the derived
series under <outbox>/<project>/workflows/<study>/ (there is no participant), and output.json
goes to the local tracker."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pydicom
import pytest

from fionagw.config import load_config
from fionagw.tracking.factory import open_tracker
from fionagw.workflows.jobs import JobList
from fionagw.workflows.triggers import launch
from fionagw.workflows.worker import run_queue
from support.site import write_config
from support.synth import standard_mr_study

pytestmark = pytest.mark.slow  # a Python subprocess per step

DERIVE = r"""
import json, pathlib, sys
import pydicom
from pydicom.uid import generate_uid
src, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
ds = pydicom.dcmread(next(p for p in sorted(src.rglob("*")) if p.is_file()))
ds.SeriesInstanceUID, ds.SOPInstanceUID = generate_uid(), generate_uid()
ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
ds.save_as(out / "derived.dcm")
(out / "output.json").write_text(json.dumps({"ok": True}))
"""


def test_folder_destination(tmp_path: Path) -> None:
    script = tmp_path / "derive.py"
    script.write_text(DERIVE)
    outbox = tmp_path / "outbox"
    config = write_config(
        tmp_path,
        destinations={"research-folder": {"type": "folder", "path": str(outbox)}},
        Streams=[
            {
                "name": "derive",
                "trigger": {"project": "ALPHA"},
                "destination": "research-folder",
                "trigger-study": [
                    {
                        "type": "exec",
                        "cmd": [sys.executable, str(script), "@PATH@", "@WorkflowsFolder@"],
                    }
                ],
            }
        ],
    )
    cfg = load_config(config)
    cfg.paths.create()
    [f] = standard_mr_study(tmp_path / "mr", "SIEMENS", n_per_series=1, seed=2)[:1]
    ds = pydicom.dcmread(f, stop_before_pixels=True)
    folder = cfg.paths.raw_series_dir(ds.StudyInstanceUID, ds.SeriesInstanceUID)
    folder.mkdir(parents=True)
    (folder / ds.SOPInstanceUID).symlink_to(f)
    [job] = launch(cfg, "derive", [ds.StudyInstanceUID], user="test")
    report = run_queue(cfg)
    assert report.done == [job.job_number], JobList(cfg.paths.workflow_jobs).get(job.job_number)
    [sent] = list((outbox / "ALPHA" / "workflows" / ds.StudyInstanceUID).rglob("*.dcm"))
    assert pydicom.dcmread(sent).SeriesInstanceUID != ds.SeriesInstanceUID
    tracker = open_tracker(cfg)
    try:
        [out] = tracker.workflow_outputs(ds.StudyInstanceUID)
    finally:
        tracker.close()
    assert json.loads(out.workflow_output) == {"ok": True}
