"""read_header and the series JSON record: FIONA keys and types, merge rule, idempotency."""

from __future__ import annotations

import copy
import json
import os
import warnings
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.data import get_testdata_files
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from fionagw.classify import Connection, NotDicomError, RuleSet, read_header, update_series
from fionagw.classify import series as series_mod
from support import synth
from support.site import ROOT

CONN = Connection("SCANNER", "FIONA", "10.0.0.7")


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return RuleSet.load(ROOT / "config" / "classifyRules.json")


def images(vendor: str, index: int, n: int = 4, **study: Any) -> list[Dataset]:
    """Copies of the datasets of series ``index`` of the standard study."""
    specs = synth.standard_mr_series(vendor, n)
    out = []
    for _, ds in synth.study_datasets(
        vendor=vendor, series=[specs[index]], rows=32, cols=32, **study
    ):
        out.append(copy.deepcopy(ds))
    return out


def fold(
    rules: RuleSet, datasets: list[Dataset], record: dict[str, Any] | None = None
) -> dict[str, Any]:
    for n, ds in enumerate(datasets, start=1):
        record = update_series(record, ds, CONN, rules, n)
        # the caller keeps the record as JSON: it must survive the round trip unchanged
        assert json.loads(json.dumps(record, sort_keys=True)) == record
    assert record is not None
    return record


# --- keys and types ----------------------------------------------------------------------

FIONA_KEYS = {
    "IncomingConnection",
    "Modality",
    "Manufacturer",
    "ManufacturerModelName",
    "SoftwareVersion",
    "AcquisitionMatrix",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SeriesTime",
    "PatientID",
    "PatientName",
    "PatientSex",
    "InstitutionName",
    "OperatorsName",
    "StationName",
    "SOPClassUID",
    "StudyDate",
    "StudyDescription",
    "StudyID",
    "SeriesDescription",
    "SequenceName",
    "EchoTime",
    "RepetitionTime",
    "SeriesNumber",
    "InstanceNumber",
    "SliceThickness",
    "ImageType",
    "SliceSpacing",
    "ScanningSequence",
    "SequenceVariant",
    "SliceLocation",
    "AccessionNumber",
    "StudyTime",
    "NumFiles",
    "ClassifyType",
}


def test_siemens_record_keys_and_types(rules: RuleSet) -> None:
    record = fold(rules, images("SIEMENS", 4))  # DWI mosaic
    assert FIONA_KEYS <= set(record)
    assert "SeriesDate" not in record  # FIONA never wrote it
    assert record["NumFiles"] == "4"
    assert record["Modality"] == ["MR"]
    assert record["IncomingConnection"] == {
        "AETitleCaller": "SCANNER",
        "AETitleCalled": "FIONA",
        "CallerIP": "10.0.0.7",
    }
    assert isinstance(record["ClassifyType"], list) and "DWI" in record["ClassifyType"]
    assert record["AcquisitionMatrix"] == "[0, 32, 32, 0]"
    assert record["ImageType"] == "['ORIGINAL', 'PRIMARY', 'DIFFUSION', 'NONE', 'ND', 'MOSAIC']"
    assert record["PatientName"] == "Synthetic^Patient"
    assert record["SeriesNumber"] == "1" and record["InstanceNumber"] == "1"
    assert record["AcquisitionLength"].startswith("TA ")
    assert record["ActiveCoils"] == "HEA;HEP"
    for key, value in record.items():
        if key not in (
            "IncomingConnection",
            "Modality",
            "ClassifyType",
            "siemensDiffusionInformation",
            "PhaseEncodingDirectionPositive",
            "NumberOfImagesInMosaic",
        ):
            assert isinstance(value, str), (key, value)


def test_siemens_csa_derived_keys(rules: RuleSet) -> None:
    dwi = images("SIEMENS", 4)
    record = fold(rules, dwi)
    assert record["OSLevel"] == "VE11C"  # from the protocol, not "syngo MR E11"
    assert record["NumSlices"] == "60"
    assert record["MeasID"] == "1"  # the protocol's lSequenceID (synth: the series number)
    assert len(record["siemensUUID"]) == 36
    assert record["PhaseEncodingDirectionPositive"] == 1
    assert record["NumberOfImagesInMosaic"] == 60
    info = record["siemensDiffusionInformation"]
    assert [e["InstanceNumber"] for e in info] == ["1", "2", "3", "4"]
    assert [e["SOPInstanceUID"] for e in info] == [ds.SOPInstanceUID for ds in dwi]
    assert info[0] == {
        "B_value": 0,
        "DiffusionDirectionality": "NONE",
        "InstanceNumber": "1",
        "SOPInstanceUID": dwi[0].SOPInstanceUID,
    }
    assert info[1]["B_value"] == 1000 and info[1]["DiffusionDirectionality"] == "DIRECTIONAL"
    assert info[1]["DiffusionGradientDirection"] == [1.0, 0.0, 0.0]
    # a non-diffusion Siemens series has the list, empty (FIONA behaviour)
    assert fold(rules, images("SIEMENS", 1))["siemensDiffusionInformation"] == []


