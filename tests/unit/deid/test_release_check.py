"""The release check: what it collects from the originals, what counts as a hit and what not."""

from __future__ import annotations

from pydicom import dcmread
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.uid import ExplicitVRLittleEndian

from fionagw.deid import DeidSettings, check_release, collect_identifiers, deidentifier_for
from fionagw.deid.batch import deidentify_files
from fionagw.deid.patterns import valid_fodselsnummer
from fionagw.deid.release import REGISTRY_UID_TAGS, retained_kinds

STUDY = "1.2.826.0.1.3680043.8.498.11"
SERIES = "1.2.826.0.1.3680043.8.498.12"
SOP = "1.2.826.0.1.3680043.8.498.13"
FRAME = "1.2.826.0.1.3680043.8.498.14"
IRRADIATION = "1.2.826.0.1.3680043.8.498.15"
CONCATENATION = "1.2.826.0.1.3680043.8.498.16"
REFERENCED = "1.2.826.0.1.3680043.8.498.17"
PRIVATE_SOP_CLASS = "1.3.12.2.1107.5.9.1"  # Siemens CSA non-image storage
IMPLEMENTATION = "1.2.276.0.7230010.3.0.3.6.4"  # dcmtk's implementation class
SNOMED = "2.16.840.1.113883.6.96"


def _fnr(birth: str) -> str:
    """A valid fodselsnummer for DDMMYY ``birth``: the first individual number with valid
    check digits."""
    for individual in range(100, 1000):
        for k in range(100):
            if valid_fodselsnummer(text := f"{birth}{individual}{k:02d}"):
                return text
    raise AssertionError("no fodselsnummer for " + birth)


def _original() -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = IMPLEMENTATION
    ds.file_meta.MediaStorageSOPClassUID = PRIVATE_SOP_CLASS
    ds.file_meta.MediaStorageSOPInstanceUID = SOP
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = PRIVATE_SOP_CLASS
    ds.SOPInstanceUID, ds.StudyInstanceUID, ds.SeriesInstanceUID = SOP, STUDY, SERIES
    ds.FrameOfReferenceUID = FRAME
    ds.IrradiationEventUID = IRRADIATION
    ds.ConcatenationUID = CONCATENATION
    ds.PatientName = "Nordmann^Kari^Ek"
    ds.PatientID = "12345678901"
    ds.PatientBirthDate = "19790228"
    ds.PatientTelephoneNumbers = "+47 55 97 50 00"
    ds.InstitutionName = "SIEMENS"
    ds.PerformingPhysicianName = "Per^Olsen"
    ds.Manufacturer = "SIEMENS"
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "T-A0100", "SRT", "Brain"
    code.CodingSchemeUID = SNOMED
    ds.AnatomicRegionSequence = Sequence([code])
    ref = Dataset()
    ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = PRIVATE_SOP_CLASS, REFERENCED
    ds.ReferencedImageSequence = Sequence([ref])
    # identifying values only nested: a scheduled physician, an SR observer, a reviewer,
    # an order number, a private person name
    request = Dataset()
    request.RequestedProcedureID = "RP-112234"
    step = Dataset()
    step.ScheduledPerformingPhysicianName = "Solberg^Ingrid"
    request.ScheduledProcedureStepSequence = Sequence([step])
    ds.RequestAttributesSequence = Sequence([request])
    observer = Dataset()
    observer.ValueType, observer.PersonName = "PNAME", "Haugen^Nils"
    ds.ContentSequence = Sequence([observer])
    ds.SecondaryReviewerName = "Bakken^Liv"
    ds.StudyID = "G9002"
    ds.private_block(0x0029, "ACME 1.0", create=True).add_new(0x10, "PN", "Lie^Trond")
    return ds


def _output(**text: str) -> Dataset:
    """An output holding the registry UIDs and descriptive values, and ``text`` (tag=value)."""
    out = Dataset()
    out.file_meta = FileMetaDataset()
    out.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    out.file_meta.ImplementationClassUID = IMPLEMENTATION
    out.file_meta.MediaStorageSOPClassUID = PRIVATE_SOP_CLASS
    out.SOPClassUID = PRIVATE_SOP_CLASS
    out.Manufacturer = "SIEMENS"
    out.BodyPartExamined = "HEAD"
    code = Dataset()
    code.CodingSchemeUID, code.CodeMeaning = SNOMED, "Brain"
    out.AnatomicRegionSequence = Sequence([code])
    out.SeriesInstanceUID = "2.25.12345678901999"  # a new UID holding the patient ID's digits
    for keyword, value in text.items():
        setattr(out, keyword, value)
    return out


def _kinds(hits) -> dict[str, str]:
    return {h.path: h.kind for h in hits}


# --- 5: what is not identifying is never a hit ----------------------------------------------


