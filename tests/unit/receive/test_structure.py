"""The full structure walk of a received object (receive/structure.py) and the UID check."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from fionagw.dicom.raw import element_header
from fionagw.receive import store, structure
from support.site import pydicom_test_file


def _meta(syntax: str) -> bytes:
    value = syntax.encode() + b"\0" * (len(syntax) % 2)
    meta = element_header(0x00020010, "UI", len(value), False) + value
    length = element_header(0x00020000, "UL", 4, False) + struct.pack("<I", len(meta))
    return b"\0" * 128 + b"DICM" + length + meta


def _sequence(inner_length: int, implicit: bool = False) -> bytes:
    """A defined-length sequence (0040,0275) of one defined-length item holding (0040,1001)
    SH "ABCD", whose length field says ``inner_length``."""
    inner = element_header(0x00401001, "SH", inner_length, implicit) + b"ABCD"
    item = struct.pack("<HHI", 0xFFFE, 0xE000, len(inner)) + inner
    return element_header(0x00400275, "SQ", len(item), implicit) + item


def _file(tail: bytes, implicit: bool = False) -> bytes:
    series = b"1.2.3.4.1\0"
    head = element_header(0x0020000E, "UI", len(series), implicit) + series
    syntax = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    return _meta(syntax) + head + tail


@pytest.mark.parametrize("implicit", [False, True])
def test_nested_items_are_walked(implicit: bool) -> None:
    structure.check_bytes(_file(_sequence(4, implicit), implicit))
    with pytest.raises(structure.BrokenStructure, match=r"\(0040,1001\)"):
        structure.check_bytes(_file(_sequence(40, implicit), implicit))  # beyond its item


def test_truncated_and_wrong_lengths_anywhere() -> None:
    data = Path(pydicom_test_file("CT_small.dcm")).read_bytes()
    structure.check_bytes(data)
    with pytest.raises(structure.BrokenStructure, match="needs"):
        structure.check_bytes(data[:-100])  # inside the pixel data
    pos = data.index(b"\x28\x00\x30\x00DS")  # Pixel Spacing, after the Series UID
    longer = bytearray(data)
    longer[pos + 6 : pos + 8] = (int.from_bytes(data[pos + 6 : pos + 8], "little") + 6).to_bytes(
        2, "little"
    )
    with pytest.raises(structure.BrokenStructure):
        structure.check_bytes(bytes(longer))


def test_check_file_reads_through_a_map(tmp_path: Path) -> None:
    path = tmp_path / "x.dcm"
    path.write_bytes(Path(pydicom_test_file("MR_small.dcm")).read_bytes())
    structure.check_file(path)
    assert dcmread(path).Modality == "MR"
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(structure.BrokenStructure):
        structure.check_file(path)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("1.2.840.10008.5.1.4.1.1.4", None),
        ("1.2.0.04", None),  # leading zeros: not conformant, but still its own name
        ("1." + "2" * 63, "longer than 64 characters"),
        ("1.2.3/4", "not digits and dots, or an empty component"),
        ("1.2.3?4", "not digits and dots, or an empty component"),
        ("1.2.3_4", "not digits and dots, or an empty component"),
        ("1..2", "not digits and dots, or an empty component"),
        (".1.2", "not digits and dots, or an empty component"),
        ("1.2.", "not digits and dots, or an empty component"),
    ],
)
def test_uid_problem(value: str, problem: str | None) -> None:
    assert store.uid_problem(value) == problem
