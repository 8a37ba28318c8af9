"""Synthetic DICOM studies for tests and benchmarks (no patient data, deterministic per seed).

Files are Part-10, explicit VR little endian, with the vendor headers the classifier reads:

* SIEMENS: CSA image (0029,1010) and series (0029,1020) headers in SV10 format (encoder
  below), B_value / DiffusionGradientDirection / NumberOfImagesInMosaic /
  PhaseEncodingDirectionPositive per image, and an MrPhoenixProtocol whose ASCCONV part holds
  sGroupArray.asGroup[0].nSize, sProtConsistencyInfo.tMeasuredBaselineString and a
  sWipMemBlock.tFree UUID; (0051,100A) acquisition length, (0051,100F) coil string.
* GE: GEMS_ACQU_01 (0019,109C) pulse sequence, (0019,105A) duration, (0019,10BB..BD)
  gradient direction; GEMS_PARM_01 (0043,1039) b-value; GEMS_RELA_01 (0021,104F).
* PHILIPS: (2001,1003) b-factor, (2001,1004) direction, (2001,1020) scanning technique,
  (2005,10B0..B2) gradient direction, plus (0018,9087) DiffusionBValue.

One template dataset per series is reused; only per-image elements change between writes.
"""

from __future__ import annotations

import hashlib
import random
import struct
import uuid as uuidlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydicom.charset import default_encoding
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element, write_file_meta_info
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian

MR_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
SC_STORAGE = "1.2.840.10008.5.1.4.1.1.7"
BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"

