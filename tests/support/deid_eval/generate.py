"""The evaluation set: synthetic files planting identifying values where real hospital files
carry them, in every transfer syntax the receiver accepts, with the answer key.

``write_eval_set(folder)`` writes the files and returns the ``Case`` of each. One patient
(with one Japanese file whose name has ideographic groups), one study of several series:

* ``mr``: an MR image with the full identity header; attributes Table E.1-1 does not list
  (SecondaryReviewerName, PatientBirthDateInAlternativeCalendar, an overlay description,
  ScheduledProcedureStepSequence and OrderFillerIdentifierSequence items); free text with
  IDs, a birth date and a two-letter name part; device and station identity; a code item
  with its CodingSchemeUID; a physician called Per; an institution named like the vendor's
  word; references (SourceImageSequence, ReferencedStudySequence, RequestAttributesSequence);
  a Siemens CSA series header whose MrPhoenixProtocol carries the name and the original
  frame of reference UID, longer than 4 KB; in implicit VR, explicit VR little and big
  endian, deflated, and the encapsulated syntaxes RLE, JPEG baseline, JPEG 2000 and HTJ2K;
* ``un``: public attributes stored as UN (a DT, and a whole sequence) in explicit and
  deflated syntaxes;
* ``ja``: a study description naming the patient in ISO 2022 IR 87 (escapes);
* ``sr``: a Basic Text SR whose content names the patient, staff and the birth date;
* ``pdf``: an encapsulated PDF with a document title naming the patient;
* ``dup``: two different files sharing one SOP Instance UID.

The answer key (``Case``) says what must go (``phi``: text values), what must stay
(``retained``: text at a path that must still contain the words; ``tags``: values that must
be equal), which dates must move, which instance UIDs must change and which references must
follow, and whether the file must be sent at all.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from pathlib import Path

from pydicom import config, dcmread
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    HTJ2KLossless,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    RLELossless,
)

from support.synth import encode_csa, phoenix_protocol

NATIVE = (ImplicitVRLittleEndian, ExplicitVRLittleEndian, ExplicitVRBigEndian)
SYNTAXES = (
    *NATIVE,
    DeflatedExplicitVRLittleEndian,
    RLELossless,
    JPEGBaseline8Bit,
    JPEG2000Lossless,
    HTJ2KLossless,
)
EXPLICIT = (ExplicitVRLittleEndian, DeflatedExplicitVRLittleEndian)
MR_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
SR_STORAGE = "1.2.840.10008.5.1.4.1.1.88.11"
PDF_STORAGE = "1.2.840.10008.5.1.4.1.1.104.1"
ROOT = "1.2.826.0.1.3680043.8.498.7700"  # an example root: invented instance UIDs
IMPLEMENTATION = "1.2.826.0.1.3680043.8.498.1"  # pydicom's implementation class root
SNOMED = "2.16.840.1.113883.6.96"

# the patient, the staff and the places: every one of these must be gone from every output
PATIENT = {
    "PatientName": "Ek^Kari",
    "PatientID": "12345678901",
    "OtherPatientIDs": "OP-99881",
    "AccessionNumber": "ACC778899",
    "StudyID": "G9002",
    "PatientBirthDate": "19790228",
    "PatientAddress": "Haukelandsveien 22, 5021 Bergen",
    "PatientTelephoneNumbers": "+47 55975000",
    "InstitutionName": "Haukeland Universitetssjukehus",
    "InstitutionAddress": "Jonas Liesvei 65, 5021 Bergen",
    "InstitutionalDepartmentName": "Radiologisk avdeling",
    "ReferringPhysicianName": "Per^Olsen",
    "PerformingPhysicianName": "Solberg^Ingrid",
    "OperatorsName": "Haugen^Nils",
    "DeviceSerialNumber": "SN4477123",
    "StationName": "MRC40123",
}
PHI = [
    "Ek",
    "Kari",
    "12345678901",
    "OP-99881",
    "ACC778899",
    "G9002",
    "RP-112234",
    "19790228",
    "1979-02-28",
    "28.02.1979",
    "Haukelandsveien",
    "55975000",
    "Haukeland Universitetssjukehus",
    "Jonas Liesvei",
    "Radiologisk avdeling",
    "Olsen",
    "Solberg",
    "Ingrid",
    "Haugen",
    "Nils",
    "Bakken",
    "Liv",
    "SN4477123",
    "MRC40123",
    "HUS-MR3",
    "HUSMR3",
    "1399-12-09",
    "ORD-4471-HUS",
]
STUDY_DATE = "20240305"
DATES = {"StudyDate": STUDY_DATE, "SeriesDate": STUDY_DATE, "AcquisitionDate": STUDY_DATE}
KEPT = {
    "Modality": "MR",
    "RepetitionTime": "2300",
    "EchoTime": "2.98",
    "SliceThickness": "1",
    "PatientSex": "F",
    "PatientAge": "045Y",
    "BodyPartExamined": "HEAD",
    "Manufacturer": "SIEMENS",
    "MagneticFieldStrength": "3",
}


@dataclass
class Case:
    """One planted file and its answer key."""

    name: str
    path: Path
    instance: int  # InstanceNumber: how the scorer finds the output of this file
    syntax: str
    must_send: bool = True
    phi: list[str] = field(default_factory=lambda: list(PHI))
    # (path of keywords and item indices, words that must still be there)
    retained: list[tuple[tuple, str]] = field(default_factory=list)
    dates: dict[str, str] = field(default_factory=dict)  # keyword -> original DA/DT
    tags: dict[str, str] = field(default_factory=dict)  # keyword -> value kept as is
    uids: dict[str, str] = field(default_factory=dict)  # role -> original instance UID
    # (path to a UI element, role of the UID it must point to after remapping)
    references: list[tuple[tuple, str]] = field(default_factory=list)
    pixels: bytes | None = None  # sha256 of the pixel data / document


def _uid(*parts: object) -> str:
    return f"{ROOT}.{int(hashlib.sha256(repr(parts).encode()).hexdigest()[:16], 16)}"


STUDY_UID = _uid("study")
FRAME_UID = _uid("frame")
SERIES = {kind: _uid("series", kind) for kind in ("mr", "un", "ja", "sr", "pdf", "dup")}


def _base(kind: str, instance: int, syntax: str, sop_class: str = MR_STORAGE) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.ImplementationClassUID = IMPLEMENTATION
    ds.file_meta.SourceApplicationEntityTitle = "HUSPACS"
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = _uid("sop", kind, instance, syntax)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = STUDY_UID, SERIES[kind]
    ds.FrameOfReferenceUID = FRAME_UID
    ds.InstanceNumber = instance
    ds.SeriesNumber = 1 + list(SERIES).index(kind)
    for keyword, value in {**PATIENT, **DATES, **KEPT}.items():
        setattr(ds, keyword, value)
    ds.StudyTime = ds.SeriesTime = "101500"
    ds.StudyDescription = "MR hode med kontrast"
    ds.SeriesDescription = "T1 MPRAGE sag"
    ds.ProtocolName = "t1_mprage_sag_p2"
    return ds


def _case(ds: Dataset, name: str, path: Path, **kw) -> Case:  # type: ignore[no-untyped-def]
    case = Case(name, path, int(ds.InstanceNumber), str(ds.file_meta.TransferSyntaxUID), **kw)
    case.dates = {k: v for k, v in DATES.items()} | case.dates
    case.tags = dict(KEPT) | case.tags
    case.uids = {"study": STUDY_UID, "series": ds.SeriesInstanceUID, "sop": ds.SOPInstanceUID}
    case.uids["frame"] = FRAME_UID
    case.retained = [
        (("StudyDescription",), "MR hode med kontrast"),
        (("SeriesDescription",), "T1 MPRAGE sag"),
        (("ProtocolName",), "t1_mprage_sag_p2"),
        *case.retained,
    ]
    return case


def _payload_hash(path: Path) -> bytes:
    """The digest of the pixel data (or document) as a reader gets it from the file written
    (big endian OW is swapped on writing)."""
    ds = dcmread(path)
    payload = ds.get("PixelData") or ds.get("EncapsulatedDocument")
    return hashlib.sha256(payload).hexdigest().encode()


def _pixels(ds: Dataset, syntax: str, rng: random.Random) -> None:
    ds.Rows = ds.Columns = 16
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.PixelRepresentation = 0
    if syntax in NATIVE or syntax == DeflatedExplicitVRLittleEndian:
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
        data = bytes(rng.randrange(256) for _ in range(16 * 16 * 2))
        ds.PixelData = data
        ds["PixelData"].VR = "OW"
        return
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    fragment = b"\xff\xd8" + bytes(rng.randrange(256) for _ in range(200)) + b"\xff\xd9"
    ds.PixelData = encapsulate([fragment])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True


def _csa_series(long: bool) -> bytes:
    """A CSA series header whose protocol names the patient and the original frame UID."""
    extra = {"sProtConsistencyInfo.tPatientName": '""Ek^Kari""', "tFrameOfReference": FRAME_UID}
    if long:  # > 4 KB: a deflated file with a long element must not be refused
        extra |= {
            f"sCoilSelectMeas.aRxCoilSelectData[0].asList[{i}].lRxChannel": str(i)
            for i in range(160)
        }
    protocol = phoenix_protocol(
        protocol_name="t1_mprage_sag_p2",
        sequence_file="tfl",
        n_slices=176,
        wip_uuid="6f1a3c10-0000-4000-8000-000000000001",
        extra=extra,
    )
    return encode_csa(
        [
            ("MrPhoenixProtocol", "UN", [protocol]),
            ("SliceArray.Slice.1.Position.Sag", "FD", [0.0]),
        ]
    )


def _mr(folder: Path, instance: int, syntax: str, rng: random.Random, source: Case | None) -> Case:
    ds = _base("mr", instance, syntax)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND"]
    ds.ImageComments = "StudyID G9002, RP RP-112234; DOB 1979-02-28"
    ds.DerivationDescription = "FA map from DTI of Ek"
    ds.AcquisitionComments = "PID12345678901 ring +47 55 97 50 00"
    ds.SecondaryReviewerName = "Bakken^Liv"
    ds.PatientBirthDateInAlternativeCalendar = "1399-12-09"
    ds.PerformedStationName, ds.PerformedStationAETitle = "HUS-MR3", "HUSMR3"
    ds.add_new(0x60000010, "US", 16)
    ds.add_new(0x60000011, "US", 16)
    ds.add_new(0x60000040, "CS", "G")
    ds.add_new(0x60000050, "SS", [1, 1])
    ds.add_new(0x60000100, "US", 1)
    ds.add_new(0x60000102, "US", 0)
    ds.add_new(0x60003000, "OW", b"\0" * 32)
    ds.add_new(0x60000022, "LO", "Lesion marked by Solberg")
    step = Dataset()
    step.ScheduledPerformingPhysicianName = "Solberg^Ingrid"
    step.ScheduledProcedureStepID = "SPS-5511"
    ds.ScheduledProcedureStepSequence = Sequence([step])
    order = Dataset()
    order.LocalNamespaceEntityID = "ORD-4471-HUS"
    ds.OrderFillerIdentifierSequence = Sequence([order])
    request = Dataset()
    request.RequestedProcedureID = "RP-112234"
    request.StudyInstanceUID = STUDY_UID
    ds.RequestAttributesSequence = Sequence([request])
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "T-A0100", "SRT", "Brain"
    code.CodingSchemeUID = SNOMED
    ds.AnatomicRegionSequence = Sequence([code])
    study_ref = Dataset()
    study_ref.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"
    study_ref.ReferencedSOPInstanceUID = STUDY_UID
    ds.ReferencedStudySequence = Sequence([study_ref])
    references: list[tuple[tuple, str]] = [
        (("RequestAttributesSequence", 0, "StudyInstanceUID"), "study"),
        (("ReferencedStudySequence", 0, "ReferencedSOPInstanceUID"), "study"),
    ]
    if source is not None:
        image_ref = Dataset()
        image_ref.ReferencedSOPClassUID = MR_STORAGE
        image_ref.ReferencedSOPInstanceUID = source.uids["sop"]
        ds.SourceImageSequence = Sequence([image_ref])
        references.append(
            (("SourceImageSequence", 0, "ReferencedSOPInstanceUID"), f"sop:{source.instance}")
        )
    block = ds.private_block(0x0029, "SIEMENS CSA HEADER", create=True)
    block.add_new(0x20, "OB", _csa_series(long=syntax == DeflatedExplicitVRLittleEndian))
    leak = ds.private_block(0x0033, "ACME NOTES", create=True)
    leak.add_new(0x01, "LO", "Ek Kari 12345678901")
    _pixels(ds, syntax, rng)
    path = folder / f"mr_{instance:03d}.dcm"
    ds.save_as(path, enforce_file_format=True)
    case = _case(
        ds,
        "mr",
        path,
        retained=[
            (("ImageComments",), "StudyID"),
            (("DerivationDescription",), "FA map from DTI of"),
        ],
        references=references,
        pixels=_payload_hash(path),
    )
    case.tags |= {"ImageType": "ORIGINAL\\PRIMARY\\M\\ND"}
    return case


def _implicit_bytes(item: Dataset) -> bytes:
    """A sequence's items as implicit VR little endian bytes (a public SQ stored as UN)."""
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, True
    write_dataset(fp, item)
    body = fp.getvalue()
    return b"\xfe\xff\x00\xe0" + len(body).to_bytes(4, "little") + body