def test_registry_uids_are_not_collected_and_instance_uids_at_any_depth_are():
    ids = collect_identifiers(_original())
    assert {STUDY, SERIES, SOP, FRAME, IRRADIATION, CONCATENATION, REFERENCED} <= ids.uids
    assert not {PRIVATE_SOP_CLASS, IMPLEMENTATION, SNOMED} & ids.uids
    assert {0x00080016, 0x00020010, 0x00020012, 0x0008010C, 0x00081150} <= REGISTRY_UID_TAGS
    assert 0x00080018 not in REGISTRY_UID_TAGS and 0x00200052 not in REGISTRY_UID_TAGS


def test_output_with_registry_uids_descriptive_values_and_new_uids_has_no_hit():
    assert check_release(_output(), collect_identifiers(_original())) == []


def test_pooled_values_count_only_where_free_text_stands():
    ids = collect_identifiers(_original())
    out = _output(
        ImageComments="SIEMENS scanner",  # the institution word in free text
        StudyDescription=f"old {FRAME}",  # an instance UID in free text
        SeriesDescription="x12345678901y",  # the patient ID glued into a token
    )
    assert _kinds(check_release(out, ids)) == {
        "(0020,4000)": "institution",
        "(0008,1030)": "uid",
        "(0008,103E)": "patient_id",
    }


def test_engine_stamps_are_never_hits():
    """FIONA mode stamps {Per DICOM PS 3.15 AnnexE}; a physician called Per is no reason
    to refuse, nor are the code meanings of the profile's options."""
    original = _original()
    ids = collect_identifiers(original)
    engine = deidentifier_for(DeidSettings.fiona("PER"))
    out = engine.deidentify(_original(), "PER0001", "baseline")
    assert "{Per DICOM PS 3.15 AnnexE}" in list(out.DeidentificationMethod)
    assert not any(h.path.startswith("(0012,") for h in check_release(out, ids))
    keyed = deidentifier_for(DeidSettings(project="Basic", secret="k"))
    out = keyed.deidentify(_original(), "P1", None)
    ids.add("person_name", "Basic^Profile^Retain")  # words of the method and code meanings
    assert not any(h.path.startswith("(0012,") for h in check_release(out, ids))


# --- 4: collected from every element, decoded, and patterns ---------------------------------


def test_values_only_nested_or_private_are_collected_and_found():
    ids = collect_identifiers(_original())
    planted = {
        "ImageComments": "RP-112234",  # requested procedure ID inside a sequence
        "StudyDescription": "Solberg",  # scheduled performing physician, nested twice
        "SeriesDescription": "read by Haugen",  # SR person observer
        "ProtocolName": "Bakken",  # SecondaryReviewerName, not in Table E.1-1
        "PerformedProcedureStepDescription": "Trond",  # private PN of explicit VR
        "DerivationDescription": "G9002",  # StudyID
    }
    hits = _kinds(check_release(_output(**planted), ids))
    assert hits == {
        "(0020,4000)": "visit_id",
        "(0008,1030)": "person_name",
        "(0008,103E)": "person_name",
        "(0018,1030)": "person_name",
        "(0040,0254)": "person_name",
        "(0008,2111)": "study_id",
    }


def test_birth_date_phone_and_two_letter_name_part_in_any_written_form():
    ids = collect_identifiers(_original())
    for text, kind in (
        ("DOB 28.02.1979", "birth_date"),
        ("DOB 28/02/1979", "birth_date"),
        ("born 1979-02-28", "birth_date"),
        ("born 28 Feb 1979", "birth_date"),
        ("19790228103000", "birth_date"),
        ("ring 55975000", "phone"),
        ("ring +47 55-97-50-00", "phone"),
        ("FA map from DTI of Ek", "patient_name"),
    ):
        assert _kinds(check_release(_output(ImageComments=text), ids)) == {"(0020,4000)": kind}
    assert check_release(_output(ImageComments="Ekko 128.02.19790 1979"), ids) == []


def test_national_id_pattern_is_found_without_a_known_value():
    ids = collect_identifiers(Dataset())
    number = _fnr("280279")
    assert valid_fodselsnummer(number)
    assert _kinds(check_release(_output(ImageComments=f"pas {number}"), ids)) == {
        "(0020,4000)": "national_id"
    }
    wrong = number[:-1] + str((int(number[-1]) + 1) % 10)  # a check digit off
    assert not valid_fodselsnummer(wrong)
    assert check_release(_output(ImageComments=f"count {wrong}"), ids) == []
    # a UID component or version number that happens to be valid is no national ID
    assert check_release(_output(ImageComments=f"ref 1.2.{number}.3 v{number}.1"), ids) == []


