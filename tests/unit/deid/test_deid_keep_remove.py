"""Issue 12, the engine: what each mode removes, keeps and remaps (one test per defect class).

Each test plants identifying values in a synthetic object, de-identifies it with the FIONA
mode, the keyed mode and the project default, and asserts the values are gone (or remapped
consistently) while what research needs stays.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from pydicom import dcmread, dcmwrite
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian

from fionagw.classify.csa import ascconv, parse_csa
from fionagw.config import load_config
from fionagw.config.projects import Project
from fionagw.deid import DeidSettings, check_release, collect_identifiers, deidentifier_for
from fionagw.deid.batch import deidentify_files
from fionagw.deid.engine import DroppedObject
from fionagw.deid.keep_list import KEEP
from fionagw.deid.profile import DEFAULT_OPTIONS, Profile
from fionagw.deid.project_settings import settings_for_project
from fionagw.deid.writer import encode
from support import synth
from support.site import ROOT, write_config

KEY = "project-secret"
PARTICIPANT = "P0001"
STUDY_UID = "1.2.826.0.1.3680043.9.7.1"
SERIES_UID = "1.2.826.0.1.3680043.9.7.2"
SOP_UID = "1.2.826.0.1.3680043.9.7.3"
OTHER_STUDY = "1.2.826.0.1.3680043.9.7.10"
SOURCE_SOP = "1.2.826.0.1.3680043.9.7.11"
MR = "1.2.840.10008.5.1.4.1.1.4"


def site(tmp_path):
    return load_config(write_config(tmp_path, tracker={"projects_file": str(tmp_path / "p.yml")}))


def project(**deid) -> Project:
    return Project(name="DEMO", participant_id=r"^P\d{4}$", deid=deid)


def keyed(**kw) -> DeidSettings:
    return DeidSettings(project="DEMO", secret=KEY, **kw)


def default() -> DeidSettings:
    return keyed(options=DEFAULT_OPTIONS)


def fiona(**kw) -> DeidSettings:
    return DeidSettings.fiona("DEMO", **kw)


MODES = {"fiona": fiona, "keyed": keyed, "default": default}


def ref_item(study: str | None = None, sop: str | None = None) -> Dataset:
    item = Dataset()
    if study:
        item.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"
        item.ReferencedSOPInstanceUID = study
    if sop:
        item.ReferencedSOPClassUID = MR
        item.ReferencedSOPInstanceUID = sop
    return item


def mr(**extra) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = MR
    ds.SOPInstanceUID = SOP_UID
    ds.StudyInstanceUID = STUDY_UID
    ds.SeriesInstanceUID = SERIES_UID
    ds.FrameOfReferenceUID = "1.2.826.0.1.3680043.9.7.4"
    ds.Modality = "MR"
    ds.PatientName = "Hansen^Kari^Marie"
    ds.PatientID = "MRN31337"
    ds.PatientBirthDate = "19790228"
    ds.PatientSex = "F"
    ds.PatientAge = "045Y"
    ds.PatientWeight = "61"
    ds.AccessionNumber = "ACC2024X"
    ds.StudyDate = "20240115"
    ds.StudyDescription = "Brain research protocol Hansen"
    ds.SeriesDescription = "T1 MPRAGE sag"
    ds.ProtocolName = "t1_mprage_sag"
    ds.Manufacturer = "SIEMENS"
    ds.ManufacturerModelName = "Prisma"
    ds.MagneticFieldStrength = "3"
    ds.RepetitionTime = "2300"
    ds.EchoTime = "2.98"
    ds.SliceThickness = "1"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND"]
    for key, value in extra.items():
        setattr(ds, key, value)
    return ds


def part10(ds: Dataset) -> Dataset:
    """``ds`` written and read back, as the gateway sees a file (raw elements)."""
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.set_original_encoding(False, True)
    return dcmread(io.BytesIO(encode(ds)))


def run(settings: DeidSettings, ds: Dataset) -> tuple[Dataset, Dataset]:
    """(de-identified object read back from its bytes, original)."""
    original = part10(ds)
    engine = deidentifier_for(settings)
    out = engine.deidentify(part10(ds), PARTICIPANT, "baseline")
    back = dcmread(io.BytesIO(encode(out)))
    # the check honours the project's retain options, as anonymizeAndSend and fiona deid do
    hits = check_release(back, collect_identifiers(original, options=settings.options))
    assert not hits, [str(h) for h in hits]
    return back, original


# --- class 10: over-scrubbing ----------------------------------------------------------------


def test_project_default_is_basic_clean_descriptors_retain_characteristics(tmp_path):
    settings = settings_for_project(project(), site(tmp_path))
    assert settings.options == DEFAULT_OPTIONS
    assert "retain_device_identity" not in settings.options
    explicit = settings_for_project(project(options=[]), site(tmp_path))
    assert explicit.options == frozenset()  # a project that lists no option gets Basic


@pytest.mark.parametrize("mode", ["default", "fiona"])
def test_descriptions_protocol_sex_age_kept_and_cleaned(mode):
    out, _ = run(MODES[mode](), mr())
    assert out.SeriesDescription == "T1 MPRAGE sag"
    assert out.ProtocolName == "t1_mprage_sag"
    assert "Brain research protocol" in out.StudyDescription
    assert "Hansen" not in out.StudyDescription  # the patient's name, scrubbed
    assert (out.PatientSex, out.PatientAge, out.PatientWeight) == ("F", "045Y", 61)
    assert out.Manufacturer == "SIEMENS" and out.ManufacturerModelName == "Prisma"
    assert (out.RepetitionTime, out.EchoTime, out.MagneticFieldStrength) == (2300, 2.98, 3)


@pytest.mark.parametrize("mode", ["fiona", "keyed", "default"])
def test_references_are_remapped_not_deleted(mode):
    settings = MODES[mode]()
    engine = deidentifier_for(settings)
    request = Dataset()
    request.RequestedProcedureID = "RP-112234"
    request.ScheduledProcedureStepID = "SPS9"
    request.AccessionNumber = "ACC2024X"
    request.ReferencedStudySequence = Sequence([ref_item(study=OTHER_STUDY)])
    ds = mr(
        ReferencedStudySequence=Sequence([ref_item(study=OTHER_STUDY)]),
        SourceImageSequence=Sequence([ref_item(sop=SOURCE_SOP)]),
        ReferencedImageSequence=Sequence([ref_item(sop=SOURCE_SOP)]),
        RequestAttributesSequence=Sequence([request]),
    )
    out, _ = run(settings, ds)
    for keyword in ("ReferencedStudySequence", "SourceImageSequence", "ReferencedImageSequence"):
        (item,) = out[keyword].value
        expected = OTHER_STUDY if keyword == "ReferencedStudySequence" else SOURCE_SOP
        assert item.ReferencedSOPInstanceUID == engine.uid(expected), keyword
    (item,) = out.RequestAttributesSequence
    assert item.ReferencedStudySequence[0].ReferencedSOPInstanceUID == engine.uid(OTHER_STUDY)
    assert "RequestedProcedureID" not in item and "ScheduledProcedureStepID" not in item
    assert item.get("AccessionNumber", "") in ("", engine.uid(OTHER_STUDY)) or (
        item.AccessionNumber != "ACC2024X"
    )


def _sr() -> Dataset:
    ds = mr(Modality="SR")
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.22"
    text = Dataset()
    text.RelationshipType = "CONTAINS"
    text.ValueType = "TEXT"
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "121071", "DCM", "Finding"
    text.ConceptNameCodeSequence = Sequence([code])
    text.TextValue = "Small lesion left frontal, seen by Kari Hansen's GP"
    image = Dataset()
    image.RelationshipType = "CONTAINS"
    image.ValueType = "IMAGE"
    image.ReferencedSOPSequence = Sequence([ref_item(sop=SOURCE_SOP)])
    ds.ContentSequence = Sequence([text, image])
    return ds


@pytest.mark.parametrize("mode", ["fiona", "keyed", "default"])
def test_sr_content_is_cleaned_not_emptied(mode):
    settings = MODES[mode]()
    out, _ = run(settings, _sr())
    text, image = out.ContentSequence
    assert text.ConceptNameCodeSequence[0].CodeMeaning == "Finding"
    assert "Small lesion left frontal" in text.TextValue
    assert "Kari" not in text.TextValue and "Hansen" not in text.TextValue
    sop = image.ReferencedSOPSequence[0].ReferencedSOPInstanceUID
    assert sop == deidentifier_for(settings).uid(SOURCE_SOP)


# --- class 6: device identity ------------------------------------------------------------


DEVICE = {
    "DeviceSerialNumber": "SN-123456",
    "StationName": "MRC12345",
    "PerformedStationName": "MR-HAUKELAND-3",
    "PerformedStationAETitle": "HUSMR3",
    "ScheduledStationName": "MR-HAUKELAND-3S",
}


@pytest.mark.parametrize("mode", ["fiona", "keyed", "default"])
def test_device_identity_removed_in_every_mode(mode):
    out, original = run(MODES[mode](), mr(**DEVICE))
    for keyword, value in DEVICE.items():
        assert keyword not in out or value not in str(out[keyword].value), keyword
    assert out.Manufacturer == "SIEMENS"  # the make and model say what research needs


@pytest.mark.parametrize("mode", ["fiona", "keyed"])
def test_retain_device_identity_keeps_it(mode):
    out, _ = run(MODES[mode](options=frozenset({"retain_device_identity"})), mr(**DEVICE))
    assert out.DeviceSerialNumber == "SN-123456"
    assert out.PerformedStationName == "MR-HAUKELAND-3"


# --- class 1: attributes the table does not list ---------------------------------------


def _unlisted() -> Dataset:
    ds = mr()
    ds.add_new(0x00140104, "PN", "Olsen^Pia")  # Secondary Reviewer Name
    ds.add_new(0x00100033, "LO", "1357/11/09")  # Patient Birth Date in Alternative Calendar
    ds.add_new(0x60000022, "LO", "overlay of Kari Hansen")  # Overlay Description
    ds.add_new(0x60001500, "LO", "Hansen K")  # Overlay Label
    ds.add_new(0x00420010, "ST", "Report for Kari Hansen 1979")  # Document Title
    ds.add_new(0x00080034, "TM", "101010")  # Overlay Time (retired)
    ds.add_new(0x00081195, "UI", "1.2.826.0.1.3680043.9.7.77")  # Transaction UID
    ds.add_new(0x00181251, "SH", "Body")  # Transmit Coil Name: keep-list
    ds.add_new(0x00180087, "DS", "3")  # Magnetic Field Strength style number: kept
    ds.add_new(0x00089215, "SQ", Sequence([_code("113100", "Basic")]))  # codes kept
    step = Dataset()
    step.add_new(0x00400007, "LO", "MR brain for Hansen")  # SPS description (listed)
    step.add_new(0x00140104, "PN", "Olsen^Pia")
    ds.add_new(0x00400100, "SQ", Sequence([step]))  # Scheduled Procedure Step Sequence
    order = Dataset()
    order.add_new(0x00400031, "UT", "HUS order of Hansen Kari")  # Local Namespace Entity ID
    order.add_new(0x00400032, "UT", "1.2.826.0.1.3680043.9.7.78")  # Universal Entity ID
    order.add_new(0x00400033, "CS", "ISO")
    ds.add_new(0x00400026, "SQ", Sequence([order]))  # Order Filler Identifier Sequence
    ds.add_new(0x00091001, "LO", "private")
    ds.add_new(0x00410001, "LO", "retired text of Kari Hansen")  # unknown public tag
    return ds


def _code(value: str, meaning: str) -> Dataset:
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = value, "DCM", meaning
    return code


@pytest.mark.parametrize("mode", ["fiona", "keyed", "default"])
def test_unlisted_identifying_attributes_removed_or_cleaned(mode):
    settings = MODES[mode]()
    out, original = run(settings, _unlisted())
    assert 0x00140104 not in out and 0x00100033 not in out and 0x00410001 not in out
    for tag in (0x60000022, 0x60001500, 0x00420010):
        assert tag not in out or "Hansen" not in str(out[tag].value), hex(tag)
    if mode == "default":  # Clean Descriptors: the wording stays, cleaned
        assert out[0x60000022].value.startswith("overlay of")
    step = out[0x00400100].value[0]
    assert 0x00140104 not in step
    assert out[0x00081195].value not in ("", "1.2.826.0.1.3680043.9.7.77")  # replaced
    assert out[0x00181251].value == "Body" and out[0x00180087].value == 3
    assert out[0x00089215].value[0].CodeMeaning == "Basic"
    items = out.get(0x00400026)
    for item in items.value if items is not None else ():
        assert "Hansen" not in str(item.get(0x00400031, "")) and "9.7.78" not in str(
            item.get(0x00400032, "")
        )


@pytest.mark.parametrize("mode", ["fiona", "keyed", "default"])
def test_issuer_of_an_identifier_is_removed_and_checked(mode):
    """The issuer of an order number (Order Placer/Filler Identifier Sequence) names the
    hospital's system: removed in every mode, and the release check knows its value."""
    ds = mr()
    order = Dataset()
    order.add_new(0x00400031, "UT", "ORD-4471-HUS")  # Local Namespace Entity ID, nothing else
    ds.add_new(0x00400027, "SQ", Sequence([order]))  # Order Filler Identifier Sequence
    out, original = run(MODES[mode](), ds)
    assert "ORD-4471-HUS" not in str(out)
    leak = Dataset()
    leak.ImageComments = "order ORD-4471-HUS"
    assert [h.kind for h in check_release(leak, collect_identifiers(original))] == ["institution"]


