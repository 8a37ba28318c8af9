"""FIONA mode (DICOMAnonymizer's rule table), tag changes, mapping.json.

Expected values are computed here from the formulas of reference/fiona-formats.md section 8
(SHA-256, nibbles as 0123456789012345, root 1.3.6.1.4.1.45037., +42 days), and the rules are
read from the shared fixture, not from the generated module under test.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json

import pytest
from pydicom import dcmread
from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from fionagw.deid import (
    NO_MATCH,
    Deidentifier,
    DeidSettings,
    check_release,
    collect_identifiers,
    deidentifier_for,
    fiona_uid,
    keyed_uid,
    parse_tag_change,
    regex_value,
    study_mapping,
)
from fionagw.deid.fiona_rules import CONTENT_SEQUENCE, FIONA_TAGS, PROFILE_DECIDES, table_rule
from fionagw.deid.profile import REFERENCE_SEQUENCES, Profile
from fionagw.deid.table_fiona import BODY_PARTS, RULES
from fionagw.deid.writer import encode
from support import synth
from support.site import SHARED

FIXTURES = SHARED / "fixtures" / "fiona-upstream"
RULES_JSON = FIXTURES / "DICOMAnonymizer-rules.json"
BODY_JSON = FIXTURES / "DICOMAnonymizer-allowed-body-parts.json"
PROJECT, PARTICIPANT, EVENT = "DEMO", "DEMO001", "baseline"
EVENT_TEXT = f"EventName:{EVENT}"
CODE_VALUE = "github.com/mmiv-center/DICOMAnonymizer"


# --- the formulas of section 8, written out independently ------------------------------------


def dec(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest().translate(str.maketrans("abcdef", "012345"))


def pad(text: str, byte: bytes) -> bytes:
    raw = text.encode()
    return raw + byte if len(raw) % 2 else raw


def project_uid(uid: str, project: str = PROJECT) -> str:
    return ("1.3.6.1.4.1.45037." + dec(pad(uid, b"\0") + project.encode()))[:63]


def plus_days(da: str, days: int = 42) -> str:
    day = dt.date(int(da[:4]), int(da[4:6]), int(da[6:8])) + dt.timedelta(days=days)
    return day.strftime("%Y%m%d")


def fiona(**kw) -> Deidentifier:
    return deidentifier_for(DeidSettings.fiona(PROJECT, **kw))


def text(ds: Dataset, tag: int):
    value = ds[tag].value
    return str(value) if not isinstance(value, list | Sequence) else value


# --- the generated table ----------------------------------------------------------------------


def test_committed_table_has_the_fixture_rules():
    assert RULES_JSON.exists() and BODY_JSON.exists(), f"{FIXTURES} missing: tests need shared/"
    rules = json.loads(RULES_JSON.read_text())
    assert len(RULES) == len(rules) == 276 and len(BODY_PARTS) == 542
    counts = {}
    for r in rules:
        counts[r[3]] = counts.get(r[3], 0) + 1
    # the action counts of section 8
    assert {
        a: counts[a]
        for a in (
            "remove",
            "keep",
            "incrementdate",
            "hashuid",
            "empty",
            "hashuid+PROJECTNAME",
            "incrementdatetime",
            "hash",
        )
    } == {
        "remove": 118,
        "keep": 80,
        "incrementdate": 21,
        "hashuid": 18,
        "empty": 7,
        "hashuid+PROJECTNAME": 7,
        "incrementdatetime": 4,
        "hash": 2,
    }


def test_every_rule_has_a_defined_behaviour():
    known = {
        "remove",
        "keep",
        "empty",
        "hash",
        "hashuid",
        "hashuid+PROJECTNAME",
        "incrementdate",
        "incrementdatetime",
        "keyword",
        "set",
        "bodypart",
        "temporal",
        "method",
        "codes",
        "private",
    }
    for tag, name, action, create in RULES:
        rule = table_rule(tag, name, action, create)
        assert rule.action in known, (name, action)
        assert rule.action != "set" or action == "YES", (name, action)  # no unknown literal


# --- the worked UID example -------------------------------------------------------------------


def test_worked_uid_example_digit_for_digit():
    expected = "1.3.6.1.4.1.45037.755057394196176954731352373801808351328960141"
    uid = "1.2.826.0.1.3680043.2.1125.1.1"
    assert fiona_uid(uid, "DEMO") == project_uid(uid) == expected
    ds = Dataset()
    ds.StudyInstanceUID = ds.SeriesInstanceUID = ds.SOPInstanceUID = uid
    ds.FrameOfReferenceUID = uid
    ds.StudyID = "4711"
    out = fiona().deidentify(ds, PARTICIPANT)
    for kw in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID"):
        assert out[kw].value == expected, kw
    assert out.StudyID == expected[18:34] == dec(pad(uid, b"\0") + b"DEMO")[:16]
    assert fiona_uid(uid, "OTHER") != expected  # each project gets its own copy


# --- every rule of the table on a dataset carrying every tag ---------------------------------

_TEXT_VRS = {"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UT"}
_PRIVATE_BLOCKS = {
    0x0009: "SECTRA_IDENT_01",
    0x0033: "MITRA OBJECT UTF8 ATTRIBUTES 1.0",
    0x0013: "CTP",
    0x0071: "SIEMENS MED PT",
}


def _planted():
    """A dataset with every tag of the fixture; returns it and {index: (tag, vr, value)}."""
    ds, planted = Dataset(), {}
    rules = json.loads(RULES_JSON.read_text())
    for i, (group, element, *_rest) in enumerate(rules):
        tag = int(group + element, 16)
        if tag in ds:  # (0040,0244) is listed twice upstream
            planted[i] = next(p for p in planted.values() if p[0] == tag)
            continue
        if tag >> 16 & 1:
            block = ds.private_block(tag >> 16, _PRIVATE_BLOCKS[tag >> 16], create=True)
            if tag & 0xFFFF >= 0x1000:
                value = "20190203101010.5+0100" if tag >> 16 == 0x0071 else f"P{i:03d}Q"
                block.add_new(tag & 0xFF, "DT" if tag >> 16 == 0x0071 else "LO", value)
                planted[i] = (tag, "private", value)
            else:
                planted[i] = (tag, "private", None)
            continue
        vr = dictionary_VR(tag).split(" or ")[0]
        if vr in _TEXT_VRS:
            value = f"V{i:03d}Q"
        elif vr == "UI":
            value = f"1.2.826.0.1.3680043.9.7.{i}"
        elif vr == "DA":
            value = f"2019{i % 12 + 1:02d}{i % 27 + 1:02d}"
        elif vr == "DT":
            value = f"2019{i % 12 + 1:02d}{i % 27 + 1:02d}101010.5+0100"
        elif vr == "TM":
            value = "101010"
        elif vr == "AS":
            value = "077Y"
        elif vr in ("IS", "DS"):
            value = str(i + 7)
        elif vr in ("US", "SS", "UL", "SL", "FL", "FD"):
            value = i + 7
        elif vr in ("OB", "OW", "UN"):
            value = b"ZZ%04d" % i
        elif vr == "SQ":
            item = Dataset()
            item.PatientName = f"W{i:03d}Q"
            item.ReferencedSOPInstanceUID = f"1.2.826.0.1.3680043.9.8.{i}"
            item.RadiopharmaceuticalStartDateTime = "20190506070809"
            value = Sequence([item])
        else:
            raise AssertionError(f"no test value for VR {vr}")
        ds.add_new(tag, vr, value)
        planted[i] = (tag, vr, value)
    return ds, planted


def test_every_rule_applied_to_a_dataset_with_every_tag():
    ds, planted = _planted()
    study_uid = ds.StudyInstanceUID
    out = fiona().deidentify(ds, PARTICIPANT, EVENT)
    encoded = encode_check(out)
    rules = json.loads(RULES_JSON.read_text())
    checked = set()
    for i, row in enumerate(rules):
        group, element, name, action = row[:4]
        tag, vr, value = planted[i]
        where = f"{group},{element} {name} {action}"
        if vr == "private":
            creator = _PRIVATE_BLOCKS[tag >> 16]
            if tag >> 16 == 0x0071:  # SIEMENS MED PT date: kept, +42 days, time kept
                assert out.private_block(0x0071, creator)[0x22].value == "20190317101010.5+0100"
            else:  # Sectra, MITRA, the CTP-like 0013 block: removed
                assert not [e for e in out if e.tag.group == tag >> 16], where
            checked.add(i)
            continue
        if tag in PROFILE_DECIDES:  # FIONA's leaks and losses: the PS3.15 profile decides
            if vr == "SQ" and tag in REFERENCE_SEQUENCES | {CONTENT_SEQUENCE}:
                (item,) = out[tag].value  # references remapped, SR content cleaned, not lost
                assert item.ReferencedSOPInstanceUID == project_uid(
                    f"1.2.826.0.1.3680043.9.8.{i}"
                ), where
                assert str(item.PatientName) != f"W{i:03d}Q", where
            else:  # device identity: gone or replaced
                assert tag not in out or out[tag].value != value, where
        elif action == "remove":
            assert tag not in out, where  # public tags too (upstream HEAD regression not kept)
        elif tag in (0x00080090, 0x00402001):  # FIONA's event tag changes
            assert text(out, tag) == EVENT_TEXT, where
        elif action in ("keep", "process") and vr == "SQ":
            (item,) = out[tag].value
            assert str(item.PatientName) == PARTICIPANT, where  # rules apply in items too
            assert item.ReferencedSOPInstanceUID == project_uid(f"1.2.826.0.1.3680043.9.8.{i}")
            assert item.RadiopharmaceuticalStartDateTime == "20190617070809", where
        elif action == "keep":
            assert out[tag].value == value or text(out, tag) == value, where
        elif action == "empty":
            assert out[tag].value in ("", None, b"") or len(out[tag].value) == 0, where
        elif action == "hash" and name == "StudyID":
            assert out[tag].value == dec(pad(study_uid, b"\0") + PROJECT.encode())[:16], where
        elif action == "hash":
            assert out[tag].value == dec(pad(value, b" "))[:16], where  # SH maximum
        elif action == "hashuid":
            assert out[tag].value == dec(pad(value, b"\0")), where
            assert len(out[tag].value) == 64
        elif action == "hashuid+PROJECTNAME":
            assert out[tag].value == project_uid(value), where
        elif action == "incrementdate":
            assert out[tag].value == plus_days(value), where
        elif action == "incrementdatetime":
            assert out[tag].value == plus_days(value[:8]) + value[8:], where
        elif action in ("Re-Mapped", "PatientID"):
            assert text(out, tag) == PARTICIPANT, where
        elif action == "ProjectName":
            assert out[tag].value == PROJECT, where
        elif action == "EventName":
            assert out[tag].value == EVENT, where
        elif action in ("YES", "MODIFIED"):
            assert out[tag].value == action, where
        elif action == "BODYPART":
            assert out[tag].value == "BODYPART", where  # V..Q is not a CID 4031 keyword
        elif name == "DeIdentificationMethod":
            assert out[tag].value[0] == "{Per DICOM PS 3.15 AnnexE}", where
        elif name == "DeIdentificationMethodCodeSequence":
            (item,) = out[tag].value
            assert (item.CodeValue, item.CodeMeaning) == (CODE_VALUE, "Software")
        else:
            raise AssertionError(f"no check for {where}")
        checked.add(i)
    assert checked == set(range(276))
    back = dcmread(io.BytesIO(encoded))
    assert back.StudyInstanceUID == project_uid(study_uid)


def encode_check(ds: Dataset) -> bytes:
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = synth.MR_STORAGE
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3"
    return encode(ds)


def test_create_if_missing_on_an_almost_empty_object():
    ds = Dataset()
    ds.SOPClassUID = synth.MR_STORAGE
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.9.7.1"
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.9.7.2"
    out = fiona().deidentify(ds, PARTICIPANT)
    created = [
        int(r[0] + r[1], 16)
        for r in json.loads(RULES_JSON.read_text())
        if len(r) > 5 and r[5] == "createIfMissing"
    ]
    assert len(created) == 15
    for tag in created:
        assert tag in out, hex(tag)
    month = out.StudyDate[4:6]
    assert out.StudyDate == f"1970{month}01" and 1 <= int(month) <= 12
    assert out.StudyTime == "" and out.DateOfSecondaryCapture == ""
    assert out.InstitutionName == PROJECT and str(out.PatientName) == PARTICIPANT
    assert out.ReferringPhysicianName == "" and out.ClinicalTrialTimePointID == ""
    assert "AccessionNumber" not in out and "BodyPartExamined" not in out  # not createIfMissing
    assert out.LongitudinalTemporalInformationModified == "MODIFIED"


def test_markers_and_clinical_trial_tags():
    ds = Dataset()
    ds.SOPInstanceUID, ds.StudyInstanceUID = (
        "1.2.826.0.1.3680043.9.7.1",
        "1.2.826.0.1.3680043.9.7.2",
    )
    ds.InstitutionName = "St. Elsewhere"
    out = fiona(sponsor="Example University").deidentify(ds, PARTICIPANT, EVENT)
    assert out.PatientIdentityRemoved == "YES"
    assert out.DeidentificationMethod[0] == "{Per DICOM PS 3.15 AnnexE}"
    assert all(len(v) <= 64 for v in out.DeidentificationMethod)
    (code,) = out.DeidentificationMethodCodeSequence
    assert code.CodeValue == CODE_VALUE and code.CodeMeaning == "Software"
    assert out.ClinicalTrialProtocolID == out.ClinicalTrialProtocolName == PROJECT
    assert out.ClinicalTrialSubjectID == PARTICIPANT
    assert out.ClinicalTrialTimePointID == out.ClinicalTrialTimePointDescription == EVENT
    assert out.ClinicalTrialSponsorName == "Example University"
    assert out.InstitutionName == PROJECT
    assert out.ReferringPhysicianName == EVENT_TEXT
    assert out[0x00402001].value == EVENT_TEXT and 0x00401002 not in out  # 1002 only if present
    ds2 = Dataset()
    ds2.add_new(0x00401002, "LO", "headache")
    assert fiona().deidentify(ds2, PARTICIPANT, EVENT)[0x00401002].value == EVENT_TEXT
    assert 0x00401002 not in fiona().deidentify(_with_reason(), PARTICIPANT)  # PS3.15 X


def _with_reason() -> Dataset:
    ds = Dataset()
    ds.add_new(0x00401002, "LO", "headache")
    return ds


def test_tags_not_in_the_fiona_table_follow_ps315():
    settings = DeidSettings.fiona(PROJECT)
    profile = Profile(settings.profile_options())
    ds, expect = Dataset(), {}
    for tag, action in profile.exact.items():
        if tag in FIONA_TAGS or tag >> 16 < 8 or action not in ("X", "Z", "U"):
            continue
        try:
            vr = dictionary_VR(tag).split(" or ")[0]
        except KeyError:
            continue
        if vr in _TEXT_VRS:
            ds.add_new(tag, vr, f"T{tag:08X}")
        elif vr == "UI":
            ds.add_new(tag, vr, f"1.2.826.0.1.3680043.9.9.{tag}")
        elif vr == "SQ" and action != "U":
            ds.add_new(tag, vr, Sequence([Dataset()]))
        else:
            continue
        expect[tag] = action
    assert len(expect) > 100
    out = deidentifier_for(settings).deidentify(ds, PARTICIPANT)
    for tag, action in expect.items():
        if action == "X":
            assert tag not in out, hex(tag)
        elif action == "Z":
            assert not out[tag].value, hex(tag)
        elif action == "U":
            assert out[tag].value == project_uid(f"1.2.826.0.1.3680043.9.9.{tag}"), hex(tag)


# --- body parts, dates ------------------------------------------------------------------------


def test_body_part_allow_list():
    keywords = [k for *_, k in json.loads(BODY_JSON.read_text()) if k]
    assert "HEAD" in keywords and "BODYPART" in keywords
    d = fiona()
    for value in keywords[::7] + ["ABDOMENPELVIS"]:
        ds = Dataset()
        ds.BodyPartExamined = value
        assert d.deidentify(ds, PARTICIPANT).BodyPartExamined == value
    for value in ("head", "KNEE LEFT", "Hansen's knee", "BRAIN AND SPINE"):
        ds = Dataset()
        ds.BodyPartExamined = value
        assert d.deidentify(ds, PARTICIPANT).BodyPartExamined == "BODYPART", value


@pytest.mark.parametrize(
    "value,expected",
    [
        ("20240102", "20240213"),
        ("20240120", "20240302"),
        ("20231231", "20240211"),
        ("20240102101530", "20240213"),  # upstream reads YYYYMMDD and writes the date only
        ("garbage", ""),
        ("20241345", ""),
        ("", ""),
    ],
)
def test_incrementdate(value, expected):
    ds = Dataset()
    ds.SOPInstanceUID = "1.2.3.4"
    ds.add_new(0x00080022, "DA", value)  # AcquisitionDate
    assert fiona().deidentify(ds, PARTICIPANT).AcquisitionDate == expected


@pytest.mark.parametrize(
    "value,expected",
    [
        ("2024", "2024"),
        ("202401", "202402"),
        ("20240102", "20240213"),
        ("20240102101530", "20240213101530"),
        ("20240102101530.123456+0100", "20240213101530.123456+0100"),
        ("garbage", ""),
    ],
)
def test_incrementdatetime(value, expected):
    ds = Dataset()
    ds.add_new(0x0008002A, "DT", value)
    assert fiona().deidentify(ds, PARTICIPANT).AcquisitionDateTime == expected


def test_study_date_fallback_is_deterministic():
    months = set()
    for i in range(40):
        ds = Dataset()
        ds.StudyInstanceUID = f"1.2.826.0.1.3680043.9.3.{i}"
        ds.StudyDate = "unknown"
        first = fiona().deidentify(ds, PARTICIPANT).StudyDate
        again = Dataset()
        again.StudyInstanceUID = f"1.2.826.0.1.3680043.9.3.{i}"  # a resend, StudyDate missing
        assert fiona().deidentify(again, PARTICIPANT).StudyDate == first
        assert first.startswith("1970") and first.endswith("01")
        months.add(int(first[4:6]))
    assert months <= set(range(1, 13)) and len(months) > 3  # still spread over the year


def test_times_kept_and_other_dates_shift_alike():
    ds = Dataset()
    ds.StudyDate, ds.StudyTime, ds.AcquisitionTime = "20240102", "235959.123", "101010"
    ds.add_new(0x00189074, "DT", "20240102101010")  # FrameAcquisitionDateTime: not in FIONA
    ds.add_new(0x00181012, "DA", "20240105")  # DateOfSecondaryCapture
    out = fiona().deidentify(ds, PARTICIPANT)
    assert (out.StudyDate, out.StudyTime, out.AcquisitionTime) == (
        "20240213",
        "235959.123",
        "101010",
    )
    assert out[0x00189074].value == "20240213101010" and out.DateOfSecondaryCapture == "20240216"
    kept = deidentifier_for(DeidSettings.fiona(PROJECT, date_mode="keep")).deidentify(
        _dated("20240102"), PARTICIPANT
    )
    assert kept.StudyDate == "20240102"
    other = deidentifier_for(DeidSettings.fiona(PROJECT, date_shift_days=-10)).deidentify(
        _dated("20240102"), PARTICIPANT
    )
    assert other.StudyDate == "20231223"
    clean = _dated("20240102")
    clean.StudyTime, clean.AcquisitionDateTime = "235959.123", "20240102101010"
    clean = deidentifier_for(DeidSettings.fiona(PROJECT, times="clean")).deidentify(
        clean, PARTICIPANT
    )
    assert (clean.StudyTime, clean.AcquisitionDateTime) == ("000000.000", "20240213000000")


def _dated(value: str) -> Dataset:
    ds = Dataset()
    ds.StudyDate = value
    return ds


def test_siemens_pet_private_date_needs_its_creator():
    ds = Dataset()
    ds.private_block(0x0071, "SIEMENS MED PT", create=True).add_new(0x22, "DT", "20240102083000")
    ds.private_block(0x0073, "SIEMENS MED PT", create=True).add_new(0x22, "DT", "20240102083000")
    other = Dataset()
    other.private_block(0x0071, "ACME", create=True).add_new(0x22, "DT", "20240102083000")
    out = fiona().deidentify(ds, PARTICIPANT)
    assert out.private_block(0x0071, "SIEMENS MED PT")[0x22].value == "20240213083000"
    assert not [e for e in out if e.tag.group == 0x0073]
    assert not [e for e in fiona().deidentify(other, PARTICIPANT) if e.tag.is_private]


# --- tag changes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec,problem",
    [
        ("0008,0080", "expected"),
        ("08,0080=X", "expected"),
        ("0009,1001=X", "private"),
        ("0010,0010=X", "participant"),
        ("0010,0020=PROJECTNAME", "participant"),
        ("0002,0010=X", "file-meta"),
        ("0021,0080=X", "private"),
        ("0008,0018=NEW", "UID"),
        ("0008,1140=X", "sequence"),
        ("0013,1111=X", "private"),
        ("0008,8888=X", "dictionary"),
    ],
)
def test_tag_change_refused(spec, problem):
    with pytest.raises(ValueError, match=problem):
        parse_tag_change(spec)
    with pytest.raises(ValueError):
        DeidSettings.fiona(PROJECT, tag_changes=(spec,)).validate()


def test_bad_regex_refused():
    with pytest.raises(ValueError, match="regular expression"):
        parse_tag_change("0032,4000=([a-z", regex=True)


def _change(changes=(), regex=(), keyed=False, **values) -> Dataset:
    ds = Dataset()
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.9.7.1"
    for kw, v in values.items():
        setattr(ds, kw, v)
    if keyed:
        d = deidentifier_for(
            DeidSettings(
                project=PROJECT,
                secret="k",
                tag_changes=tuple(changes),
                regex_tag_changes=tuple(regex),
                site_name="Bergen",
            )
        )
    else:
        d = fiona(
            tag_changes=tuple(changes),
            regex_tag_changes=tuple(regex),
            site_name="Bergen",
            site_id="B01",
        )
    return d.deidentify(ds, PARTICIPANT, EVENT)


def test_tag_change_keywords_literals_and_actions():
    out = _change(
        [
            "0008,1030=PROJECTNAME",
            "0008,103e=PatientID",
            "0018,1030=EventName",
            "0032,1060=SITENAME",
            "0018,1000=SITEID",
            "0010,4000=remove",
            "0010,2180=empty",
            "0008,0050=hash",
            "0020,4000=Literal text!",
            "0008,0070=ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
        ],
        StudyDescription="Doe study",
        SeriesDescription="T1",
        ProtocolName="p",
        RequestedProcedureDescription="MR",
        DeviceSerialNumber="SN1",
        PatientComments="c",
        Occupation="pilot",
        AccessionNumber="ACC99",
        ImageComments="x",
        Manufacturer="ACME",
    )
    assert out.StudyDescription == PROJECT and out.SeriesDescription == PARTICIPANT
    assert out.ProtocolName == EVENT and out.RequestedProcedureDescription == "Bergen"
    assert out.DeviceSerialNumber == "B01"
    assert "PatientComments" not in out and out.Occupation == ""
    assert out.AccessionNumber == dec(b"ACC99 ")[:16]
    assert out.ImageComments == "Literal text!"
    assert len(out.Manufacturer) == 64  # LO maximum
    raw = encode_check(out)
    assert b"Literal text! " in raw  # odd length padded with a space, as upstream


def test_tag_change_creates_only_tags_of_the_fiona_table():
    out = _change(["0032,4000=made", "0018,0024=SEQ"])  # StudyComments is in the table
    assert out.StudyComments == "made" and 0x00180024 not in out
    present = _change(["0018,0024=SEQ"], SequenceName="fl3d")
    assert present.SequenceName == "SEQ"


def test_regex_tag_change():
    pattern = r"^([A-Z]+)-(\d+)(x)?"
    assert regex_value(pattern, "ABC-123 rest") == "ABC 123  "  # unmatched group: "" + " "
    assert regex_value(pattern, "abc") == NO_MATCH
    assert regex_value(r"ABC", "ABC") == NO_MATCH  # no capture group
    out = _change(regex=[r"0032,4000=STUDY ([A-Z0-9]+)"], StudyComments="for STUDY XK12 only")
    assert out.StudyComments == "XK12 "
    assert _change(regex=[r"0032,4000=STUDY ([A-Z0-9]+)"]).StudyComments == NO_MATCH  # created
    assert (
        _change(regex=[r"0032,4000=STUDY (\d+)"], StudyComments="STUDY X").StudyComments == NO_MATCH
    )
    present = _change(regex=[r"0018,0024=^(\w\w)"], SequenceName="fl3d")
    assert present.SequenceName == "fl "  # not in the FIONA table: replaced when present


def test_tag_changes_in_keyed_mode_win_over_the_stamps():
    out = _change(
        ["0008,0080=PROJECTNAME", "0008,0090=Dr^Who", "0040,2001=remove"],
        keyed=True,
        InstitutionName="St. Elsewhere",
    )
    assert out.InstitutionName == PROJECT
    assert str(out.ReferringPhysicianName) == "Dr^Who"
    assert 0x00402001 not in out
    assert out.SOPInstanceUID == keyed_uid("1.2.826.0.1.3680043.9.7.1", b"k")
    missing = _change(["0008,0080=PROJECTNAME"], keyed=True)
    assert missing.InstitutionName == PROJECT  # in the FIONA table: created
    hashed = _change(["0008,0050=hash"], keyed=True, AccessionNumber="ACC99")
    assert hashed.AccessionNumber.isdigit() and len(hashed.AccessionNumber) == 16
    assert hashed.AccessionNumber != dec(b"ACC99 ")[:16]  # keyed: not the guessable plain hash
    assert (
        _change(["0008,0050=hash"], keyed=True, AccessionNumber="ACC99").AccessionNumber
        == hashed.AccessionNumber
    )


def test_fiona_command_line_equivalent_with_and_without_event():
    ds = Dataset()
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.9.7.1"
    ds.ReferringPhysicianName = "Dr^House"
    plain = fiona().deidentify(ds, PARTICIPANT)
    assert plain.ReferringPhysicianName == "" and 0x00402001 not in plain
    assert plain.ClinicalTrialTimePointID == "" and plain.ClinicalTrialTimePointDescription == ""


# --- sequences, mapping, release --------------------------------------------------------------


def test_references_stay_consistent_across_objects():
    a, b = Dataset(), Dataset()
    a.SOPInstanceUID = "1.2.826.0.1.3680043.9.5.1"
    b.SOPInstanceUID = "1.2.826.0.1.3680043.9.5.2"
    ref = Dataset()
    ref.ReferencedSOPClassUID = synth.MR_STORAGE
    ref.ReferencedSOPInstanceUID = a.SOPInstanceUID
    b.ReferencedImageSequence = [ref]
    inner = Dataset()
    inner.StudyInstanceUID = "1.2.826.0.1.3680043.9.5.9"
    b.add_new(0x00081200, "SQ", Sequence([inner]))  # StudiesContainingOtherReferencedInstances
    d = fiona()
    oa, ob = d.deidentify(a, PARTICIPANT), d.deidentify(b, PARTICIPANT)
    assert ob.ReferencedImageSequence[0].ReferencedSOPInstanceUID == oa.SOPInstanceUID
    assert ob.ReferencedImageSequence[0].ReferencedSOPClassUID == synth.MR_STORAGE
    assert ob[0x00081200].value[0].StudyInstanceUID == project_uid("1.2.826.0.1.3680043.9.5.9")


def test_mapping_json():
    settings = DeidSettings.fiona(PROJECT)
    series = ["1.2.826.0.1.3680043.9.5.3", "1.2.826.0.1.3680043.9.5.2"]
    mapping = study_mapping(settings, "1.2.826.0.1.3680043.9.5.1", series + series[:1])
    assert mapping == {
        "StudyInstanceUID": {"1.2.826.0.1.3680043.9.5.1": project_uid("1.2.826.0.1.3680043.9.5.1")},
        "SeriesInstanceUID": {s: project_uid(s) for s in sorted(series)},
    }
    assert list(mapping["SeriesInstanceUID"]) == sorted(series)
    assert (
        study_mapping(deidentifier_for(settings), ["1.2.826.0.1.3680043.9.5.1"], series) == mapping
    )
    keyed = study_mapping(DeidSettings(project=PROJECT, secret="s"), "1.2.3.4", [])
    assert keyed["StudyInstanceUID"]["1.2.3.4"] == keyed_uid("1.2.3.4", b"s")


@pytest.mark.parametrize("vendor", ["SIEMENS", "GE", "PHILIPS"])
def test_release_check_clean_on_fiona_output_of_every_vendor(tmp_path, vendor):
    study = {
        "patient_name": "Hansen^Kari^Marie",
        "patient_id": "MRN31337",
        "accession": "ACC2024X",
        "study_description": "Brain research protocol",
    }
    files = synth.standard_mr_study(tmp_path / "mr", vendor, n_per_series=2, **study)
    files += synth.ct_study(tmp_path / "ct", vendor, n_images=2, **study)
    files += synth.secondary_capture(tmp_path / "sc", vendor, **study)
    files += synth.structured_report(tmp_path / "sr", vendor, **study)
    originals = [dcmread(f) for f in files]
    ids = collect_identifiers(originals)
    assert {"patient_name", "patient_id", "accession_number", "birth_date", "uid"} <= ids.kinds()
    d = fiona()
    for f in files:
        out = d.deidentify(dcmread(f), PARTICIPANT, EVENT)
        assert check_release(out, ids) == [], f
        back = dcmread(io.BytesIO(encode(out)))
        assert check_release(back, ids) == [], f
        assert back.PatientID == PARTICIPANT and back.InstitutionName == PROJECT
        assert back.StudyInstanceUID == project_uid(originals[0].StudyInstanceUID)
        assert back.file_meta.MediaStorageSOPInstanceUID == back.SOPInstanceUID
    if vendor == "SIEMENS":  # the diffusion allow-list still applies in FIONA mode
        dwi = [
            f for f, o in zip(files, originals, strict=True) if "diff" in str(o.SeriesDescription)
        ]
        out = d.deidentify(dcmread(dwi[-1]), PARTICIPANT)
        assert out.private_block(0x0029, "SIEMENS CSA HEADER")[0x10].value
