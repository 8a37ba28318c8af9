"""Issue 12, class 8: no wrong refusal (deflated files), no silent collapse (one SOP Instance
UID, two different files)."""

from __future__ import annotations

import shutil
from pathlib import Path

from pydicom import dcmread, dcmwrite
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian

from fionagw.deid import DeidSettings, collect_identifiers
from fionagw.deid.batch import deidentify_files
from fionagw.deid.inputcheck import incomplete_reason

SETTINGS = DeidSettings.fiona("DEMO")


def _file(path: Path, syntax: str, comment: str = "scan", sop: str = "1.2.826.0.1.3680043.9.7.3"):
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    ds.SOPInstanceUID = sop
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.9.7.1"
    ds.SeriesInstanceUID = "1.2.826.0.1.3680043.9.7.2"
    ds.Modality = "MR"
    ds.PatientName = "Hansen^Kari"
    ds.PatientID = "MRN31337"
    ds.ImageComments = comment
    ds.Rows = ds.Columns = 64
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
    ds.SamplesPerPixel, ds.PixelRepresentation = 1, 0
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = bytes(range(256)) * 32  # 8 KiB: more than the header pass's defer size
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    path.parent.mkdir(parents=True, exist_ok=True)
    dcmwrite(path, ds, enforce_file_format=True)
    return path


def test_deflated_file_with_a_large_element_is_not_truncated(tmp_path):
    src = _file(tmp_path / "in" / "a.dcm", DeflatedExplicitVRLittleEndian)
    assert src.stat().st_size < 8192  # compressed: the inflated offsets pass the file's end
    header = dcmread(src, defer_size=4096)  # the CLI's header pass
    assert incomplete_reason(header, src.stat().st_size) is None
    dst = tmp_path / "out" / "a.dcm"
    result = deidentify_files(
        [(src, dst)], SETTINGS, "P1", None, identifiers=collect_identifiers(dcmread(src))
    )
    assert result.ok and result.written == [dst], result.failed
    out = dcmread(dst)
    assert out.PixelData == dcmread(src).PixelData and str(out.PatientName) == "P1"
    assert out.file_meta.TransferSyntaxUID == DeflatedExplicitVRLittleEndian


def test_cut_deflated_file_is_still_refused(tmp_path):
    src = _file(tmp_path / "a.dcm", DeflatedExplicitVRLittleEndian)
    src.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    result = deidentify_files([(src, tmp_path / "o.dcm")], SETTINGS, "P1", None, processes=1)
    assert not result.written and result.failed and result.failed[0][0] == src


def test_two_different_files_with_one_sop_uid_are_refused_naming_both(tmp_path):
    a = _file(tmp_path / "a.dcm", ExplicitVRLittleEndian, "first")
    b = _file(tmp_path / "b.dcm", ExplicitVRLittleEndian, "second")
    c = _file(tmp_path / "c.dcm", ExplicitVRLittleEndian, sop="1.2.826.0.1.3680043.9.7.9")
    out = tmp_path / "out"
    jobs = [(a, out / "x.dcm"), (b, out / "x.dcm"), (c, out / "c.dcm")]
    result = deidentify_files(jobs, SETTINGS, "P1", None, processes=1)
    assert result.written == [out / "c.dcm"] and not (out / "x.dcm").exists()
    reasons = dict(result.failed)
    assert str(b) in reasons[a] and str(a) in reasons[b]
    assert "different content" in reasons[a] and "Hansen" not in reasons[a] + reasons[b]


def test_identical_copies_are_written_once(tmp_path):
    a = _file(tmp_path / "a.dcm", ExplicitVRLittleEndian)
    b = shutil.copy(a, tmp_path / "copy.dcm")
    out = tmp_path / "out" / "x.dcm"
    result = deidentify_files([(a, out), (Path(b), out)], SETTINGS, "P1", None, processes=1)
    assert result.ok and result.written == [out] and result.duplicates == [(Path(b), a)]
