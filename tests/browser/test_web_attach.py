"""Attach in Chromium against `fiona web`: a ZIP upload with a progress bar lands in the pipeline
and shows on Assign with the form's metadata; a folder upload; unsafe or oversized ZIPs are refused
with a clear message; a NIfTI set is kept and listed."""

from __future__ import annotations

import gzip
import json
import re
import stat
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest

from fionagw.config import SiteConfig
from support import synth
from support.site import run_bin, wait_for
from support.uploads import nifti_set
from support.web import WebSite, login, screenshot, serve_site, stop_web, web_config

pytestmark = pytest.mark.slow

MAX_MB = 5


@pytest.fixture
def site(tmp_path: Path) -> Iterator[WebSite]:
    """`fiona web` (uploads up to 5 MB) and processSingleFile of one site (quiet period 1 s)."""
    config = web_config(tmp_path, web={"max_upload_mb": MAX_MB}, arrival={"quiet_seconds": 1})
    r = run_bin("processSingleFile", "start", config=config)
    assert r.returncode == 0, r.stderr
    try:
        web = serve_site(config)
        try:
            yield web
        finally:
            stop_web(web.proc)
    finally:
        run_bin("processSingleFile", "stop", config=config)


def zip_of(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return path


def study_files(directory: Path, **study: Any) -> list[Path]:
    return synth.standard_mr_study(
        directory, vendor="PHILIPS", n_per_series=2, rows=64, cols=64, **study
    )


def arrived_on_assign(cfg: SiteConfig, study_uid: str, n_files: int) -> None:
    """processSingleFile files the upload; once quiet, detectStudyArrival lists it (cron's job)."""
    study = cfg.paths.raw_study_dir(study_uid)
    wait_for(
        lambda: sum(1 for p in study.glob("*/*") if p.is_symlink()) == n_files,
        what="upload filed in raw/",
    )
    wait_for(
        lambda: all(time.time() - p.stat().st_mtime > 1.3 for p in cfg.paths.arrived.iterdir()),
        what="upload quiet",
    )
    r = run_bin("detectStudyArrival", config=cfg.config_file)
    assert r.returncode == 0, r.stderr


def upload(
    page: Any,
    *,
    zip_path: Path | None = None,
    folder: Path | None = None,
    fields: dict[str, str] | None = None,
    selects: dict[str, str] | None = None,
) -> Any:
    """Fill the Attach form and send it; returns the XHR response of the upload."""
    if zip_path is not None:
        page.set_input_files("input[name=zipfile]", str(zip_path))
    if folder is not None:
        page.set_input_files("input[name=files]", str(folder))
    for name, value in (fields or {}).items():
        page.fill(f"input[name={name}]", value)
    for name, value in (selects or {}).items():
        page.select_option(f"select[name={name}]", value)
    with page.expect_response(
        lambda r: r.url.endswith("/attach/upload") and r.request.method == "POST"
    ) as info:
        page.click("#upload-button")
    return info.value


def test_zip_upload_lands_in_assign_with_the_form_metadata(
    site: WebSite, page: Any, tmp_path: Path
) -> None:
    files = study_files(
        tmp_path / "cd",
        accession="HDR-0001",
        study_description="Header description",
        patient_id="PAT-ATT-1",
        patient_name="Olsen^Per",
    )
    entries = {f"CD/{p.relative_to(tmp_path / 'cd').as_posix()}": p.read_bytes() for p in files}
    entries["CD/README.txt"] = b"Burned with CDBurnerXP"
    z = zip_of(tmp_path / "study.zip", entries)
    study_uid = str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)

    login(page, site.url)
    page.goto(site.url + "attach/")
    screenshot(page, "attach-form")
    progress: list[tuple[float, float]] = []
    page.expose_function("reportProgress", lambda value, top: progress.append((value, top)))
    page.evaluate("""() => {
        const bar = document.getElementById('upload-progress');
        new MutationObserver(() => window.reportProgress(bar.value, bar.max))
            .observe(bar, {attributes: true, attributeFilter: ['value', 'max']});
    }""")
    response = upload(
        page,
        zip_path=z,
        fields={
            "study_description": "Uploaded research study",
            "accession": "UPL-0001",
            "age": "45",
        },
        selects={"sex": "M", "project": "DEMO"},
    )
    assert response.request.headers.get("x-requested-with") == "XMLHttpRequest"  # the JS path
    assert response.status == 200  # the page then goes to the result (its body is gone with it)
    page.wait_for_url(re.compile(r"/attach/upload/[0-9]{8}T[0-9]{6}-[0-9a-f]{8}$"))
    assert progress and max(v for v, _ in progress) > 0 and progress[-1][1] >= z.stat().st_size
    result = page.inner_text("#upload-result")
    assert f"Stored {len(files)} DICOM files of 1 study" in result
    assert "Uploaded research study" in result and "045Y" in result and "DEMO" in result
    assert page.inner_text("#skipped-files") == "CD/README.txt: not a DICOM file"
    screenshot(page, "attach-result")

    arrived_on_assign(site.cfg, study_uid, len(files))
    for stored in site.cfg.paths.archive_study_dir(study_uid).iterdir():
        ds = pydicom.dcmread(stored, stop_before_pixels=True)
        assert (ds.StudyDescription, ds.AccessionNumber, ds.PatientAge, ds.PatientSex) == (
            "Uploaded research study",
            "UPL-0001",
            "045Y",
            "M",
        )
        assert ds.PatientID == "PAT-ATT-1"  # the header keeps what the form does not set
    page.goto(site.url + "assign/")
    row = page.locator("tr.study", has_text="UPL-0001")
    assert row.count() == 1
    text = row.inner_text()
    assert (
        "Uploaded research study" in text
        and "WEBUPLOAD → FIONA" in text
        and "uploaded for DEMO" in text
    )
    screenshot(page, "attach-study-in-assign")
    row.locator("a", has_text="Open").click()
    assert (
        page.locator("#project-select").input_value() == "DEMO"
    )  # the upload's project, preselected
    page.goto(site.url + "attach/")
    assert page.locator("table.uploads tbody tr").count() == 1
    assert "DICOM (zip)" in page.inner_text("table.uploads")


