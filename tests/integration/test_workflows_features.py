"""A features-only stream: its features.json, and nothing else, goes to the suite's HTTPS
receiver (resumable protocol, bearer token, self-signed certificate), after the release check;
a features.json that carries the patient's name is refused and nothing leaves."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest

from fionagw.config import SiteConfig, load_config
from fionagw.ops import perms
from fionagw.workflows.jobs import JobList
from support.https_receiver import Receiver
from support.site import free_port, run_bin, write_config
from support.synth import standard_mr_study

pytestmark = pytest.mark.slow  # an HTTPS receiver process

# The exec step: features from the input, plus a derived DICOM file that must stay here.
# With "leak" it copies the patient's name into the features (what the release check stops).
FEATURES = r"""
import json, pathlib, sys
import pydicom
from pydicom.uid import generate_uid
src, out, mode = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3]
files = sorted(p for p in src.rglob("*") if p.is_file())
ds = pydicom.dcmread(files[0])
features = {"images": len(files), "rows": int(ds.Rows), "brain_volume_ml": 1234.5}
if mode == "leak":
    features["subject"] = str(ds.PatientName)
(out / "features.json").write_text(json.dumps(features))
ds.SeriesInstanceUID, ds.SOPInstanceUID = generate_uid(), generate_uid()
ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
ds.save_as(out / "segmentation.dcm")
"""


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    rx = Receiver(tmp_path / "receiver", free_port())
    rx.start()
    yield rx
    rx.stop()


@pytest.fixture
def site(tmp_path: Path, receiver: Receiver) -> SiteConfig:
    script = tmp_path / "features.py"
    script.write_text(FEATURES)
    token = tmp_path / "cloud.token"
    token.write_text(receiver.token + "\n")
    token.chmod(perms.SECRET_MODE)

    def stream(name: str, mode: str) -> dict:
        cmd = [sys.executable, str(script), "@PATH@", "@WorkflowsFolder@", mode]
        return {
            "name": name,
            "trigger": {"AETitleCalled": "^NEVER$"},
            "features_only": "cloud",
            "trigger-study": [{"type": "exec", "cmd": cmd}],
        }

    config = write_config(
        tmp_path,
        destinations={
            "cloud": {
                "type": "https",
                "url": receiver.url,
                "token_file": str(token),
                "ca_file": str(receiver.cert),
            }
        },
        Streams=[stream("features", "clean"), stream("leaky", "leak")],
    )
    cfg = load_config(config)
    files = standard_mr_study(
        tmp_path / "mr", "SIEMENS", n_per_series=1, seed=11, patient_name="Nordmann^Kari"
    )[:2]
    for f in files:
        ds = pydicom.dcmread(f, stop_before_pixels=True)
        folder = cfg.paths.raw_series_dir(ds.StudyInstanceUID, ds.SeriesInstanceUID)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / ds.SOPInstanceUID).symlink_to(f)
    cfg.paths.create()
    return cfg


def test_only_features_json_leaves_and_an_identifier_in_it_is_refused(
    site: SiteConfig, receiver: Receiver
) -> None:
    study = next(site.paths.raw.iterdir()).name
    for stream in ("features", "leaky"):
        r = run_bin("fiona", "workflow", "run", stream, study, config=site.config_file)
        assert r.returncode == 0, r.stderr
    r = run_bin("runOneJob", config=site.config_file, timeout=120)
    assert r.returncode == 0, r.stderr
    good, leaky = JobList(site.paths.workflow_jobs).all()
    assert good.status == "done", good.reason
    delivered = sorted(p.name for p in receiver.files.iterdir() if not p.name.startswith("."))
    assert delivered == [f"features_job{good.job_number}_features.json"]  # nothing else left
    features = json.loads((receiver.files / delivered[0]).read_text())
    assert set(features) == {"images", "rows", "brain_volume_ml"}
    assert (features["images"], features["brain_volume_ml"]) == (2, 1234.5)
    assert "1 DICOM files kept (features only)" in good.sent, good.sent
    assert list(receiver.uploads.iterdir()) == []
    # the leaky one carried the patient's name: refused by the release check, not sent
    assert leaky.status == "failed"
    assert "release check found identifying values (patient_name)" in leaky.reason, leaky.reason
    assert "Nordmann" not in leaky.reason