def test_ge_and_philips_vendor_keys(rules: RuleSet) -> None:
    ge = fold(rules, images("GE", 4))
    assert ge["OSLevel"] == "DV26.0"  # the "release:" part of (0018,1020)
    assert ge["SoftwareVersion"] == "['27', 'LX', 'MR Software release:DV26.0_R03_1831.b']"
    assert ge["PulseSequenceName"] == "epi2"
    assert ge["Private0043_1039"] == "[0, 8, 0, 0]"  # first image: b = 0
    assert ge["Private0019_10BB"] == "0.0"
    assert ge["ImagesInAcquisition"] == "4" and ge["Slices"] == "4"
    assert "Private0019_105a" in ge
    assert not {"siemensDiffusionInformation", "siemensUUID", "NumSlices"} & set(ge)
    philips = fold(rules, images("PHILIPS", 4))
    assert philips["SequenceType"] == "DwiSE"
    assert philips["Manufacturer"] == "Philips Medical Systems"


def test_study_description_missing_and_empty_values(rules: RuleSet) -> None:
    ds = images("GE", 2, n=1)[0]
    del ds.StudyDescription
    ds.add_new(0x00180050, "DS", None)  # present, no value
    record = update_series(None, ds, CONN, rules, 1)
    assert record["StudyDescription"] == "missing"
    assert record["SliceThickness"] == ""
    ds.StudyDescription = ""
    assert update_series(None, ds, CONN, rules, 1)["StudyDescription"] == ""


def test_broken_csa_does_not_stop_the_record(rules: RuleSet) -> None:
    ds = images("SIEMENS", 4, n=1)[0]
    ds[0x00291010].value = b"SV10" + b"\xff" * 40
    ds[0x00291020].value = b"garbage"
    record = update_series(None, ds, CONN, rules, 1)
    assert record["SeriesDescription"] == "ep2d_diff_mddw_8dir"
    assert not {"siemensUUID", "NumSlices", "siemensDiffusionInformation"} & set(record)


# --- merge rule ----------------------------------------------------------------------------


def test_first_image_wins_slice_location_min(rules: RuleSet) -> None:
    t2 = images("SIEMENS", 2, n=5)  # slice locations -10 .. 6
    record = fold(rules, t2[2:] + t2[:2])  # start in the middle
    assert record["InstanceNumber"] == "3"
    assert record["SliceLocation"] == "-10.0"
    assert record["NumFiles"] == "5"
    changed = copy.deepcopy(t2[4])
    changed.SeriesDescription = "renamed"
    changed.SliceLocation = "-99.5"
    later = update_series(record, changed, CONN, rules, 6)
    assert later["SeriesDescription"] == "t2_tse_tra"  # stored value kept
    assert later["SliceLocation"] == "-99.5" and later["NumFiles"] == "6"


def test_missing_keys_are_filled_and_meas_id_follows(rules: RuleSet) -> None:
    t1 = images("SIEMENS", 1, n=2)
    stored = update_series(None, t1[0], CONN, rules, 1)
    for key in ("siemensUUID", "NumSlices", "MeasID", "AccessionNumber"):
        del stored[key]  # as FIONA wrote it: no CSA-derived keys
    stored["MeasID"] = "old"
    record = update_series(stored, t1[1], CONN, rules, 2)
    assert record["NumSlices"] == "2" and record["AccessionNumber"] == "SYNACC0001"
    assert record["MeasID"] == "1"
    assert stored["MeasID"] == "old" and "NumSlices" not in stored  # input not modified


def test_same_instance_twice_changes_nothing(rules: RuleSet) -> None:
    for vendor, index in (("SIEMENS", 4), ("SIEMENS", 0), ("GE", 4), ("PHILIPS", 6)):
        datasets = images(vendor, index, n=5)
        record = fold(rules, datasets)
        for ds in datasets:  # rebuild / resend, in any order: no change
            assert update_series(record, ds, CONN, rules, 5) == record
        assert update_series(record, datasets[-1], CONN, rules, 5) == record
        entries = record.get("siemensDiffusionInformation", [])
        assert len({e["SOPInstanceUID"] for e in entries}) == len(entries)


def test_classification_sees_the_merged_record(rules: RuleSet) -> None:
    probe = RuleSet.from_list(
        [
            {"type": "MANY", "rules": [{"tag": ["NumFiles"], "operator": ">", "value": "2"}]},
            {
                "type": "FIRSTDESC",
                "rules": [{"tag": ["SeriesDescription"], "value": "^t2_tse_tra$"}],
            },
        ]
    )
    t2 = images("SIEMENS", 2, n=3)
    first = update_series(None, t2[0], CONN, probe, 1)
    assert first["ClassifyType"] == ["FIRSTDESC"]
    other = copy.deepcopy(t2[2])
    other.SeriesDescription = "something else"  # the record still says t2_tse_tra
    assert update_series(first, other, CONN, probe, 3)["ClassifyType"] == ["FIRSTDESC", "MANY"]


# --- read_header ---------------------------------------------------------------------------


