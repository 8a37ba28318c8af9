"""An uploaded study takes the same path through the gateway as a network arrival (storescu)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pydicom
import pytest

from fionagw.config import SiteConfig, load_config
from fionagw.upload.ingest import ingest
from fionagw.upload.records import new_upload_id
from fionagw.upload.zipsafe import extract_zip
from support.site import run_bin, storescu, wait_for, write_config
from support.uploads import LIMITS, study_zip

pytestmark = pytest.mark.slow


@pytest.fixture
def cfg(tmp_path: Path) -> SiteConfig:
    c = load_config(write_config(tmp_path))
    c.paths.create()
    return c


# --- the same pipeline as a network arrival ---------------------------------------------------


def dataset_bytes(path: Path) -> tuple[str, bytes]:
    """(transfer syntax, the data set's bytes after the file meta group): the receiver writes
    its own meta group (implementation UID and name), the data set is stored as received."""
    data = path.read_bytes()
    assert data[128:132] == b"DICM"
    end = 144 + struct.unpack_from("<I", data, 140)[0]
    return str(pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID), data[
        end:
    ]


SERIES_KEYS = (
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SeriesNumber",
    "SeriesDescription",
    "Modality",
    "NumFiles",
    "ClassifyType",
    "AccessionNumber",
    "StudyDescription",
    "PatientID",
)


def tree(cfg: SiteConfig) -> dict[str, object]:
    """What the gateway made of a study: archive names and bytes, raw/ links, series JSON."""
    archive = {
        p.relative_to(cfg.paths.archive).as_posix(): dataset_bytes(p)
        for p in cfg.paths.archive.glob("scp_*/*")
    }
    links = {
        p.relative_to(cfg.paths.raw).as_posix(): p.resolve()
        .relative_to(cfg.paths.archive)
        .as_posix()
        for p in cfg.paths.raw.glob("*/*/*")
        if p.is_symlink()
    }
    series = {}
    for p in cfg.paths.raw.glob("*/*.json"):
        rec = json.loads(p.read_text())  # per-image keys depend on the order files came in
        rec["ClassifyType"] = sorted(rec["ClassifyType"])  # the order types were first seen in
        series[p.relative_to(cfg.paths.raw).as_posix()] = {k: rec.get(k) for k in SERIES_KEYS}
    return {"archive": archive, "links": links, "series": series}


def test_uploaded_zip_takes_the_network_path(tmp_path: Path) -> None:
    """The same study sent by storescu to site A and uploaded as a ZIP to site B: the same archive
    (names, transfer syntax, data set bytes), raw/ tree and series JSON; B's files are announced
    as coming from WEBUPLOAD."""
    for site in ("a", "b"):
        (tmp_path / site).mkdir()
    a_cfg = load_config(write_config(tmp_path / "a"))
    b_cfg = load_config(write_config(tmp_path / "b"))
    z, files = study_zip(tmp_path, vendor="GE", accession="ACC-UP1", patient_id="PAT-UP1")
    try:
        for program in ("processSingleFile", "storectl"):
            r = run_bin(program, "start", config=a_cfg.config_file)
            assert r.returncode == 0, r.stderr
        r = run_bin("processSingleFile", "start", config=b_cfg.config_file)
        assert r.returncode == 0, r.stderr
        assert storescu(a_cfg.dicom_port, tmp_path / "study", aet="SCANNER").returncode == 0
        root = tmp_path / "staged"
        root.mkdir()
        extract_zip(z, root, LIMITS)
        record = ingest(b_cfg, new_upload_id(), root, {}, user="carol", source="zip")
        assert record.stored == len(files) and record.replaced == 0 and not record.skipped
        for c in (a_cfg, b_cfg):
            wait_for(
                lambda c=c: len(tree(c)["links"]) == len(files) and len(tree(c)["series"]) == 7,
                what="raw/ tree and series JSON",
            )
    finally:
        for c, programs in (
            (a_cfg, ("storectl", "processSingleFile")),
            (b_cfg, ("processSingleFile",)),
        ):
            for program in programs:
                run_bin(program, "stop", config=c.config_file)
    assert tree(a_cfg) == tree(b_cfg)
    (study_uid,) = record.studies
    jobs = [p.name for p in b_cfg.paths.arrived.iterdir()]
    assert f"WEBUPLOAD FIONA 127.0.0.1 scp_{study_uid}" in jobs
    conn = json.loads(next(b_cfg.paths.raw.glob("*/*.json")).read_text())["IncomingConnection"]
    assert (conn["AETitleCaller"], conn["AETitleCalled"], conn["CallerIP"]) == (
        "WEBUPLOAD",
        "FIONA",
        "127.0.0.1",
    )
