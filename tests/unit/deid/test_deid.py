"""De-identification core: table, engine, UIDs, dates, private allow-list, release check."""

from __future__ import annotations

import io

import pytest
from pydicom import dcmread, dcmwrite
from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian

from fionagw.classify.csa import image_info, parse_csa, series_info
from fionagw.deid import (
    Deidentifier,
    DeidSettings,
    Identifiers,
    Profile,
    check_release,
    collect_identifiers,
    deidentifier_for,
    fiona_uid,
    keyed_uid,
    shift_dt,
)
from fionagw.deid.profile import ACTIONS, TABLE
from fionagw.deid.table_ps315 import OPTIONS
from fionagw.deid.writer import encode
from support import synth

KEY = "project-secret"


def settings(**kw) -> DeidSettings:
    kw.setdefault("project", "DEMO")
    kw.setdefault("secret", KEY)
    return DeidSettings(**kw)


# --- table ------------------------------------------------------------------------------------


def test_table_has_621_rows_and_every_option_column():
    assert len(TABLE) == 621
    assert {o for row in TABLE for o in row.options} == set(OPTIONS)
    assert len(OPTIONS) == 10
    assert sum(1 for r in TABLE if "X" in r.tag) == 3 and any(r.tag == "GGGGEEEE" for r in TABLE)
    option_sets = (
        [()] + [(o,) for o in OPTIONS] + [tuple(o for o in OPTIONS if o != "retain_full_dates")]
    )
    for row in TABLE:
        for opts in option_sets:
            for composite in ("valid", "minimal"):
                assert row.resolve(opts, composite) in ACTIONS, (row.tag, opts)


def test_composite_and_wildcards():
    p = Profile()
    assert p.action(0x00080080) == "D"  # X/Z/D InstitutionName
    assert p.action(0x00081140) == "U"  # X/Z/U* Referenced Image Sequence
    # references are remapped in either composite (issue 12, class 10), other X/Z/U* go
    assert Profile(composite="minimal").action(0x00081140) == "U"
    assert Profile().action(0x00081110) == "U"  # Referenced Study Sequence: not emptied
    assert p.action(0x50023000) == "X" and p.action(0x60024000) == "X"
    assert p.action(0x60003000) == "X" and p.action(0x60000010) is None
    assert Profile(["clean_graphics"]).action(0x60003000) == "C"
    assert p.action(0x00191010) == "X"
    assert Profile(["retain_modified_dates", "retain_device_identity"]).action(0x00181200) == "C"


# --- every attribute of the table -----------------------------------------------------------

_TEXT = {
    "AE": 16,
    "CS": 16,
    "LO": 64,
    "LT": 1024,
    "PN": 64,
    "SH": 16,
    "ST": 1024,
    "UC": 1024,
    "UT": 1024,
}


def _planted_dataset():
    ds, planted, numeric = Dataset(), Identifiers(), {}
    for i, row in enumerate(TABLE):
        if "X" in row.tag or "G" in row.tag:
            continue
        tag = int(row.tag, 16)
        if tag >> 16 < 8:  # command and file meta groups live outside the dataset
            continue
        if tag == 0x00420011:  # an encapsulated document is dropped whole (test_deid_keep_remove)
            continue
        try:
            vr = dictionary_VR(tag).split(" or ")[0]
        except KeyError:
            continue
        token = f"V{i:04d}Q"
        if vr in _TEXT:
            ds.add_new(tag, vr, token)
            planted.add("planted", token)
        elif vr == "UI":
            ds.add_new(tag, vr, f"1.2.826.0.1.3680043.9.7.{i}")
            planted.add("uid", f"1.2.826.0.1.3680043.9.7.{i}")
        elif vr == "DA":
            ds.add_new(tag, vr, f"1951{(i % 12) + 1:02d}{(i % 27) + 1:02d}")
        elif vr == "DT":
            ds.add_new(tag, vr, f"1951{(i % 12) + 1:02d}{(i % 27) + 1:02d}101010")
        elif vr == "TM":
            ds.add_new(tag, vr, "101010")
        elif vr == "SQ":
            item = Dataset()
            item.PatientName = f"W{i:04d}Q"
            planted.add("planted", f"W{i:04d}Q")
            ds.add_new(tag, vr, Sequence([item]))
        elif vr == "AS":
            ds.add_new(tag, vr, "077Y")
        elif vr in ("IS", "DS"):
            ds.add_new(tag, vr, str(i + 7))
            numeric[tag] = str(i + 7)
        elif vr in ("US", "SS", "UL", "SL", "FL", "FD", "UV", "SV"):
            ds.add_new(tag, vr, i + 7)
            numeric[tag] = i + 7
        elif vr in ("OB", "OW", "UN"):
            ds.add_new(tag, vr, b"ZZ%04d" % i)
        elif vr == "UR":
            ds.add_new(tag, vr, f"http://v{i:04d}q.example")
            planted.add("planted", f"v{i:04d}q.example")
    return ds, planted, numeric


