"""Broken DICOM files that carry planted patient data, for the tests that no log line holds a
value from a file: wrong VRs, odd or overlong lengths, unknown character sets, invalid text,
non-conformant UIDs, names too long for the filesystem. Every planted value contains
:data:`MARKER`, so one search finds any leak."""

from __future__ import annotations

from pathlib import Path

from fionagw.dicom.raw import element_header
from fionagw.dicom.vr import LONG_LENGTH_NAMES
from fionagw.dicom.walk import elements, part10
from support import synth

MARKER = "ZQXPHI"
PLANTED = {
    "PatientName": "ZQXPHIPN01",  # no caret: the log filter's name pattern must not be needed
    "PatientID": "ZQXPHIID02",
    "AccessionNumber": "ZQXPHIAC03",
    "StudyDescription": "ZQXPHISD04",
    "InstitutionName": "ZQXPHIIN05",
}
TAGS = {
    "SpecificCharacterSet": 0x00080005,
    "AccessionNumber": 0x00080050,
    "Modality": 0x00080060,
    "InstitutionName": 0x00080080,
    "StudyDescription": 0x00081030,
    "PatientName": 0x00100010,
    "PatientID": 0x00100020,
    "StudyInstanceUID": 0x0020000D,
    "SeriesInstanceUID": 0x0020000E,
    "SOPInstanceUID": 0x00080018,
}


def base_file(directory: Path, seed: int) -> bytes:
    """One synthetic Siemens MR image with the planted values in their proper elements."""
    (path,) = synth.write_study(
        directory / f"base{seed}",
        vendor="SIEMENS",
        series=[synth.with_changes(synth.standard_mr_series("SIEMENS", 1)[0], n_images=1)],
        patient_name=PLANTED["PatientName"],
        patient_id=PLANTED["PatientID"],
        accession=PLANTED["AccessionNumber"],
        study_description=PLANTED["StudyDescription"],
        seed=seed,
    )
    return splice(path.read_bytes(), "InstitutionName", "LO", PLANTED["InstitutionName"].encode())


def splice(data: bytes, keyword: str, vr: str, value: bytes, length: int | None = None) -> bytes:
    """``data`` with the dataset element ``keyword`` replaced (or inserted in tag order) by one
    of VR ``vr`` holding ``value``; ``length`` overrides the encoded length (a bad length)."""
    tag = TAGS[keyword]
    new = element_header(tag, vr, len(value) if length is None else length, False) + value
    p = part10(data)
    assert p.body is data, "deflated files are not spliced"
    for t, old_vr, _length, start, end in elements(data, p.start, len(data), False, True):
        head = start - (12 if old_vr in LONG_LENGTH_NAMES else 8)
        if t == tag:
            return data[:head] + new + data[end:]
        if t > tag:
            return data[:head] + new + data[head:]
    return data + new


def _uid(data: bytes, keyword: str, value: str) -> bytes:
    raw = value.encode()
    return splice(data, keyword, "UI", raw + b"\0" * (len(raw) % 2))


def broken_files(directory: Path) -> dict[str, bytes]:
    """name -> bytes of each broken variant (each its own study, so each is filed apart)."""
    out: dict[str, bytes] = {}

    def variant(seed: int) -> bytes:
        return base_file(directory, seed)

    out["plain"] = variant(1)
    # the reported crash: an odd length for a US value raises with the bytes in its text
    out["pid_us_odd"] = splice(variant(2), "PatientID", "US", b"ZQXPHIID02X")
    out["modality_us_odd"] = splice(variant(3), "Modality", "US", b"ZQXPHIMO7")
    out["name_as_ds"] = splice(variant(4), "PatientName", "DS", b"ZQXPHIPN01")
    out["accession_as_da"] = splice(variant(5), "AccessionNumber", "DA", b"ZQXPHIAC03")
    out["description_as_at"] = splice(variant(6), "StudyDescription", "AT", b"ZQXPHISD04XY")
    out["institution_as_fl"] = splice(variant(7), "InstitutionName", "FL", b"ZQXPHIIN05XY")
    # a character set nobody knows, named by a marker, and text that is not valid in it
    out["unknown_charset"] = splice(variant(8), "SpecificCharacterSet", "CS", b"ZQXPHICS06")
    out["invalid_utf8"] = splice(
        splice(variant(9), "SpecificCharacterSet", "CS", b"ISO_IR 192"),
        "InstitutionName",
        "LO",
        b"ZQXPHIIN05\xff\xfe\xc3",
    )
    # non-conformant UIDs (letters, a marker) for the series and the instance
    out["bad_uids"] = _uid(
        _uid(variant(10), "SeriesInstanceUID", "1.2.ZQXPHIUI07"),
        "SOPInstanceUID",
        "1.2.ZQXPHIUI08",
    )
    # a patient ID too long for a folder name: the participants/ link fails with ENAMETOOLONG,
    # whose text names the path (the poison file of the classifier)
    out["pid_too_long"] = splice(
        splice(variant(11), "SpecificCharacterSet", "CS", b"ISO_IR 192"),
        "PatientID",
        "LO",
        ("ZQXPHIID02" + "\u20ac" * 90).encode(),
    )
    return out


def unsendable_files(directory: Path) -> dict[str, bytes]:
    """Variants a sender would refuse to send (the archive may still hold such bytes)."""
    return {
        # a length past the end of the file, in the middle of the patient's elements
        "pid_length_past_end": splice(
            base_file(directory, 20), "PatientID", "LO", b"ZQXPHIID02", length=0x7FF0
        ),
        # a patient name cut in the middle of its value: the file ends there
        "truncated_name": _cut_after(base_file(directory, 21), "PatientName"),
    }


def _cut_after(data: bytes, keyword: str) -> bytes:
    tag = TAGS[keyword]
    p = part10(data)
    for t, _vr, _length, start, _end in elements(data, p.start, len(data), False, True):
        if t == tag:
            return data[: start + 6]  # 6 bytes of the value: "ZQXPHI"
    raise AssertionError(f"{keyword} not in the file")


def write(directory: Path, files: dict[str, bytes]) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in files.items():
        path = directory / f"{name}.dcm"
        path.write_bytes(data)
        paths.append(path)
    return paths
