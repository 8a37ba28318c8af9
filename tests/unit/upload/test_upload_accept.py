"""accept_upload: one upload from the request's files to the archive, its staging always gone."""

from __future__ import annotations

import io
import json
import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pydicom
import pytest

from fionagw.config import SiteConfig, load_config
from fionagw.upload.accept import accept_upload
from fionagw.upload.errors import UploadError
from fionagw.upload.limits import UploadLimits
from support import synth
from support.site import write_config

LIMITS = UploadLimits(max_bytes=20 * 1024 * 1024, max_entries=100)


@dataclass
class Part:
    """A file part of a multipart request, as Werkzeug hands it over (name and stream)."""

    filename: str | None
    stream: IO[bytes]


@pytest.fixture
def cfg(tmp_path: Path) -> SiteConfig:
    c = load_config(write_config(tmp_path))
    c.paths.create()
    return c


def _study(tmp_path: Path) -> list[Path]:
    return synth.standard_mr_study(tmp_path / "study", n_per_series=1, rows=16, cols=16)


def _zip_part(files: list[Path], root: Path, name: str = "cd.zip") -> Part:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in files:
            zf.write(p, p.relative_to(root).as_posix())
    buf.seek(0)
    return Part(name, buf)


def _no_staging_left(cfg: SiteConfig) -> bool:
    staging = cfg.paths.upload_staging
    return not staging.exists() or not any(staging.iterdir())


def _records(cfg: SiteConfig) -> list[str]:
    uploads = cfg.paths.uploads
    return [p.name for p in uploads.iterdir() if p.name != ".staging"] if uploads.exists() else []


def test_a_zip_is_filed_and_recorded(cfg: SiteConfig, tmp_path: Path) -> None:
    files = _study(tmp_path)
    record = accept_upload(
        cfg,
        LIMITS,
        archive=_zip_part(files, tmp_path),
        folder=[],
        form={"accession": "ACC-UP-7"},
        user="erin",
        project="DEMO",
    )
    assert (record.source, record.kind, record.stored, record.user, record.project) == (
        "zip",
        "dicom",
        len(files),
        "erin",
        "DEMO",
    )
    uid = str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
    assert record.studies == [uid]
    stored = [p for d in cfg.paths.archive.iterdir() for p in d.iterdir()]
    assert len(stored) == len(files)
    assert {str(pydicom.dcmread(p).AccessionNumber) for p in stored} == {"ACC-UP-7"}
    saved = json.loads(cfg.paths.upload_record(record.upload_id).read_text())
    assert saved["source"] == "zip" and saved["stored"] == len(files)
    assert _no_staging_left(cfg)


def test_a_folder_is_filed_with_its_relative_names(cfg: SiteConfig, tmp_path: Path) -> None:
    files = _study(tmp_path)
    folder = [
        Part(f"CD/{p.relative_to(tmp_path).as_posix()}", io.BytesIO(p.read_bytes())) for p in files
    ]
    folder.append(Part("CD/readme.txt", io.BytesIO(b"not DICOM")))
    record = accept_upload(
        cfg, LIMITS, archive=None, folder=folder, form={}, user="erin", project=""
    )
    assert (record.source, record.stored) == ("folder", len(files))
    assert [(s.name, s.reason) for s in record.skipped] == [("CD/readme.txt", "not a DICOM file")]
    assert _no_staging_left(cfg)


def test_exactly_one_source_is_required(cfg: SiteConfig, tmp_path: Path) -> None:
    files = _study(tmp_path)
    for archive, folder in (
        (None, []),
        (_zip_part(files, tmp_path), [Part("a.dcm", io.BytesIO())]),
    ):
        with pytest.raises(UploadError, match="either a folder or a ZIP file"):
            accept_upload(
                cfg, LIMITS, archive=archive, folder=folder, form={}, user="erin", project=""
            )
    assert _no_staging_left(cfg) and _records(cfg) == []


def test_a_refused_upload_is_logged_by_kind_and_leaves_nothing(
    cfg: SiteConfig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    patient_named = Part("Hansen_Ingrid.txt", io.BytesIO(b"PK\x03\x04 not really"))
    with pytest.raises(UploadError, match="Hansen_Ingrid.txt: not a .zip file"):
        accept_upload(
            cfg, LIMITS, archive=patient_named, folder=[], form={}, user="erin", project=""
        )
    refused = [r for r in caplog.records if r.getMessage() == "upload refused"]
    assert [(r.user, r.problem) for r in refused] == [("erin", "not a ZIP")]  # type: ignore[attr-defined]
    assert all("Hansen" not in str(vars(r)) for r in caplog.records)  # no file name in the log
    assert _no_staging_left(cfg) and _records(cfg) == []
