"""The synthetic DICOM generator: valid Part-10 files, vendor headers, determinism, speed."""

from __future__ import annotations

import io
import shutil
import subprocess
import time
from pathlib import Path

import pydicom
import pytest

from fionagw.classify import csa
from support import synth

MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"


def test_part10_explicit_vr_le_and_128k(tmp_path: Path) -> None:
    paths = synth.write_study(tmp_path, vendor="SIEMENS", series=[synth.SeriesSpec("t1", 3)])
    assert [p.relative_to(tmp_path).as_posix() for p in paths] == [
        "S001/MR00001.dcm",
        "S001/MR00002.dcm",
        "S001/MR00003.dcm",
    ]
    for path in paths:
        data = path.read_bytes()
        assert data[128:132] == b"DICM"
        assert 128 * 1024 < len(data) < 150 * 1024
        ds = pydicom.dcmread(path)
        assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert ds.SOPClassUID == MR_IMAGE
        assert len(ds.PixelData) == 256 * 256 * 2
    assert len({pydicom.dcmread(p).SOPInstanceUID for p in paths}) == 3


def test_bytes_equal_pydicom_save_as(tmp_path: Path) -> None:
    # write_study re-encodes only changed elements; the result must be what pydicom writes
    for vendor in ("SIEMENS", "GE", "PHILIPS"):
        paths = synth.standard_mr_study(tmp_path / vendor, vendor, n_per_series=3, rows=16, cols=16)
        for path in paths:
            buffer = io.BytesIO()
            pydicom.dcmread(path).save_as(buffer, enforce_file_format=True)
            assert path.read_bytes() == buffer.getvalue(), path


def test_dcmtk_reads_the_files(tmp_path: Path) -> None:
    exe = shutil.which("dcmdump")
    assert exe, "dcmtk is not installed: run ./tests/run, which installs it"
    paths = synth.standard_mr_study(tmp_path, "GE", n_per_series=1, rows=16, cols=16)
    paths += synth.secondary_capture(tmp_path / "sc") + synth.structured_report(tmp_path / "sr")
    for path in paths:
        run = subprocess.run([exe, "-E", str(path)], capture_output=True, text=True)
        assert run.returncode == 0 and "E:" not in run.stderr, (path, run.stderr)


def test_pixel_bytes_and_dimensions(tmp_path: Path) -> None:
    path = synth.write_study(tmp_path, series=[synth.SeriesSpec("x", 1)], pixel_bytes=64 * 1024)[0]
    ds = pydicom.dcmread(path)
    assert (ds.Rows, ds.Columns) == (128, 256)
    path = synth.write_study(
        tmp_path / "b", series=[{"description": "y", "n_images": 1, "rows": 20, "cols": 30}]
    )[0]
    assert (pydicom.dcmread(path).Rows, pydicom.dcmread(path).Columns) == (20, 30)


def test_deterministic_per_seed(tmp_path: Path) -> None:
    a = synth.standard_mr_study(tmp_path / "a", "SIEMENS", n_per_series=2, seed=7, rows=16, cols=16)
    b = synth.standard_mr_study(tmp_path / "b", "SIEMENS", n_per_series=2, seed=7, rows=16, cols=16)
    c = synth.standard_mr_study(tmp_path / "c", "SIEMENS", n_per_series=2, seed=8, rows=16, cols=16)
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    assert pydicom.dcmread(a[0]).StudyInstanceUID != pydicom.dcmread(c[0]).StudyInstanceUID
    uids = [pydicom.dcmread(p).SOPInstanceUID for p in a + c]
    assert len(set(uids)) == len(uids)
    assert all(len(u) <= 64 for u in uids)


def test_study_fields(tmp_path: Path) -> None:
    path = synth.write_study(
        tmp_path,
        vendor="PHILIPS",
        series=[synth.SeriesSpec("x", 1)],
        patient_id="P42",
        patient_name="Test^Person",
        accession="A99",
        study_date="20230505",
        study_uid="1.2.3.4.5",
    )[0]
    ds = pydicom.dcmread(path)
    assert (ds.PatientID, str(ds.PatientName), ds.AccessionNumber) == ("P42", "Test^Person", "A99")
    assert (ds.StudyDate, ds.StudyInstanceUID) == ("20230505", "1.2.3.4.5")
    assert ds.Manufacturer == "Philips Medical Systems"


def test_standard_study_shape(tmp_path: Path) -> None:
    for vendor in ("SIEMENS", "GE", "PHILIPS"):
        specs = synth.standard_mr_series(vendor, 5)
        assert len(specs) == 7
        assert specs[0].orientation == "3plane" and specs[1].orientation == "sagittal"
        assert specs[4].b_values and specs[6].temporal_positions == 5
    paths = synth.standard_mr_study(tmp_path, "SIEMENS", n_per_series=4, rows=16, cols=16)
    assert len(paths) == 4 * 7  # the localizer has at least 3 and at most 9 images
    series = {pydicom.dcmread(p).SeriesInstanceUID for p in paths}
    assert len(series) == 7
    study = {pydicom.dcmread(p).StudyInstanceUID for p in paths}
    assert len(study) == 1