@pytest.mark.parametrize("mode", ["fiona", "keyed", "default"])
def test_code_meaning_kept_and_cleaned_of_the_studys_names(mode):
    """A local code's meaning is typed by a person (a DCMTK report's "Report Text" beside an
    observer called "Enter text"): kept in every mode, cleaned of the study's names, so it
    is neither a leak nor a refusal; a meaning without an identifier stays as it is."""
    ds = mr()
    ds.OperatorsName = "Enter text"  # a person of the study
    local = _code("IHE.09", "Report Text")
    local.CodingSchemeDesignator = "99_OFFIS_DCMTK"
    ds.add_new(
        0x00400260, "SQ", Sequence([local, _code("113100", "Basic")])
    )  # Performed Protocol Code
    out, _ = run(MODES[mode](), ds)
    meanings = [item.CodeMeaning for item in out[0x00400260].value]
    assert meanings == ["Report ***", "Basic"]


def test_project_keep_list_extends_the_reviewed_one(tmp_path):
    settings = settings_for_project(project(keep=["0042,0010"]), site(tmp_path))
    assert settings.keep_tags == (0x00420010,)
    ds = mr()
    ds.add_new(0x00420010, "ST", "Visual field report")
    out = deidentifier_for(settings).deidentify(part10(ds), PARTICIPANT)
    assert out[0x00420010].value == "Visual field report"
    with pytest.raises(Exception, match=r"deid.keep\[0\]"):
        settings_for_project(project(keep=["0009,1001"]), site(tmp_path))