MANUFACTURER = {
    "SIEMENS": "SIEMENS",
    "GE": "GE MEDICAL SYSTEMS",
    "PHILIPS": "Philips Medical Systems",
}
_MODEL = {"SIEMENS": "Prisma_fit", "GE": "DISCOVERY MR750", "PHILIPS": "Ingenia"}
_SOFTWARE = {
    "SIEMENS": ["syngo MR E11"],
    "GE": ["27", "LX", "MR Software release:DV26.0_R03_1831.b"],
    "PHILIPS": ["5.6.1", "5.6.1.1"],
}
BASELINE = "N4_VE11C_LATEST_20160120"
ORIENTATIONS = {
    "axial": (1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
    "sagittal": (0.0, 1.0, 0.0, 0.0, 0.0, -1.0),
    "coronal": (1.0, 0.0, 0.0, 0.0, 0.0, -1.0),
    "oblique": (1.0, 0.0, 0.0, 0.0, 0.9659258, -0.2588190),
}


@dataclass(frozen=True)
class SeriesSpec:
    """One series. Vendor-specific fields are ignored for other vendors."""

    description: str
    n_images: int = 10
    sequence_name: str = ""  # (0018,0024); "{b}" is replaced by the image's b-value
    image_type: tuple[str, ...] = ("ORIGINAL", "PRIMARY", "M", "ND")
    orientation: str | tuple[float, ...] = "axial"  # name, "3plane", or 6 direction cosines
    modality: str = "MR"  # MR, CT, OT (secondary capture), SR
    rows: int | None = None  # default: the study's rows/cols
    cols: int | None = None
    scanning_sequence: tuple[str, ...] = ("GR",)
    sequence_variant: tuple[str, ...] = ("SP",)
    repetition_time: float = 2000.0
    echo_time: float = 3.0
    inversion_time: float | None = None
    flip_angle: float = 9.0
    slice_thickness: float = 1.0
    acquisition_matrix: tuple[int, int, int, int] | None = None  # default from rows/cols
    phase_steps: int | None = None  # (0018,0089)
    b_values: tuple[float, ...] = ()  # cycled over the images (volumes for a mosaic)
    directions: tuple[tuple[float, float, float], ...] = ()  # cycled over b>0 images
    mosaic: int = 0  # Siemens: slices per mosaic image
    temporal_positions: int | None = None  # (0020,0105) for fMRI
    num_slices: int | None = None  # Siemens protocol nSize (default: mosaic or n_images)
    phase_positive: int = 1  # Siemens CSA PhaseEncodingDirectionPositive
    acquisition_length: str = ""  # Siemens (0051,100A), e.g. "TA 05:11"
    coils: str = "HEA;HEP"  # Siemens (0051,100F)
    pulse_sequence: str = ""  # GE (0019,109C)
    scan_technique: str = ""  # Philips (2001,1020)
    extra: Mapping[int, tuple[str, Any]] = field(default_factory=dict)  # tag -> (VR, value)


def _uid(*parts: object) -> str:
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return "2.25." + str(int.from_bytes(digest[:16], "big"))


# --- Siemens CSA ------------------------------------------------------------------------

_SYNGO_DT = {
    "AE": 0,
    "AS": 1,
    "CS": 16,
    "DA": 2,
    "DS": 3,
    "FD": 4,
    "FL": 5,
    "IS": 6,
    "LO": 19,
    "LT": 20,
    "SH": 22,
    "SL": 7,
    "SS": 8,
    "ST": 23,
    "TM": 24,
    "UL": 9,
    "UN": 25,
    "US": 10,
}


def _csa_text(value: Any) -> bytes:
    if isinstance(value, float):
        text = f"{value:.8f}"
    else:
        text = str(value)
    return text.encode("latin-1") + b"\0"


def encode_csa(
    elements: Iterable[tuple[str, str, Sequence[Any]]],
    *,
    csa1: bool = False,
    min_items: int = 6,
    name_garbage: bytes = b"",
) -> bytes:
    """Encode (name, VR, values) triples as a CSA header (CSA2 "SV10", or CSA1).

    Like the scanner, each element gets at least ``min_items`` items (the extra ones empty);
    ``name_garbage`` fills the 64-byte name field after the terminating NUL.
    """
    elements = list(elements)
    tag1_items = max(len(elements[1][2]), min_items) if len(elements) > 1 else 0
    out = bytearray(b"SV10\x04\x03\x02\x01" if not csa1 else b"")
    out += struct.pack("<II", len(elements), 77)
    for name, vr, values in elements:
        n_items = max(len(values), min_items) if values or min_items else 0
        raw_name = (name.encode("latin-1") + b"\0" + name_garbage)[:64].ljust(64, b"\0")
        out += struct.pack(
            "<64si4siii",
            raw_name,
            len(values),
            vr.encode().ljust(4, b"\0"),
            _SYNGO_DT.get(vr, 25),
            n_items,
            77 if values else 205,
        )
        for i in range(n_items):
            data = _csa_text(values[i]) if i < len(values) else b""
            n = len(data)
            out += struct.pack("<4i", n + tag1_items if csa1 else n, n, 77, n)
            out += data + b"\0" * (-n % 4)
    return bytes(out)


def phoenix_protocol(
    *,
    protocol_name: str,
    sequence_file: str,
    n_slices: int,
    wip_uuid: str,
    sequence_id: int = 1,
    baseline: str = BASELINE,
    extra: Mapping[str, str] | None = None,
) -> str:
    """An MrPhoenixProtocol text: an XProtocol preamble then the ASCCONV block."""
    lines = {
        "ulVersion": "0x14b44b6",
        "tSequenceFileName": f'""%SiemensSeq%\\{sequence_file}""',
        "tProtocolName": f'""{protocol_name}""',
        "sProtConsistencyInfo.tBaselineString": f'""{baseline}""',
        "sProtConsistencyInfo.tMeasuredBaselineString": f'""{baseline}""',
        "sProtConsistencyInfo.flNominalB0": "2.89362",
        "lSequenceID": str(sequence_id),
        "sSliceArray.lSize": str(n_slices),
        "sGroupArray.asGroup[0].nSize": str(n_slices),
        "sGroupArray.lSize": "1",
        "sWipMemBlock.tFree": f'""{wip_uuid}""',
        "lAverages": "1",
        "lRepetitions": "0",
        **(extra or {}),
    }
    body = "\n".join(f"{key}\t = \t{value}" for key, value in lines.items())
    return (
        '<XProtocol> \n{\n  <Name> "PhoenixMetaProtocol" \n  <ID> 1000002 \n'
        "  <Userversion> 2.0 \n}\n"
        "### ASCCONV BEGIN object=MrProtDataImpl@MrProtocolData version=51130001 "
        "converter=%MEASCONST%/ConverterList/Prot_Converter.txt ###\n"
        f"{body}\n### ASCCONV END ###"
    )


# --- datasets ---------------------------------------------------------------------------


@dataclass
class _Study:
    vendor: str
    patient_id: str
    patient_name: str
    accession: str
    study_date: str
    study_time: str
    study_description: str
    study_uid: str
    rows: int
    cols: int
    seed: int


def _positions(spec: SeriesSpec, n: int) -> list[tuple[float, ...]]:
    if spec.orientation == "3plane":
        planes = ("sagittal", "coronal", "axial")
        per = max(1, -(-n // 3))
        return [ORIENTATIONS[planes[min(i // per, 2)]] for i in range(n)]
    iop = (
        ORIENTATIONS[spec.orientation]
        if isinstance(spec.orientation, str)
        else tuple(float(x) for x in spec.orientation)
    )
    return [iop] * n


def _normal(iop: Sequence[float]) -> tuple[float, float, float]:
    r, c = iop[:3], iop[3:]
    return (r[1] * c[2] - r[2] * c[1], r[2] * c[0] - r[0] * c[2], r[0] * c[1] - r[1] * c[0])


def _template(study: _Study, spec: SeriesSpec, number: int) -> Dataset:
    vendor, modality = study.vendor, spec.modality
    rows, cols = spec.rows or study.rows, spec.cols or study.cols
    sop_class = {"MR": MR_STORAGE, "CT": CT_STORAGE, "OT": SC_STORAGE, "SR": BASIC_TEXT_SR}[
        modality
    ]
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.SpecificCharacterSet = "ISO_IR 100"
    if modality != "SR":
        ds.ImageType = list(spec.image_type)
    ds.InstanceCreationDate = study.study_date
    ds.InstanceCreationTime = study.study_time
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = "1.2"
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = study.study_date
    ds.StudyTime = study.study_time
    ds.SeriesTime = ds.ContentTime = f"{int(study.study_time[:2]):02d}{number % 60:02d}00.000000"
    ds.AccessionNumber = study.accession
    ds.Modality = modality
    if modality == "OT":
        ds.ConversionType = "WSD"
    ds.Manufacturer = MANUFACTURER[vendor]
    ds.InstitutionName = "Synthetic Hospital"
    ds.ReferringPhysicianName = ""
    ds.StationName = f"SYN{vendor[:3]}01"
    ds.StudyDescription = study.study_description
    ds.SeriesDescription = spec.description
    ds.OperatorsName = "Operator^Synthetic"
    ds.ManufacturerModelName = _MODEL[vendor]
    ds.PatientName = study.patient_name
    ds.PatientID = study.patient_id
    ds.PatientBirthDate = "19800101"
    ds.PatientSex = "O"
    ds.PatientAge = "044Y"
    ds.BodyPartExamined = "HEAD"
    ds.StudyInstanceUID = study.study_uid
    ds.SeriesInstanceUID = _uid(study.seed, study.study_uid, "series", number)
    ds.StudyID = "1"
    ds.SeriesNumber = number
    ds.InstanceNumber = 1
    if modality == "SR":
        _sr_content(ds)
        return ds
    if modality in ("MR", "CT"):
        ds.SoftwareVersions = _SOFTWARE[vendor] if modality == "MR" else ["VA48A"]
        ds.ProtocolName = spec.description
        ds.SliceThickness = spec.slice_thickness
        ds.PatientPosition = "HFS"
        ds.AcquisitionNumber = 1
        ds.FrameOfReferenceUID = _uid(study.seed, study.study_uid, "frame")
        ds.PositionReferenceIndicator = ""
        ds.ImagePositionPatient = [0.0, 0.0, 0.0]
        ds.ImageOrientationPatient = list(ORIENTATIONS["axial"])
        ds.SliceLocation = 0.0
        ds.PixelSpacing = [1.0, 1.0]
    if modality == "MR":
        _mr_elements(ds, study, spec, rows, cols)
    elif modality == "CT":
        ds.KVP = 120
        ds.ConvolutionKernel = "H30s"
        ds.RescaleIntercept = -1024
        ds.RescaleSlope = 1
    ds.SamplesPerPixel = 1 if modality != "OT" else 3
    ds.PhotometricInterpretation = "MONOCHROME2" if modality != "OT" else "RGB"
    if modality == "OT":
        ds.PlanarConfiguration = 0
        ds.BurnedInAnnotation = "YES"
    ds.Rows, ds.Columns = rows, cols
    if modality == "OT":
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    else:
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
    ds.PixelRepresentation = 0
    size = rows * cols * ds.SamplesPerPixel * ds.BitsAllocated // 8
    ds.PixelData = random.Random(f"{study.seed}:{number}").randbytes(size + size % 2)
    ds["PixelData"].VR = "OW" if ds.BitsAllocated == 16 else "OB"
    for tag, (vr, value) in spec.extra.items():
        ds.add_new(tag, vr, value)
    return ds


def _mr_elements(ds: Dataset, study: _Study, spec: SeriesSpec, rows: int, cols: int) -> None:
    ds.ScanningSequence = list(spec.scanning_sequence)
    ds.SequenceVariant = list(spec.sequence_variant)
    ds.ScanOptions = ""
    ds.MRAcquisitionType = "3D" if spec.slice_thickness <= 1.2 else "2D"
    ds.SequenceName = spec.sequence_name.replace("{b}", "0")
    ds.RepetitionTime = spec.repetition_time
    ds.EchoTime = spec.echo_time
    if spec.inversion_time is not None:
        ds.InversionTime = spec.inversion_time
    ds.NumberOfAverages = 1
    ds.ImagingFrequency = 123.2
    ds.MagneticFieldStrength = 3
    ds.SpacingBetweenSlices = spec.slice_thickness
    ds.NumberOfPhaseEncodingSteps = spec.phase_steps or rows
    ds.EchoTrainLength = 1
    ds.AcquisitionMatrix = list(spec.acquisition_matrix or (0, cols, rows, 0))
    ds.FlipAngle = spec.flip_angle
    if spec.temporal_positions:
        ds.NumberOfTemporalPositions = spec.temporal_positions
    vendor = study.vendor
    if vendor == "SIEMENS":
        mr = ds.private_block(0x0051, "SIEMENS MR HEADER", create=True)
        minutes, seconds = divmod(int(spec.n_images * spec.repetition_time / 1000) or 1, 60)
        mr.add_new(0x0A, "LO", spec.acquisition_length or f"TA {minutes:02d}:{seconds:02d}")
        mr.add_new(0x0F, "LO", spec.coils)
        csa = ds.private_block(0x0029, "SIEMENS CSA HEADER", create=True)
        csa.add_new(0x08, "CS", "IMAGE NUM 4")
        csa.add_new(0x09, "LO", "20160120")
        csa.add_new(0x10, "OB", b"")
        csa.add_new(0x18, "CS", "MR")
        csa.add_new(0x19, "LO", "20160120")
        n_slices = spec.num_slices or spec.mosaic or spec.n_images
        uuid = str(
            uuidlib.UUID(
                bytes=hashlib.sha256(f"{study.seed}:{ds.SeriesInstanceUID}".encode()).digest()[:16]
            )
        )
        protocol = phoenix_protocol(
            protocol_name=spec.description,
            sequence_file=spec.sequence_name.strip("*")[:6] or "fl",
            n_slices=n_slices,
            wip_uuid=uuid,
            sequence_id=int(ds.SeriesNumber),
        )
        series_csa = encode_csa(
            [
                ("UsedPatientWeight", "IS", [70]),
                ("NumberOfPrescans", "IS", [0]),
                ("TransmitterCalibration", "DS", [250.5]),
                ("CoilForGradient", "SH", ["void"]),
                ("MrProtocolVersion", "IS", [51130001]),
                ("MrPhoenixProtocol", "UN", [protocol]),
            ]
        )
        csa.add_new(0x20, "OB", series_csa + b"\0" * (len(series_csa) % 2))
        if spec.b_values:
            ds.private_block(0x0019, "SIEMENS MR HEADER", create=True)
    elif vendor == "GE":
        acq = ds.private_block(0x0019, "GEMS_ACQU_01", create=True)
        acq.add_new(0x9C, "LO", spec.pulse_sequence or spec.sequence_name or "fgre")
        acq.add_new(0x5A, "FL", float(spec.n_images * spec.repetition_time * 1000))
        rela = ds.private_block(0x0021, "GEMS_RELA_01", create=True)
        rela.add_new(0x4F, "SS", spec.num_slices or spec.n_images)
        ds.ImagesInAcquisition = spec.n_images
        if spec.b_values:
            ds.private_block(0x0043, "GEMS_PARM_01", create=True)
    elif vendor == "PHILIPS":
        imaging = ds.private_block(0x2001, "Philips Imaging DD 001", create=True)
        imaging.add_new(0x20, "LO", spec.scan_technique or "FFE")
        if spec.b_values:
            ds.private_block(0x2005, "Philips MR Imaging DD 001", create=True)


def _sr_content(ds: Dataset) -> None:
    ds.ValueType = "CONTAINER"
    ds.ContinuityOfContent = "SEPARATE"
    ds.CompletionFlag = "COMPLETE"
    ds.VerificationFlag = "UNVERIFIED"
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = (
        "11528-7",
        "LN",
        "Radiology Report",
    )
    ds.ConceptNameCodeSequence = DicomSequence([code])
    text = Dataset()
    text.RelationshipType = "CONTAINS"
    text.ValueType = "TEXT"
    name = Dataset()
    name.CodeValue, name.CodingSchemeDesignator, name.CodeMeaning = "121071", "DCM", "Finding"
    text.ConceptNameCodeSequence = DicomSequence([name])
    text.TextValue = "Synthetic report: no findings."
    ds.ContentSequence = DicomSequence([text])


def _diffusion(spec: SeriesSpec, i: int) -> tuple[float, tuple[float, float, float] | None, int]:
    """(b-value, gradient direction or None, direction number) of image i."""
    b = float(spec.b_values[i % len(spec.b_values)])
    if b <= 0 or not spec.directions:
        return b, None, 0
    k = sum(1 for j in range(i) if spec.b_values[j % len(spec.b_values)] > 0)
    return b, tuple(spec.directions[k % len(spec.directions)]), k % len(spec.directions) + 1


def _per_image(
    ds: Dataset, study: _Study, spec: SeriesSpec, number: int, i: int, iop: Sequence[float]
) -> None:
    sop = _uid(study.seed, ds.SeriesInstanceUID, i)
    ds.SOPInstanceUID = sop
    ds.file_meta.MediaStorageSOPInstanceUID = sop
    ds.InstanceNumber = i + 1
    if spec.modality in ("MR", "CT"):
        location = round((i - spec.n_images / 2) * spec.slice_thickness, 4)
        normal = _normal(iop)
        ds.ImageOrientationPatient = list(iop)
        ds.ImagePositionPatient = [
            round(-100 * (iop[0] + iop[3]) + location * n, 4) for n in normal
        ]
        ds.SliceLocation = location
    if spec.modality != "MR":
        return
    b, direction, k = _diffusion(spec, i) if spec.b_values else (None, None, 0)
    if b is not None and "{b}" in spec.sequence_name:
        ds.SequenceName = spec.sequence_name.replace("{b}", str(int(b))) + (f"#{k}" if k else "")
    if study.vendor == "SIEMENS":
        items: list[tuple[str, str, Sequence[Any]]] = [
            ("EchoLinePosition", "IS", [ds.Rows // 2]),
            ("ProtocolSliceNumber", "IS", [i % (spec.mosaic or spec.n_images or 1)]),
            ("SliceMeasurementDuration", "DS", [spec.repetition_time]),
            ("PhaseEncodingDirectionPositive", "IS", [spec.phase_positive]),
            ("ImaCoilString", "LO", [spec.coils.split(";")[0]]),
            ("SliceNormalVector", "FD", list(_normal(iop))),
        ]
        if spec.mosaic:
            items.append(("NumberOfImagesInMosaic", "US", [spec.mosaic]))
            items.append(("AcquisitionMatrixText", "SH", [f"{ds.Rows}p*{ds.Columns}"]))
        if b is not None:
            items.append(("B_value", "IS", [int(b)]))
            items.append(
                ("DiffusionDirectionality", "CS", ["DIRECTIONAL" if direction else "NONE"])
            )
            if direction:
                items.append(("DiffusionGradientDirection", "FD", list(direction)))
            mr = ds.private_block(0x0019, "SIEMENS MR HEADER")
            mr.add_new(0x0C, "IS", int(b))
            mr.add_new(0x0D, "CS", "DIRECTIONAL" if direction else "NONE")
            if direction:
                mr.add_new(0x0E, "FD", list(direction))
        blob = encode_csa(items)
        ds.private_block(0x0029, "SIEMENS CSA HEADER")[0x10].value = blob
    elif b is not None and study.vendor == "GE":
        ds.private_block(0x0043, "GEMS_PARM_01").add_new(0x39, "IS", [int(b), 8, 0, 0])
        acq = ds.private_block(0x0019, "GEMS_ACQU_01")
        for offset, value in zip((0xBB, 0xBC, 0xBD), direction or (0.0, 0.0, 0.0), strict=True):
            acq.add_new(offset, "DS", value)
    elif b is not None and study.vendor == "PHILIPS":
        imaging = ds.private_block(0x2001, "Philips Imaging DD 001")
        imaging.add_new(0x03, "FL", b)
        imaging.add_new(0x04, "CS", "O" if direction else "")
        mr = ds.private_block(0x2005, "Philips MR Imaging DD 001")
        for offset, value in zip((0xB0, 0xB1, 0xB2), direction or (0.0, 0.0, 0.0), strict=True):
            mr.add_new(offset, "FL", value)
        ds.DiffusionBValue = b


def study_datasets(
    *,
    vendor: str = "SIEMENS",
    series: Sequence[SeriesSpec | Mapping[str, Any]],
    patient_id: str = "SYN0001",
    patient_name: str = "Synthetic^Patient",
    accession: str = "SYNACC0001",
    study_date: str = "20240102",
    study_time: str = "101530.000000",
    study_description: str = "Synthetic study",
    study_uid: str | None = None,
    rows: int = 256,
    cols: int = 256,
    pixel_bytes: int | None = None,
    seed: int = 0,
) -> Iterator[tuple[str, Dataset]]:
    """Yield (relative file name, dataset) for every image. The dataset object is reused
    for the images of a series: copy it if you keep it past the next iteration."""
    vendor = vendor.upper()
    if vendor not in MANUFACTURER:
        raise ValueError(f"vendor must be one of {', '.join(MANUFACTURER)}, got {vendor!r}")
    if pixel_bytes is not None:
        rows = max(1, pixel_bytes // (2 * cols))
    study = _Study(
        vendor,
        patient_id,
        patient_name,
        accession,
        study_date,
        study_time,
        study_description,
        study_uid or _uid(seed, "study", patient_id, accession, study_date),
        rows,
        cols,
        seed,
    )
    for number, spec in enumerate(series, start=1):
        if not isinstance(spec, SeriesSpec):
            spec = SeriesSpec(**spec)
        ds = _template(study, spec, number)
        prefix = {"MR": "MR", "CT": "CT", "OT": "SC", "SR": "SR"}[spec.modality]
        for i, iop in enumerate(_positions(spec, spec.n_images)):
            _per_image(ds, study, spec, number, i, iop)
            yield f"S{number:03d}/{prefix}{i + 1:05d}.dcm", ds


class _Encoder:
    """Part-10 bytes of a dataset, re-encoding (with pydicom) only the elements whose value
    object changed since the previous image: most of a series' header and its pixels are
    the same template, and pydicom spends ~50 us per element it writes."""

    def __init__(self) -> None:
        self._cache: dict[int, tuple[Any, str, bytes]] = {}

    @staticmethod
    def _buffer() -> DicomBytesIO:
        fp = DicomBytesIO()
        fp.is_little_endian, fp.is_implicit_VR = True, False
        return fp

    def encode(self, ds: Dataset) -> bytes:
        meta = self._buffer()
        write_file_meta_info(meta, ds.file_meta, enforce_standard=True)
        parts = [b"\0" * 128, b"DICM", meta.getvalue()]
        encodings = ds.get("SpecificCharacterSet", default_encoding)
        elements = ds._dict  # all DataElements here (built in code), so no conversion needed
        for tag in sorted(elements, key=int):
            if tag & 0xFFFF == 0 and tag >> 16 > 6:
                continue  # retired group lengths: pydicom does not write them either
            elem = elements[tag]
            cached = self._cache.get(tag)
            if cached is None or cached[0] is not elem.value or cached[1] != elem.VR:
                fp = self._buffer()
                write_data_element(fp, elem, encodings)
                cached = self._cache[tag] = (elem.value, elem.VR, fp.getvalue())
            parts.append(cached[2])
        return b"".join(parts)


def write_study(
    out_dir: Path | str,
    *,
    vendor: str = "SIEMENS",
    series: Sequence[SeriesSpec | Mapping[str, Any]],
    **study: Any,
) -> list[Path]:
    """Write a study below ``out_dir`` (one folder per series); returns the file paths.

    Keyword arguments as :func:`study_datasets`: patient_id, patient_name, accession,
    study_date, study_time, study_description, study_uid, rows, cols, pixel_bytes, seed.
    The bytes are those ``ds.save_as(path, enforce_file_format=True)`` would write.
    """
    out = Path(out_dir)
    paths: list[Path] = []
    made: set[Path] = set()
    encoder, series_uid = _Encoder(), None
    for name, ds in study_datasets(vendor=vendor, series=series, **study):
        if ds.SeriesInstanceUID != series_uid:  # a new template: nothing cached applies
            encoder, series_uid = _Encoder(), ds.SeriesInstanceUID
        path = out / name
        if path.parent not in made:
            path.parent.mkdir(parents=True, exist_ok=True)
            made.add(path.parent)
        path.write_bytes(encoder.encode(ds))
        paths.append(path)
    return paths


# --- ready-made studies -----------------------------------------------------------------

_DIRS = tuple(
    (round(x, 4), round(y, 4), round(z, 4))
    for x, y, z in (
        (1, 0, 0),
        (0, 1, 0),
        (0, 0, 1),
        (0.7071, 0.7071, 0),
        (0.7071, 0, 0.7071),
        (0, 0.7071, 0.7071),
        (-0.7071, 0.7071, 0),
        (0.5774, 0.5774, 0.5774),
    )
)


def standard_mr_series(vendor: str, n: int = 20) -> list[SeriesSpec]:
    """A typical clinical/research MR session for ``vendor``: localizer, T1 3D sagittal,
    T2 axial, FLAIR axial, DWI, SWI, resting-state fMRI (mosaic on Siemens)."""
    vendor = vendor.upper()
    n_loc = max(3, min(n, 9))
    dwi_b = (0.0,) + (1000.0,) * 8
    if vendor == "SIEMENS":
        return [
            SeriesSpec(
                "localizer",
                n_loc,
                "*fl2d1",
                ("ORIGINAL", "PRIMARY", "M", "NORM", "DIS2D"),
                "3plane",
                slice_thickness=7.0,
                repetition_time=8.6,
                echo_time=4.0,
            ),
            SeriesSpec(
                "t1_mprage_sag_p2_iso",
                n,
                "*tfl3d1_16ns",
                ("ORIGINAL", "PRIMARY", "M", "ND", "NORM"),
                "sagittal",
                scanning_sequence=("GR", "IR"),
                sequence_variant=("SK", "SP", "MP"),
                repetition_time=2300.0,
                echo_time=2.98,
                inversion_time=900.0,
            ),
            SeriesSpec(
                "t2_tse_tra",
                n,
                "*tse2d1_15",
                ("ORIGINAL", "PRIMARY", "M", "ND", "NORM"),
                "axial",
                scanning_sequence=("SE",),
                sequence_variant=("SK", "SP", "OSP"),
                repetition_time=6000.0,
                echo_time=96.0,
                slice_thickness=4.0,
            ),
            SeriesSpec(
                "t2_tirm_tra_dark-fluid",
                n,
                "*tir2d1_16",
                ("ORIGINAL", "PRIMARY", "M", "ND", "NORM"),
                "axial",
                scanning_sequence=("SE", "IR"),
                sequence_variant=("SK", "SP", "MP"),
                repetition_time=9000.0,
                echo_time=81.0,
                inversion_time=2500.0,
                slice_thickness=4.0,
            ),
            SeriesSpec(
                "ep2d_diff_mddw_8dir",
                n,
                "*ep_b{b}",
                ("ORIGINAL", "PRIMARY", "DIFFUSION", "NONE", "ND", "MOSAIC"),
                "axial",
                scanning_sequence=("EP",),
                sequence_variant=("SK", "SP"),
                repetition_time=8000.0,
                echo_time=89.0,
                slice_thickness=2.5,
                b_values=dwi_b,
                directions=_DIRS,
                mosaic=60,
            ),
            SeriesSpec(
                "swi_tra",
                n,
                "*swi3d1r",
                ("ORIGINAL", "PRIMARY", "M", "SWI", "ND", "NORM"),
                "axial",
                repetition_time=28.0,
                echo_time=20.0,
                flip_angle=15.0,
                slice_thickness=1.5,
            ),
            SeriesSpec(
                "ep2d_bold_rest",
                n,
                "*epfid2d1_64",
                ("ORIGINAL", "PRIMARY", "M", "ND", "MOSAIC"),
                "axial",
                scanning_sequence=("EP",),
                sequence_variant=("SK", "SS"),
                repetition_time=2000.0,
                echo_time=30.0,
                slice_thickness=3.0,
                mosaic=36,
                temporal_positions=n,
                flip_angle=90.0,
            ),
        ]
    if vendor == "GE":
        return [
            SeriesSpec(
                "3Plane Loc",
                n_loc,
                "fgre",
                ("ORIGINAL", "PRIMARY", "LOCALIZER"),
                "3plane",
                slice_thickness=5.0,
                pulse_sequence="fgre",
                echo_time=1.5,
                repetition_time=5.0,
            ),
            SeriesSpec(
                "Sag T1 BRAVO",
                n,
                "efgre3d",
                ("ORIGINAL", "PRIMARY", "OTHER"),
                "sagittal",
                scanning_sequence=("GR", "IR"),
                sequence_variant=("SK", "SP", "MP"),
                repetition_time=8.2,
                echo_time=3.2,
                inversion_time=450.0,
                pulse_sequence="efgre3d",
            ),
            SeriesSpec(
                "Ax T2 FSE",
                n,
                "fse-xl",
                ("ORIGINAL", "PRIMARY", "OTHER"),
                "axial",
                scanning_sequence=("SE",),
                sequence_variant=("SK", "OSP"),
                repetition_time=5000.0,
                echo_time=100.0,
                slice_thickness=4.0,
                pulse_sequence="fse-xl",
            ),
            SeriesSpec(
                "Ax T2 FLAIR",
                n,
                "fse-xl",
                ("ORIGINAL", "PRIMARY", "OTHER"),
                "axial",
                scanning_sequence=("SE", "IR"),
                sequence_variant=("SK", "OSP", "MP"),
                repetition_time=9000.0,
                echo_time=120.0,
                inversion_time=2500.0,
                slice_thickness=4.0,
                pulse_sequence="fse-xl",
            ),
            SeriesSpec(
                "Ax DTI 8dir",
                n,
                "epi2",
                ("ORIGINAL", "PRIMARY", "OTHER"),
                "axial",
                scanning_sequence=("EP", "SE"),
                sequence_variant=("SK", "SS"),
                repetition_time=8000.0,
                echo_time=85.0,
                slice_thickness=2.5,
                b_values=dwi_b,
                directions=_DIRS,
                pulse_sequence="epi2",
            ),
            SeriesSpec(
                "Ax SWAN",
                n,
                "swan",
                ("ORIGINAL", "PRIMARY", "OTHER"),
                "axial",
                repetition_time=40.0,
                echo_time=25.0,
                flip_angle=15.0,
                slice_thickness=2.0,
                pulse_sequence="swan",
            ),
            SeriesSpec(
                "rsfMRI BOLD",
                n,
                "epiRT",
                ("ORIGINAL", "PRIMARY", "OTHER"),
                "axial",
                scanning_sequence=("EP", "GR"),
                sequence_variant=("SS",),
                repetition_time=2000.0,
                echo_time=30.0,
                slice_thickness=3.0,
                temporal_positions=n,
                pulse_sequence="epiRT",
                flip_angle=90.0,
            ),
        ]
    if vendor == "PHILIPS":
        return [
            SeriesSpec(
                "Survey",
                n_loc,
                "",
                ("ORIGINAL", "PRIMARY", "M_FFE", "M", "FFE"),
                "3plane",
                slice_thickness=10.0,
                scan_technique="FFE",
                echo_time=2.3,
                repetition_time=5.0,
            ),
            SeriesSpec(
                "T1W_3D_TFE sag",
                n,
                "",
                ("ORIGINAL", "PRIMARY", "M_FFE", "M", "FFE"),
                "sagittal",
                scanning_sequence=("GR",),
                sequence_variant=("MP",),
                repetition_time=8.1,
                echo_time=3.7,
                inversion_time=1000.0,
                scan_technique="T1TFE",
            ),
            SeriesSpec(
                "T2W_TSE tra",
                n,
                "",
                ("ORIGINAL", "PRIMARY", "M_SE", "M", "SE"),
                "axial",
                scanning_sequence=("SE",),
                sequence_variant=("SK",),
                repetition_time=3000.0,
                echo_time=80.0,
                slice_thickness=4.0,
                scan_technique="TSE",
            ),
            SeriesSpec(
                "T2W_FLAIR tra",
                n,
                "",
                ("ORIGINAL", "PRIMARY", "M_IR", "M", "IR"),
                "axial",
                scanning_sequence=("SE", "IR"),
                sequence_variant=("SK", "MP"),
                repetition_time=11000.0,
                echo_time=125.0,
                inversion_time=2800.0,
                slice_thickness=4.0,
                scan_technique="TIR",
            ),
            SeriesSpec(
                "DTI_8dir",
                n,
                "",
                ("ORIGINAL", "PRIMARY", "DIFFUSION", "NONE"),
                "axial",
                scanning_sequence=("SE",),
                sequence_variant=("SK",),
                repetition_time=7000.0,
                echo_time=90.0,
                slice_thickness=2.5,
                b_values=dwi_b,
                directions=_DIRS,
                scan_technique="DwiSE",
            ),
            SeriesSpec(
                "SWIp tra",
                n,
                "",
                ("ORIGINAL", "PRIMARY", "M_FFE", "M", "FFE"),
                "axial",
                repetition_time=31.0,
                echo_time=7.2,
                flip_angle=17.0,
                slice_thickness=2.0,
                scan_technique="FFE",
            ),
            SeriesSpec(
                "rs-fMRI",
                n,
                "",
                ("ORIGINAL", "PRIMARY", "M_FFE", "M", "FFE"),
                "axial",
                scanning_sequence=("GR",),
                sequence_variant=("SK",),
                repetition_time=2000.0,
                echo_time=30.0,
                slice_thickness=3.0,
                temporal_positions=n,
                scan_technique="FEEPI",
                flip_angle=90.0,
            ),
        ]
    raise ValueError(f"vendor must be one of {', '.join(MANUFACTURER)}, got {vendor!r}")


def standard_mr_study(
    out_dir: Path | str, vendor: str = "SIEMENS", *, n_per_series: int = 20, **study: Any
) -> list[Path]:
    """Write :func:`standard_mr_series` for ``vendor`` (see write_study for ``study``)."""
    return write_study(
        out_dir, vendor=vendor, series=standard_mr_series(vendor, n_per_series), **study
    )


def ct_study(
    out_dir: Path | str,
    vendor: str = "SIEMENS",
    *,
    n_images: int = 40,
    description: str = "Head 5mm",
    **study: Any,
) -> list[Path]:
    """A one-series axial CT study."""
    spec = SeriesSpec(
        description,
        n_images,
        "",
        ("ORIGINAL", "PRIMARY", "AXIAL"),
        "axial",
        modality="CT",
        slice_thickness=5.0,
    )
    study.setdefault("study_description", "CT Head")
    return write_study(out_dir, vendor=vendor, series=[spec], **study)


def secondary_capture(
    out_dir: Path | str,
    vendor: str = "SIEMENS",
    *,
    n_images: int = 1,
    description: str = "Screen capture",
    **study: Any,
) -> list[Path]:
    """Secondary-capture images (RGB, BurnedInAnnotation YES)."""
    spec = SeriesSpec(description, n_images, "", ("DERIVED", "SECONDARY"), modality="OT")
    study.setdefault("rows", 256)
    study.setdefault("cols", 256)
    return write_study(out_dir, vendor=vendor, series=[spec], **study)


def structured_report(
    out_dir: Path | str, vendor: str = "SIEMENS", *, description: str = "Report", **study: Any
) -> list[Path]:
    """One Basic Text SR document."""
    spec = SeriesSpec(description, 1, modality="SR")
    return write_study(out_dir, vendor=vendor, series=[spec], **study)


def with_changes(spec: SeriesSpec, **changes: Any) -> SeriesSpec:
    """A copy of ``spec`` with some fields changed (dataclasses.replace)."""
    return replace(spec, **changes)