def test_localizer_three_planes(tmp_path: Path) -> None:
    paths = synth.write_study(
        tmp_path, series=[synth.SeriesSpec("loc", 6, orientation="3plane")], rows=8, cols=8
    )
    planes = [tuple(pydicom.dcmread(p).ImageOrientationPatient) for p in paths]
    assert planes[0] == planes[1] == synth.ORIENTATIONS["sagittal"]
    assert planes[2] == planes[3] == synth.ORIENTATIONS["coronal"]
    assert planes[4] == planes[5] == synth.ORIENTATIONS["axial"]


def test_siemens_csa_headers(tmp_path: Path) -> None:
    spec = synth.standard_mr_series("SIEMENS", 3)[4]  # DWI mosaic
    paths = synth.write_study(tmp_path, vendor="SIEMENS", series=[spec], rows=16, cols=16)
    first, second = (pydicom.dcmread(p) for p in paths[:2])
    assert first[0x00290010].value == "SIEMENS CSA HEADER"
    assert first[0x00291010].value[:4] == b"SV10" and first[0x00291020].value[:4] == b"SV10"
    assert first.SequenceName == "*ep_b0" and second.SequenceName == "*ep_b1000#1"
    image = csa.image_header(second)
    assert image["B_value"] == [1000]
    assert image["DiffusionGradientDirection"] == [1.0, 0.0, 0.0]
    assert image["NumberOfImagesInMosaic"] == [60]
    assert image["PhaseEncodingDirectionPositive"] == [1]
    protocol = csa.ascconv(csa.series_header(second)["MrPhoenixProtocol"][0])
    assert protocol["sGroupArray.asGroup[0].nSize"] == "60"
    assert protocol["sProtConsistencyInfo.tMeasuredBaselineString"] == "N4_VE11C_LATEST_20160120"
    assert len(protocol["sWipMemBlock.tFree"]) == 36
    assert "MOSAIC" in first.ImageType
    assert second[0x0019100C].value == 1000  # SIEMENS MR HEADER B_value


def test_ge_private_diffusion_tags(tmp_path: Path) -> None:
    spec = synth.standard_mr_series("GE", 3)[4]
    ds = pydicom.dcmread(synth.write_study(tmp_path, vendor="GE", series=[spec], rows=8, cols=8)[1])
    assert ds[0x00190010].value == "GEMS_ACQU_01" and ds[0x00430010].value == "GEMS_PARM_01"
    assert list(ds[0x00431039].value) == [1000, 8, 0, 0]
    assert [float(ds[t].value) for t in (0x001910BB, 0x001910BC, 0x001910BD)] == [1.0, 0.0, 0.0]
    assert ds[0x0019109C].value == "epi2"
    assert ds[0x00210010].value == "GEMS_RELA_01" and ds[0x0021104F].value == 3
    assert "release:DV26.0" in ds.SoftwareVersions[2]


def test_philips_private_diffusion_tags(tmp_path: Path) -> None:
    spec = synth.standard_mr_series("PHILIPS", 3)[4]
    ds = pydicom.dcmread(
        synth.write_study(tmp_path, vendor="PHILIPS", series=[spec], rows=8, cols=8)[1]
    )
    assert ds[0x20010010].value == "Philips Imaging DD 001"
    assert ds[0x20011003].value == 1000.0 and ds[0x20011020].value == "DwiSE"
    assert ds[0x20050010].value == "Philips MR Imaging DD 001"
    assert [ds[t].value for t in (0x200510B0, 0x200510B1, 0x200510B2)] == [1.0, 0.0, 0.0]
    assert ds.DiffusionBValue == 1000.0


def test_ct_sc_sr(tmp_path: Path) -> None:
    ct = pydicom.dcmread(synth.ct_study(tmp_path / "ct", n_images=2, rows=32, cols=32)[0])
    assert (ct.Modality, ct.SOPClassUID) == ("CT", "1.2.840.10008.5.1.4.1.1.2")
    sc = pydicom.dcmread(synth.secondary_capture(tmp_path / "sc", "PHILIPS")[0])
    assert (sc.Modality, sc.SOPClassUID, sc.ConversionType) == ("OT", synth.SC_STORAGE, "WSD")
    assert sc.PhotometricInterpretation == "RGB" and len(sc.PixelData) == 256 * 256 * 3
    sr = pydicom.dcmread(synth.structured_report(tmp_path / "sr")[0])
    assert (sr.Modality, sr.SOPClassUID) == ("SR", synth.BASIC_TEXT_SR)
    assert "PixelData" not in sr and sr.ContentSequence[0].TextValue


def test_bad_vendor(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="vendor"):
        synth.write_study(tmp_path, vendor="ACME", series=[synth.SeriesSpec("x", 1)])


def test_speed_of_128k_files(tmp_path: Path) -> None:
    # 4,000 files must take well under a minute; 300 here, with a generous bound
    start = time.perf_counter()
    paths = synth.standard_mr_study(tmp_path, "SIEMENS", n_per_series=43)
    elapsed = time.perf_counter() - start
    assert len(paths) == 9 + 6 * 43
    assert elapsed < 15, f"{len(paths) / elapsed:.0f} files/s"