def _un(folder: Path, instance: int, syntax: str, rng: random.Random) -> Case:
    """Public attributes stored as UN, as a PACS that did not know them forwards them
    (written with pydicom's UN -> dictionary VR conversion off, so they stay UN)."""
    keep = config.replace_un_with_known_vr
    config.replace_un_with_known_vr = False
    try:
        return _un_file(folder, instance, syntax, rng)
    finally:
        config.replace_un_with_known_vr = keep


def _un_file(folder: Path, instance: int, syntax: str, rng: random.Random) -> Case:
    ds = _base("un", instance, syntax)
    ds.add(DataElement(0x0008002A, "UN", b"20240305101500"))  # AcquisitionDateTime as UN
    request = Dataset()
    request.RequestedProcedureID = "RP-112234"
    request.ScheduledProcedureStepID = "SPS-5511"
    request.RequestedProcedureDescription = "MR caput Ek Kari"
    ds.add(DataElement(0x00400275, "UN", _implicit_bytes(request)))  # RequestAttributesSequence
    ds.add(DataElement(0x00081050, "UN", b"Solberg^Ingrid"))  # PerformingPhysicianName as UN
    _pixels(ds, syntax, rng)
    path = folder / f"un_{instance:03d}.dcm"
    ds.save_as(path, enforce_file_format=True)
    return _case(
        ds,
        "un",
        path,
        dates={"AcquisitionDateTime": "20240305101500"},
        pixels=_payload_hash(path),
    )