# --- class 2: public attributes stored as UN ---------------------------------------------


def _un(tag: int, value: bytes) -> RawDataElement:
    if len(value) % 2:
        value += b" "
    return RawDataElement(BaseTag(tag), "UN", len(value), value, 0, False, True)


def _implicit_item(item: Dataset) -> bytes:
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, True
    write_dataset(fp, item)
    body = fp.getvalue()
    return b"\xfe\xff\x00\xe0" + len(body).to_bytes(4, "little") + body


@pytest.mark.parametrize("mode", ["fiona", "keyed", "default"])
def test_public_un_elements_are_processed_with_the_dictionary_vr(mode):
    settings = MODES[mode]()
    ds = mr()
    ref = Dataset()
    ref.ReferencedSOPClassUID = MR
    ref.ReferencedSOPInstanceUID = SOURCE_SOP
    ref.add_new(0x00081050, "PN", "Olsen^Pia")  # Performing Physician in an item
    ds._dict[BaseTag(0x0008002A)] = _un(0x0008002A, b"20240115101010")  # Acquisition DateTime
    ds._dict[BaseTag(0x00081050)] = _un(0x00081050, b"Olsen^Pia")  # Performing Physician
    ds._dict[BaseTag(0x00082112)] = _un(0x00082112, _implicit_item(ref))  # Source Image Seq
    ds._dict[BaseTag(0x00101010)] = _un(0x00101010, b"045Y")  # Patient's Age
    out, _ = run(settings, ds)
    assert "20240115" not in str(out.get("AcquisitionDateTime", ""))
    assert "PerformingPhysicianName" not in out or "Olsen" not in str(out.PerformingPhysicianName)
    (item,) = out.SourceImageSequence
    assert item.ReferencedSOPInstanceUID == deidentifier_for(settings).uid(SOURCE_SOP)
    assert "Olsen" not in str(item.get("PerformingPhysicianName", ""))
    if mode == "default":
        assert out.PatientAge == "045Y"