def _raw(tag: int, vr: str, value: bytes) -> RawDataElement:
    return RawDataElement(BaseTag(tag), vr, len(value), value, 0, False, True)


def _file(tmp_path, charset, **values) -> Dataset:
    """``values`` written to a Part-10 file by pydicom in ``charset`` and read back raw."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = PRIVATE_SOP_CLASS
    ds.file_meta.MediaStorageSOPInstanceUID = SOP
    if charset:
        ds.SpecificCharacterSet = charset
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    path = tmp_path / "f.dcm"
    ds.save_as(path, enforce_file_format=True)
    return dcmread(path)


CHARSETS = [  # (0008,0005), a name, one of its parts, text holding that part
    (["", "ISO 2022 IR 87"], "Yamada^Tarou=山田^太郎=やまだ^たろう", "山田", "検査 山田太郎 脳"),
    ("GB18030", "Wang^XiaoDong=王^小东", "小东", "头部 王小东"),
    ("ISO_IR 192", "Øvrebø^Åse", "øvrebø", "Brain ØVREBØ"),
    (None, "Øvrebø^Åse", "åse", "til Åse"),  # Latin-1, undeclared
]


def test_values_are_decoded_with_their_character_set(tmp_path):
    """Japanese (ISO 2022 IR 87 with escapes), Chinese (GB18030), UTF-8 and undeclared
    Latin-1: collected decoded from raw originals, found in raw outputs of the same set."""
    for charset, name, part, text in CHARSETS:
        ids = collect_identifiers(_file(tmp_path, charset, PatientName=name))
        assert part in ids.values, (charset, sorted(ids.values))
        out = _file(tmp_path, charset, StudyDescription=text)
        assert type(out._dict[BaseTag(0x00081030)]) is RawDataElement
        assert _kinds(check_release(out, ids)) == {"(0008,1030)": "patient_name"}, charset
        assert type(out._dict[BaseTag(0x00081030)]) is RawDataElement  # checked, not converted


def test_public_element_stored_as_un_is_collected(tmp_path):
    orig = Dataset()
    orig._dict[BaseTag(0x00100010)] = _raw(0x00100010, "UN", b"Storvik^Jon ")
    orig._dict[BaseTag(0x00100030)] = _raw(0x00100030, "UN", b"19650317")
    ids = collect_identifiers(orig)
    hits = check_release(_output(ImageComments="Storvik 17.03.1965"), ids)
    assert {h.kind for h in hits} == {"patient_name", "birth_date"}


def test_study_identifiers_from_a_real_file_round_trip(tmp_path):
    path = tmp_path / "orig.dcm"
    ds = _original()
    ds.save_as(path, enforce_file_format=True)
    ids = collect_identifiers(dcmread(path))
    assert {"solberg", "haugen", "bakken", "trond", "rp-112234", "g9002", "ek"} <= set(ids.values)


def test_what_the_project_retains_is_no_hit_whoever_collected_the_study(tmp_path):
    """anonymizeAndSend collects the study's identifiers without the project's retain options:
    the batch drops the retained kinds, so a kept serial number or institution is sent."""
    path = tmp_path / "in.dcm"
    ds = _original()
    ds.DeviceSerialNumber, ds.StationName = "SN4477123", "MRC40123"
    ds.InstitutionName = "Haukeland Universitetssjukehus"
    ds.save_as(path, enforce_file_format=True)
    study = collect_identifiers(dcmread(path))  # institution and device included
    assert {"device", "institution"} <= study.kinds()
    settings = DeidSettings(
        project="KEEP",
        secret="k",
        options=frozenset({"retain_device_identity", "retain_institution_identity"}),
    )
    result = deidentify_files([(path, tmp_path / "out.dcm")], settings, "P1", None, study, 1)
    hits = [h for _, hs in result.hits for h in hs]
    assert not [h for h in hits if h.kind in ("device", "institution")], hits


def test_retain_options_mean_the_same_to_the_collector_and_to_the_batch():
    """One place says what a project retains (release.retained): collecting with a project's
    options gives what collecting everything and dropping the retained kinds gives."""
    ds = _original()
    ds.DeviceSerialNumber, ds.PerformedStationName = "SN4477123", "HUS-MR3"
    ds.InstitutionName = "Haukeland Universitetssjukehus"
    everything = collect_identifiers(ds)
    for options in (
        frozenset(),
        frozenset({"retain_device_identity"}),
        frozenset({"retain_institution_identity"}),
        frozenset({"retain_uids", "retain_device_identity"}),
    ):
        kinds, uids = retained_kinds(options)
        direct = collect_identifiers(ds, options=options)
        assert direct.values == everything.without(kinds, uids=uids).values, options
        assert direct.uids == everything.without(kinds, uids=uids).uids, options
        assert ("device" in direct.kinds()) == ("retain_device_identity" not in options)