def _ja(folder: Path, instance: int, syntax: str, rng: random.Random) -> Case:
    ds = _base("ja", instance, syntax)
    ds.SpecificCharacterSet = ["", "ISO 2022 IR 87"]
    ds.PatientName = "Ek^Kari=恵久^香里"
    ds.StudyDescription = "頭部MRI 恵久 香里"
    _pixels(ds, syntax, rng)
    path = folder / f"ja_{instance:03d}.dcm"
    ds.save_as(path, enforce_file_format=True)
    case = _case(ds, "ja", path, pixels=_payload_hash(path))
    case.phi += ["恵久", "香里"]
    case.retained = [(("StudyDescription",), "頭部MRI")] + case.retained[1:]
    return case


def _sr(folder: Path, instance: int, syntax: str) -> Case:
    ds = _base("sr", instance, syntax, SR_STORAGE)
    ds.Modality = "SR"
    ds.ContentDate, ds.ContentTime = STUDY_DATE, "103000"
    ds.ValueType, ds.CompletionFlag, ds.VerificationFlag = "CONTAINER", "COMPLETE", "VERIFIED"
    title = Dataset()
    title.CodeValue, title.CodingSchemeDesignator = "11528-7", "LN"
    title.CodeMeaning = "Radiology Report"
    ds.ConceptNameCodeSequence = Sequence([title])
    observer = Dataset()
    observer.VerifyingObserverName = "Haugen^Nils"
    observer.VerificationDateTime = "20240305110000"
    observer.VerifyingOrganization = "Haukeland Universitetssjukehus"
    ds.VerifyingObserverSequence = Sequence([observer])
    person = Dataset()
    person.RelationshipType, person.ValueType, person.PersonName = (
        "HAS OBS CONTEXT",
        "PNAME",
        "Haugen^Nils",
    )
    text = Dataset()
    text.RelationshipType, text.ValueType = "CONTAINS", "TEXT"
    text.TextValue = "Normal findings. Patient Ek Kari, DOB 28.02.1979, seen by Solberg."
    for item in (person, text):
        concept = Dataset()
        concept.CodeValue, concept.CodingSchemeDesignator, concept.CodeMeaning = (
            "121008",
            "DCM",
            "Finding",
        )
        item.ConceptNameCodeSequence = Sequence([concept])
    ds.ContentSequence = Sequence([person, text])
    path = folder / f"sr_{instance:03d}.dcm"
    ds.save_as(path, enforce_file_format=True)
    case = _case(
        ds,
        "sr",
        path,
        retained=[(("ContentSequence", 1, "TextValue"), "Normal findings")],
        dates={"ContentDate": STUDY_DATE},
    )
    case.tags = {k: v for k, v in case.tags.items() if k not in ("RepetitionTime", "EchoTime")}
    case.tags["Modality"] = "SR"
    return case