# --- class 9: encapsulated documents are dropped, never sent destroyed ----------------------


def _pdf(path) -> Path:
    ds = mr(Modality="DOC")
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.104.1"  # Encapsulated PDF Storage
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.DocumentTitle = "Report for Kari Hansen"
    ds.EncapsulatedDocument = b"%PDF-1.4 Kari Hansen MRN31337 %%EOF\n"
    ds = part10(ds)
    dcmwrite(path, ds, enforce_file_format=True)
    return path


@pytest.mark.parametrize("mode", ["fiona", "keyed", "default"])
def test_encapsulated_pdf_is_dropped_with_a_reason(mode, tmp_path):
    settings = MODES[mode]()
    pdf = _pdf(tmp_path / "doc.dcm")
    image = tmp_path / "mr.dcm"
    dcmwrite(
        image, part10(mr(SOPInstanceUID="1.2.826.0.1.3680043.9.7.5")), enforce_file_format=True
    )
    out = tmp_path / "out"
    ids = collect_identifiers([dcmread(pdf), dcmread(image)])
    jobs = [(pdf, out / "doc.dcm"), (image, out / "mr.dcm")]
    result = deidentify_files(jobs, settings, PARTICIPANT, None, identifiers=ids)
    assert result.ok and result.written == [out / "mr.dcm"]
    assert result.dropped == [(pdf, "dropped: encapsulated document")]
    assert not (out / "doc.dcm").exists()
    with pytest.raises(DroppedObject, match="encapsulated document"):
        deidentifier_for(settings).deidentify(dcmread(pdf), PARTICIPANT)