def test_folder_upload(site: WebSite, page: Any, tmp_path: Path) -> None:
    files = study_files(tmp_path / "usb" / "EXAM1", seed=3, accession="FOLDER-1")
    study_uid = str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
    login(page, site.url)
    page.goto(site.url + "attach/")
    response = upload(page, folder=tmp_path / "usb")
    assert response.status == 200  # the page then goes to the result (its body is gone with it)
    page.wait_for_url(re.compile(r"/attach/upload/"))
    assert f"Stored {len(files)} DICOM files of 1 study" in page.inner_text("#upload-result")
    arrived_on_assign(site.cfg, study_uid, len(files))
    page.goto(site.url + "assign/")
    assert page.locator("tr.study", has_text="FOLDER-1").count() == 1


def refused(page: Any, zip_path: Path) -> str:
    response = upload(page, zip_path=zip_path)
    assert response.status in (400, 413)
    status = page.locator("#upload-status.error")
    status.wait_for()
    return status.inner_text()


def test_unsafe_and_oversized_zips_are_refused(site: WebSite, page: Any, tmp_path: Path) -> None:
    login(page, site.url)
    page.goto(site.url + "attach/")
    message = refused(page, zip_of(tmp_path / "t.zip", {"ok.dcm": b"x", "../../etc/evil": b"x"}))
    assert message == "../../etc/evil: path traversal ('..') in the upload (refused)"
    screenshot(page, "attach-refused-traversal")

    link = tmp_path / "link.zip"
    with zipfile.ZipFile(link, "w") as zf:
        info = zipfile.ZipInfo("scans/link")
        info.create_system, info.external_attr = 3, (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    assert refused(page, link) == "scans/link: symbolic link in the ZIP (refused)"

    bomb = zip_of(tmp_path / "bomb.zip", {"a.dcm": b"\0" * ((MAX_MB + 1) << 20)})
    assert bomb.stat().st_size < 100_000
    assert refused(page, bomb) == (
        f"ZIP is larger than the limit of {MAX_MB} MB when unpacked: split it into smaller uploads"
    )
    screenshot(page, "attach-refused-oversize")

    big = tmp_path / "big.zip"  # the upload itself over the limit: refused before it is read
    with zipfile.ZipFile(big, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("noise.bin", (bytes(range(256)) * 4096) * (MAX_MB + 16 + 3))
    assert big.stat().st_size > (MAX_MB + 16) << 20
    assert refused(page, big) == (
        f"The upload is larger than the limit of {MAX_MB} MB (or has more "
        f"than 100000 files): split it."
    )

    inner = zip_of(tmp_path / "inner.zip", {"a.dcm": b"x"}).read_bytes()
    assert "nested archives are refused" in refused(
        page, zip_of(tmp_path / "n.zip", {"x/inner.zip": inner})
    )
    assert not list(site.cfg.paths.archive.glob("scp_*"))  # nothing of it was stored
    assert not list((site.cfg.datadir / "uploads").glob("2*"))  # and no upload recorded
    web_log = site.cfg.paths.logfile("web").read_text()
    assert '"problem": "path traversal"' in web_log and '"problem": "symbolic link"' in web_log
    assert "evil" not in web_log and "scans/link" not in web_log  # file names stay out of the log
    assert not list((site.cfg.datadir / "uploads" / ".staging").glob("*"))  # staging cleaned


def test_nifti_set_is_kept_and_listed(site: WebSite, page: Any, tmp_path: Path) -> None:
    nifti_set(tmp_path / "nii", volumes=5, sidecar={"PatientAge": "052Y", "PatientSex": "F"})
    z = zip_of(tmp_path / "dwi.zip", {p.name: p.read_bytes() for p in (tmp_path / "nii").iterdir()})
    login(page, site.url)
    page.goto(site.url + "attach/")
    assert "converting NIfTI into DICOM is not available yet" in page.inner_text("main")
    response = upload(
        page,
        zip_path=z,
        fields={"study_description": "DWI from partner site"},
        selects={"project": "OTHER"},
    )
    assert response.status == 200  # the page then goes to the result (its body is gone with it)
    page.wait_for_url(re.compile(r"/attach/upload/"))
    result = page.inner_text("#upload-result")
    assert "Stored 4 NIfTI files (5 volumes)" in result and "not available yet" in result
    assert "DWI from partner site" in result and "052Y" in result
    screenshot(page, "attach-nifti-result")
    upload_id = page.url.rsplit("/", 1)[1]
    meta = json.loads((site.cfg.datadir / "uploads" / upload_id / "metadata.json").read_text())
    assert meta["kind"] == "nifti" and meta["metadata"] == {
        "study_description": "DWI from partner site",
        "age": "052Y",
        "sex": "F",
    }
    kept = site.cfg.datadir / "uploads" / upload_id / "files"
    assert gzip.decompress((kept / "sub-01_dwi.nii.gz").read_bytes())[344:348] == b"n+1\0"
    page.goto(site.url + "attach/")
    assert "NIFTI (zip)" in page.inner_text("table.uploads") and "not converted" in page.inner_text(
        "table.uploads"
    )
    screenshot(page, "attach-list")
    assert not list(site.cfg.paths.archive.glob("scp_*"))


def test_attach_needs_the_assign_role(site: WebSite, page: Any, tmp_path: Path) -> None:
    site.add_user("rev", "reviewer-password", [("review", "DEMO")])
    site.add_user("ann", "assigner-password", [("assign", "DEMO")])
    login(page, site.url, "rev", "reviewer-password")
    assert page.locator("nav.tabs a", has_text="Attach").count() == 0
    token = page.locator("meta[name=csrf-token]").get_attribute("content")
    files = {
        "zipfile": {
            "name": "a.zip",
            "mimeType": "application/zip",
            "buffer": zip_of(tmp_path / "a.zip", {"a.txt": b"x"}).read_bytes(),
        }
    }
    r = page.request.post(
        site.url + "attach/upload", multipart=files, headers={"X-CSRF-Token": token or ""}
    )
    assert r.status == 403
    page.context.clear_cookies()
    login(page, site.url, "ann", "assigner-password")
    token = page.locator("meta[name=csrf-token]").get_attribute("content")
    r = page.request.post(
        site.url + "attach/upload",
        multipart={**files, "project": "OTHER"},
        headers={"X-CSRF-Token": token or ""},
    )
    assert r.status == 403 and "assign role on project OTHER" in r.text()