def _pdf(folder: Path, instance: int, syntax: str) -> Case:
    ds = _base("pdf", instance, syntax, PDF_STORAGE)
    ds.Modality = "DOC"
    ds.DocumentTitle = "Report for Ek Kari"
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.BurnedInAnnotation = "YES"
    document = b"%PDF-1.4\n1 0 obj <<>> endobj\n(Ek Kari 12345678901)\n%%EOF\n"
    ds.EncapsulatedDocument = document
    path = folder / f"pdf_{instance:03d}.dcm"
    ds.save_as(path, enforce_file_format=True)
    # a document cannot be cleaned: dropping it with a reason is right, sending it destroyed
    # is not (the scorer compares the document when it is sent)
    case = _case(ds, "pdf", path, must_send=False, pixels=_payload_hash(path))
    case.tags = {"Modality": "DOC"}
    case.retained = []
    return case


def _dup(folder: Path, instance: int, syntax: str, rng: random.Random) -> list[Case]:
    """Two different files sharing one SOP Instance UID: neither is sent (which of the two
    the receiver should hold is unknown; one sent would be an arbitrary pick that the other
    then contradicts), and both are named in the report (deid/batch.py)."""
    cases = []
    for n in (0, 1):
        ds = _base("dup", instance + n, syntax)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = _uid("dup")
        _pixels(ds, syntax, rng)
        path = folder / f"dup_{instance + n:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        cases.append(
            _case(
                ds,
                "dup",
                path,
                must_send=False,
                pixels=_payload_hash(path),
            )
        )
    return cases


def write_eval_set(folder: Path, seed: int = 12) -> list[Case]:
    """Write the evaluation set into ``folder``; the answer key of every file."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    cases: list[Case] = []
    first: Case | None = None
    for syntax in SYNTAXES:
        case = _mr(folder, 1 + len(cases), syntax, rng, first)
        first = first or case
        cases.append(case)
    for syntax in EXPLICIT:
        cases.append(_un(folder, 1 + len(cases), syntax, rng))
    for syntax in (ExplicitVRLittleEndian, ImplicitVRLittleEndian):
        cases.append(_ja(folder, 1 + len(cases), syntax, rng))
    for syntax in (ExplicitVRLittleEndian, ImplicitVRLittleEndian):
        cases.append(_sr(folder, 1 + len(cases), syntax))
    cases.append(_pdf(folder, 1 + len(cases), ExplicitVRLittleEndian))
    cases += _dup(folder, 1 + len(cases), ExplicitVRLittleEndian, rng)
    return cases