def test_basic_profile_leaves_no_original_value():
    ds, planted, numeric = _planted_dataset()
    assert len(ds) > 500
    Deidentifier(settings(date_mode="remove", keep_diffusion=False)).deidentify(ds, "PX01")
    assert check_release(ds, planted) == []
    for tag, value in numeric.items():
        if tag in ds:
            assert ds[tag].value in (None, "", 0, "0", []) or ds[tag].value != value, hex(tag)
    for elem in ds.iterall():
        if elem.VR == "DA" and elem.value:
            assert elem.value == "19000101", elem
        if elem.VR in ("OB", "OW", "UN"):
            assert not bytes(elem.value).startswith(b"ZZ"), elem
    dcmwrite(io.BytesIO(), ds, implicit_vr=False, little_endian=True)  # still encodable


# --- options --------------------------------------------------------------------------------


def _study_ds():
    ds = Dataset()
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = "Doe^Jane", "MRN777", "19700203"
    ds.PatientAge, ds.PatientSex, ds.PatientWeight = "054Y", "F", 61.5
    ds.StationName, ds.DeviceSerialNumber = "MRI7", "SN4711"
    ds.InstitutionName = "General Hospital Somewhere"
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.9.1.1"
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.9.1.1.1"
    ds.SOPClassUID = synth.MR_STORAGE
    ds.StudyDate, ds.StudyTime = "20240102", "101530"
    ds.AcquisitionDateTime = "20240102101530.123+0100"
    ds.SeriesDescription = "T1 for Doe research"
    ds.AccessionNumber = "ACC99"
    return ds


def test_options_keep_what_they_should():
    base = Deidentifier(settings(date_mode="remove")).deidentify(_study_ds(), "P1")
    for kw in ("PatientAge", "PatientWeight", "SeriesDescription"):
        assert kw not in base
    assert base.StationName == base.DeviceSerialNumber == "ANONYMIZED"
    assert base.PatientSex == "" and base.InstitutionName == "ANONYMIZED"
    assert base.StudyDate == "" and base.StudyInstanceUID != _study_ds().StudyInstanceUID
    assert base.PatientBirthDate == ""

    opts = frozenset(
        {
            "retain_patient_characteristics",
            "retain_device_identity",
            "retain_institution_identity",
            "retain_uids",
            "clean_descriptors",
        }
    )
    kept = Deidentifier(settings(date_mode="keep", options=opts)).deidentify(_study_ds(), "P1")
    orig = _study_ds()
    for kw in (
        "PatientAge",
        "PatientSex",
        "PatientWeight",
        "StationName",
        "DeviceSerialNumber",
        "InstitutionName",
        "StudyInstanceUID",
        "StudyDate",
        "AcquisitionDateTime",
    ):
        assert kept[kw].value == orig[kw].value, kw
    assert kept.SeriesDescription == "T1 for *** research"
    codes = [i.CodeValue for i in kept.DeidentificationMethodCodeSequence]
    assert codes == ["113100", "113105", "113106", "113108", "113109", "113110", "113111", "113112"]
    assert kept.PatientIdentityRemoved == "YES"
    assert kept.LongitudinalTemporalInformationModified == "UNMODIFIED"


def test_stamp_clinical_trial_and_event():
    ds = _study_ds()
    ds.add_new(0x00401002, "LO", "headache")
    out = Deidentifier(settings()).deidentify(ds, "SUBJ-01", "baseline")
    assert out.PatientID == out.PatientName == out.ClinicalTrialSubjectID == "SUBJ-01"
    assert out.ClinicalTrialSponsorName == out.ClinicalTrialProtocolID == "DEMO"
    assert out.ClinicalTrialTimePointID == out.ClinicalTrialTimePointDescription == "baseline"
    assert out.ReferringPhysicianName == "EventName:baseline"
    assert out[0x00402001].value == out[0x00401002].value == "EventName:baseline"
    assert "AccessionNumber" in out and out.AccessionNumber == ""


# --- sequences and private tags -------------------------------------------------------------