# --- class 7: Siemens CSA headers carry original UIDs ---------------------------------------

FOR_UID = "1.2.826.0.1.3680043.9.7.4"
LOCALIZER = "1.2.826.0.1.3680043.9.7.60"


def _phoenix() -> str:
    return "\n".join(
        [
            "### ASCCONV BEGIN ###",
            'tProtocolName\t = \t""t1 for Hansen""',
            f'sProtConsistencyInfo.tReferenceImage0\t = \t""{LOCALIZER}""',
            f'sProtConsistencyInfo.tFrameOfReference\t = \t""{FOR_UID}""',
            "sSliceAcceleration.lMultiBandFactor\t = \t3",
            "sKSpace.dPhaseResolution\t = \t0.75",
            "sTXSPEC.asNucleusInfo[0].lFrequency\t = \t123250000",
            "### ASCCONV END ###",
        ]
    )


def _siemens(csa1: bool = False) -> Dataset:
    ds = mr()
    image = synth.encode_csa(
        [
            ("B_value", "IS", [1000]),
            ("DiffusionGradientDirection", "FD", [0.5, 0.5, 0.70710678]),
            ("MosaicRefAcqTimes", "FD", [0.0, 412.5, 825.0]),
            ("PhaseEncodingDirectionPositive", "IS", [1]),
            ("ImaCoilString", "LO", ["HEA;HEP"]),
        ],
        csa1=csa1,
    )
    series = synth.encode_csa(
        [("UsedPatientWeight", "IS", [61]), ("MrPhoenixProtocol", "UN", [_phoenix()])],
        csa1=csa1,
    )
    block = ds.private_block(0x0029, "SIEMENS CSA HEADER", create=True)
    block.add_new(0x10, "OB", image + b"\0" * (len(image) % 2))
    block.add_new(0x20, "OB", series + b"\0" * (len(series) % 2))
    return ds