def test_read_header_stops_before_pixels(tmp_path: Path) -> None:
    path = synth.write_study(tmp_path, vendor="SIEMENS", series=[synth.SeriesSpec("x", 1)])[0]
    ds = read_header(path)
    assert "PixelData" not in ds
    assert ds.Rows == 256 and ds.SOPInstanceUID
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert str(ds.filename) == str(path)


def _write(path: Path, ds: Dataset, **kw: Any) -> Path:
    ds.save_as(path, enforce_file_format=kw.pop("part10", True), **kw)
    return path


def test_read_header_not_dicom(tmp_path: Path) -> None:
    cases = {
        "empty": b"",
        "text": b"hello world\n" * 50,
        "zeros": b"\0" * 4096,
        "fake preamble": b"\0" * 128 + b"DICM" + b"\xff" * 64,
    }
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(NotDicomError) as info:
            read_header(path)
        assert str(info.value), name
    with pytest.raises(FileNotFoundError):
        read_header(tmp_path / "absent")


@pytest.mark.parametrize("missing", ["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"])
def test_read_header_missing_uid_is_broken(tmp_path: Path, missing: str) -> None:
    path = synth.write_study(tmp_path, vendor="GE", series=[synth.SeriesSpec("x", 1)])[0]
    ds = pydicom.dcmread(path)
    delattr(ds, missing)
    _write(path, ds)
    with pytest.raises(NotDicomError, match=f"missing {missing}"):
        read_header(path)
    ds = pydicom.dcmread(path)
    ds.add_new(
        {
            "StudyInstanceUID": 0x0020000D,
            "SeriesInstanceUID": 0x0020000E,
            "SOPInstanceUID": 0x00080018,
        }[missing],
        "UI",
        "",
    )
    _write(path, ds)
    with pytest.raises(NotDicomError, match=f"missing {missing}"):
        read_header(path)


def test_read_header_truncated(tmp_path: Path) -> None:
    path = synth.write_study(tmp_path, vendor="SIEMENS", series=[synth.SeriesSpec("x", 1)])[0]
    data = path.read_bytes()
    cut = data.index(b"\x20\x00\x0d\x00")  # just before StudyInstanceUID
    path.write_bytes(data[: cut + 3])
    with pytest.raises(NotDicomError):
        read_header(path)


def test_read_header_without_preamble_and_implicit(tmp_path: Path) -> None:
    ds = images("GE", 2, n=1)[0]
    meta = ds.file_meta
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    bare = _write(tmp_path / "bare.dcm", ds, part10=False, implicit_vr=True, little_endian=True)
    ds.file_meta = meta
    assert bare.read_bytes()[128:132] != b"DICM"
    got = read_header(bare)
    assert got.SOPInstanceUID == ds.SOPInstanceUID and got.Manufacturer == "GE MEDICAL SYSTEMS"
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    implicit = _write(tmp_path / "implicit.dcm", ds)
    got = read_header(implicit)
    assert got.is_implicit_VR and got[0x0019109C].value == "fse-xl"


def test_read_header_undefined_length_sequences(tmp_path: Path) -> None:
    ds = images("PHILIPS", 1, n=1)[0]
    item = Dataset()
    item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    item.ReferencedSOPInstanceUID = "1.2.3.4"
    inner = Dataset()
    inner.CodeValue = "X"
    item.PurposeOfReferenceCodeSequence = Sequence([inner])
    ds.ReferencedImageSequence = Sequence([item, item])
    ds["ReferencedImageSequence"].is_undefined_length = True
    ds.ReferencedImageSequence.is_undefined_length = True
    for it in ds.ReferencedImageSequence:
        it.is_undefined_length_sequence_item = True
    path = _write(tmp_path / "undef.dcm", ds)
    got = read_header(path)
    assert got.ReferencedImageSequence[1].PurposeOfReferenceCodeSequence[0].CodeValue == "X"
    assert got.SOPInstanceUID == ds.SOPInstanceUID


def _values(ds: Dataset) -> dict[int, str]:
    return {int(t): repr(ds[t].value) for t in ds.keys()}


def test_fast_reader_equals_pydicom_on_its_test_files() -> None:
    fast = 0
    for name in get_testdata_files("**/*"):
        if not os.path.isfile(name):
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                ref = pydicom.dcmread(name, stop_before_pixels=True)
            except Exception:
                continue
            with open(name, "rb") as f:
                got = series_mod._fast_read(f, name)
            if got is None:
                continue  # left to pydicom: big endian, deflated, no preamble, ...
            fast += 1
            assert _values(got) == _values(ref), name
            assert _values(got.file_meta) == _values(ref.file_meta), name
            assert got.original_encoding == ref.original_encoding, name
    assert fast > 100  # the fast path covers the common files


def test_read_header_on_synth_files_equals_pydicom(tmp_path: Path) -> None:
    for vendor in ("SIEMENS", "GE", "PHILIPS"):
        for path in synth.standard_mr_study(
            tmp_path / vendor, vendor, n_per_series=1, rows=16, cols=16
        ):
            assert _values(read_header(path)) == _values(
                pydicom.dcmread(path, stop_before_pixels=True)
            )