def test_sequences_and_private_tags():
    ds = _study_ds()
    inner = Dataset()
    inner.ReferencedSOPInstanceUID = ds.SOPInstanceUID
    inner.ReferencedSOPClassUID = synth.MR_STORAGE
    inner.PatientName = "Doe^Jane"
    inner.private_block(0x0011, "ACME 1", create=True).add_new(0x01, "LO", "secret")
    ds.ReferencedImageSequence = [inner]
    ds.private_block(0x0009, "ACME 1", create=True).add_new(0x01, "LO", "keep me")
    ds.private_block(0x0009, "ACME 2", create=True).add_new(0x01, "LO", "drop me")
    d = Deidentifier(settings(private_keep=((0x0009, "acme 1 ", 0x01),)))
    out = d.deidentify(ds, "P1")
    item = out.ReferencedImageSequence[0]
    assert item.ReferencedSOPInstanceUID == out.SOPInstanceUID  # references stay consistent
    assert item.ReferencedSOPClassUID == synth.MR_STORAGE
    assert item.PatientName == ""
    assert not [e for e in item if e.tag.is_private]
    privates = {e.tag: e.value for e in out if e.tag.is_private}
    assert list(privates.values()) == ["ACME 1", "keep me"]


def _private(ds, group, creator, offset):
    try:
        return ds.private_block(group, creator)[offset].value
    except KeyError:
        return None


@pytest.mark.parametrize(
    "vendor,kept,dropped",
    [
        (
            "SIEMENS",
            [
                (0x0019, "SIEMENS MR HEADER", 0x0C),
                (0x0019, "SIEMENS MR HEADER", 0x0E),
                (0x0029, "SIEMENS CSA HEADER", 0x10),
                (0x0029, "SIEMENS CSA HEADER", 0x20),
            ],
            [(0x0051, "SIEMENS MR HEADER", 0x0F)],
        ),
        (
            "GE",
            [
                (0x0043, "GEMS_PARM_01", 0x39),
                (0x0019, "GEMS_ACQU_01", 0xBB),
                (0x0019, "GEMS_ACQU_01", 0xBD),
            ],
            [(0x0019, "GEMS_ACQU_01", 0x9C), (0x0021, "GEMS_RELA_01", 0x4F)],
        ),
        (
            "PHILIPS",
            [
                (0x2001, "Philips Imaging DD 001", 0x03),
                (0x2005, "Philips MR Imaging DD 001", 0xB0),
                (0x2005, "Philips MR Imaging DD 001", 0xB2),
            ],
            [(0x2001, "Philips Imaging DD 001", 0x20)],
        ),
    ],
)
def test_diffusion_private_allow_list(tmp_path, vendor, kept, dropped):
    dwi = [s for s in synth.standard_mr_series(vendor, 4) if s.b_values][0]
    path = synth.write_study(tmp_path / "in", vendor=vendor, series=[dwi])[-1]
    orig = dcmread(path)
    out = dcmread(Deidentifier(settings()).deidentify_file(path, tmp_path, "P1"))
    for group, creator, offset in kept:
        assert _private(out, group, creator, offset) is not None
        if creator == "SIEMENS CSA HEADER":  # cleaned (csa_clean.py): what analysis reads stays
            was, now = (parse_csa(_private(d, group, creator, offset)) for d in (orig, out))
            assert image_info(now) == image_info(was) and series_info(now) == series_info(was)
            assert now.keys() == was.keys()
        else:
            assert _private(out, group, creator, offset) == _private(orig, group, creator, offset)
    for group, creator, offset in dropped:
        assert _private(orig, group, creator, offset) is not None
        assert _private(out, group, creator, offset) is None
    assert out.PixelData == orig.PixelData
    plain = Deidentifier(settings(keep_diffusion=False)).deidentify(dcmread(path), "P1")
    assert not [e for e in plain if e.tag.is_private]


# --- UIDs -------------------------------------------------------------------------------------


def test_fiona_uid_worked_example():
    expected = "1.3.6.1.4.1.45037.755057394196176954731352373801808351328960141"
    assert fiona_uid("1.2.826.0.1.3680043.2.1125.1.1", "DEMO") == expected
    ds = Dataset()
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.2.1125.1.1"
    out = deidentifier_for(DeidSettings.fiona("DEMO")).deidentify(ds, "P1")
    assert out.StudyInstanceUID == expected
    odd = fiona_uid("1.2.3", "DEMO")  # odd length: hashed with its NUL pad
    assert len(odd) == 63 and odd != fiona_uid("1.2.3\0", "OTHER")