@pytest.mark.parametrize("mode", ["fiona", "keyed", "default"])
def test_csa_uids_remapped_names_scrubbed_analysis_values_kept(mode):
    settings = MODES[mode]()
    engine = deidentifier_for(settings)
    out, _ = run(settings, _siemens())  # run() asserts the release check finds nothing
    image = parse_csa(out.private_block(0x0029, "SIEMENS CSA HEADER")[0x10].value)
    series = parse_csa(out.private_block(0x0029, "SIEMENS CSA HEADER")[0x20].value)
    assert image["B_value"] == [1000] and image["PhaseEncodingDirectionPositive"] == [1]
    assert image["MosaicRefAcqTimes"] == [0.0, 412.5, 825.0]
    assert image["DiffusionGradientDirection"] == [0.5, 0.5, 0.70710678]
    proto = ascconv(series["MrPhoenixProtocol"][0])
    assert proto["sSliceAcceleration.lMultiBandFactor"] == "3"
    assert proto["sKSpace.dPhaseResolution"] == "0.75"
    assert proto["sTXSPEC.asNucleusInfo[0].lFrequency"] == "123250000"
    assert proto["sProtConsistencyInfo.tFrameOfReference"] == engine.uid(FOR_UID)
    assert proto["sProtConsistencyInfo.tReferenceImage0"] == engine.uid(LOCALIZER)
    assert out.FrameOfReferenceUID == engine.uid(FOR_UID)  # the same UID, the same new UID
    assert "Hansen" not in proto["tProtocolName"] and proto["tProtocolName"].startswith("t1 for")


def test_csa1_with_a_uid_is_removed_and_without_is_kept():
    out, _ = run(keyed(), _siemens(csa1=True))
    block = out.private_block(0x0029, "SIEMENS CSA HEADER")
    assert 0x00291020 not in out  # its protocol holds UIDs: removed, not sent opaque
    assert parse_csa(block[0x10].value)["B_value"] == [1000]  # no UID in it: kept


# --- a regex tag change on a numeric element -----------------------------------------------


@pytest.mark.parametrize(
    ("change", "keyword", "expected"),
    [
        ("0028,0010=^(.*)$", "Rows", 64),  # US: the number it captured
        ("0028,0010=^(x)", "Rows", None),  # no match: empty, not "FIONA: no match" in a US
        ("0018,0050=^(x)", "SliceThickness", None),  # DS
        ("0020,0013=^([0-9]+)", "InstanceNumber", 12),  # IS
        ("0018,0081=^([0-9]+)", "EchoTime", 2),  # DS: the integer part
    ],
)
def test_regex_tag_change_on_a_number_writes_a_number_or_nothing(change, keyword, expected):
    settings = keyed(regex_tag_changes=(change,))
    out, _ = run(settings, mr(Rows=64, InstanceNumber="12"))
    value = out[keyword].value
    assert value in (None, "") if expected is None else value == expected, value


def test_keep_list_is_documented_and_holds_only_unlisted_text():
    doc = (ROOT / "docs" / "deidentification.md").read_text()
    section = doc.split("### The keep-list", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| \(([0-9A-F]{4}),([0-9A-F]{4})\) \|", section, re.MULTILINE)
    assert {int(g + e, 16) for g, e in rows} == set(KEEP)
    profile = Profile()
    for tag in KEEP:  # the table decides for what it lists; numbers and codes need no list
        assert profile.action(tag) is None and dictionary_VR(tag) in ("LO", "SH", "ST", "UC", "UR")


def test_file_meta_names_our_writer_not_the_senders_software():
    ds = mr()
    original = part10(ds)
    original.file_meta.ImplementationClassUID = "1.2.826.0.1.3680043.9.7.99"  # the sender's
    original.file_meta.ImplementationVersionName = "SENDER_1"
    out = dcmread(io.BytesIO(encode(deidentifier_for(keyed()).deidentify(original, PARTICIPANT))))
    assert out.file_meta.ImplementationClassUID == PYDICOM_IMPLEMENTATION_UID
    assert out.file_meta.ImplementationVersionName.startswith("FIONAGW_")