def test_keyed_uids_stable_and_distinct():
    a, b = Deidentifier(settings()), Deidentifier(settings())
    uids = [f"1.2.826.0.1.3680043.9.5.{i}" for i in range(200)]
    mapped = [a.uid(u) for u in uids]
    assert mapped == [b.uid(u) for u in uids]  # across instances (runs)
    assert len(set(mapped)) == len(uids)
    assert all(m.startswith("2.25.") and len(m) <= 64 for m in mapped)
    assert Deidentifier(settings(secret="other")).uid(uids[0]) != mapped[0]
    rooted = keyed_uid(uids[0], b"k", "1.2.826.0.1.3680043.10.1234")
    assert rooted.startswith("1.2.826.0.1.3680043.10.1234.") and len(rooted) == 64
    assert a.uid("1.2.840.10008.5.1.4.1.1.4") == "1.2.840.10008.5.1.4.1.1.4"


# --- dates ------------------------------------------------------------------------------------


def test_date_shift_per_participant():
    d = Deidentifier(settings(date_shift_range=(-400, -10)))
    s1 = _study_ds()
    s2 = _study_ds()
    s2.StudyDate, s2.StudyInstanceUID = "20250610", "1.2.826.0.1.3680043.9.2"
    o1, o2 = d.deidentify(s1, "P1"), d.deidentify(s2, "P1")
    import datetime as dt

    def days(a, b):
        return (dt.date.fromisoformat(a) - dt.date.fromisoformat(b)).days

    off1, off2 = days(o1.StudyDate, "20240102"), days(o2.StudyDate, "20250610")
    assert off1 == off2 == d.date_offset("P1") and -400 <= off1 <= -10
    assert o1.StudyTime == "101530"
    others = {d.date_offset(f"P{i}") for i in range(2, 12)}
    assert len(others - {off1}) > 0
    assert o1.AcquisitionDateTime == shift_dt("20240102101530.123+0100", off1)
    fiona = deidentifier_for(DeidSettings.fiona("DEMO")).deidentify(_study_ds(), "P1")
    assert fiona.StudyDate == "20240213"
    clean = Deidentifier(settings(times="clean")).deidentify(_study_ds(), "P1")
    assert clean.StudyTime == "000000"
    assert clean.AcquisitionDateTime.endswith("000000.000+0100")


def test_shift_dt_precision_and_offsets():
    assert shift_dt("20240102101530.5+0100", 10) == "20240112101530.5+0100"
    assert shift_dt("202401", 40) == "202402"
    assert shift_dt("2024", -5) == "2023"
    assert shift_dt("2024013", 1) == "" and shift_dt("garbage", 1) == ""


# --- release check ----------------------------------------------------------------------------


def test_release_check_finds_planted_values():
    orig = _study_ds()
    ids = collect_identifiers(orig)
    out = Deidentifier(settings()).deidentify(_study_ds(), "P1")
    assert check_release(out, ids) == []
    inner = Dataset()
    inner.private_block(0x0013, "ACME", create=True).add_new(0x10, "LO", "x JANE y")
    outer = Dataset()
    outer.ContentSequence = [inner]
    out.ReferencedImageSequence = [outer]
    out.ImageComments = f"copy of {orig.StudyInstanceUID}"
    out.add_new(0x00091001, "OB", b"\0mrn777\0")
    hits = check_release(out, ids)
    found = {(h.path, h.kind) for h in hits}
    assert ("(0008,1140)[0]/(0040,A730)[0]/(0013,1010)", "patient_name") in found
    assert ("(0020,4000)", "uid") in found
    assert ("(0009,1001)", "patient_id") in found
    assert all("JANE" not in str(h).upper() and "777" not in str(h) for h in hits)


def test_release_check_on_synthetic_study(tmp_path):
    files = synth.standard_mr_study(
        tmp_path / "in",
        "SIEMENS",
        n_per_series=2,
        patient_name="Smithers^Waylon",
        patient_id="MRN31337",
    )
    ids = collect_identifiers([dcmread(f) for f in files])
    d = Deidentifier(settings(options=frozenset({"clean_descriptors"})))
    for f in files:
        ds = d.deidentify(dcmread(f), "P1", "E1")
        assert check_release(ds, ids) == []
        b = io.BytesIO()
        dcmwrite(b, ds, enforce_file_format=True)
        assert encode(ds) == b.getvalue()


def test_file_meta_follows(tmp_path):
    ds = _study_ds()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.SourceApplicationEntityTitle = "HOSPITALPACS"
    Deidentifier(settings()).deidentify(ds, "P1")
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert "SourceApplicationEntityTitle" not in ds.file_meta
    assert keyword_for_tag(0x00120064) == "DeidentificationMethodCodeSequence"
