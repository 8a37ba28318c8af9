"""The receiver's identifier check: the codec's walk, and pydicom where the walk cannot tell."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian

from fionagw.dicom.raw import element_header
from fionagw.receive import store

SOP_CLASS, SOP, STUDY, SERIES = "1.2.840.10008.5.1.4.1.1.4", "1.2.3.4.5", "1.2.3.4", "1.2.3.4.1"


def _uid(tag: int, uid: str) -> bytes:
    value = uid.encode() + b"\0" * (len(uid) % 2)
    return element_header(tag, "UI", len(value), False) + value


def _meta(syntax: str) -> bytes:
    meta = _uid(0x00020010, syntax)
    length = element_header(0x00020000, "UL", 4, False) + struct.pack("<I", len(meta))
    return b"\0" * 128 + b"DICM" + length + meta


def _dataset(private_bytes: int) -> bytes:
    private = element_header(0x00091001, "OB", private_bytes, False) + b"\0" * private_bytes
    study_and_series = _uid(0x0020000D, STUDY) + _uid(0x0020000E, SERIES)
    pixels = element_header(0x7FE00010, "OW", 8, False) + b"\0" * 8
    return _uid(0x00080016, SOP_CLASS) + _uid(0x00080018, SOP) + private + study_and_series + pixels


def test_identifiers_of_a_whole_head_come_from_the_walk(tmp_path: Path) -> None:
    data = _meta(ExplicitVRLittleEndian) + _dataset(100)
    ids = store._scan_identifiers(data)
    assert ids == store.Identifiers(SOP_CLASS, SOP, STUDY, SERIES)
    path = tmp_path / "small.dcm"
    path.write_bytes(data)
    assert store.read_identifiers(path) == ids


def test_a_head_that_ends_between_elements_before_the_uids_goes_to_pydicom(tmp_path: Path) -> None:
    head_end = len(_meta(ExplicitVRLittleEndian) + _dataset(0))
    head_end -= len(_uid(0x0020000D, STUDY) + _uid(0x0020000E, SERIES)) + 16  # no UIDs, pixels
    private_bytes = store.HEAD_BYTES - head_end  # the private value ends where the head does
    data = _meta(ExplicitVRLittleEndian) + _dataset(private_bytes)
    head = data[: store.HEAD_BYTES]
    assert store._scan_identifiers(head) is None  # the walk ended cleanly, but too early
    path = tmp_path / "long.dcm"
    path.write_bytes(data)
    expected = store.Identifiers(SOP_CLASS, SOP, STUDY, SERIES)
    assert store.read_identifiers(path, head) == expected
    assert store.read_identifiers(path) == expected


def test_a_deflated_dataset_is_read_by_the_walk() -> None:
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    deflated = packer.compress(_dataset(5000)) + packer.flush()
    ids = store._scan_identifiers(_meta(DeflatedExplicitVRLittleEndian) + deflated)
    assert ids == store.Identifiers(SOP_CLASS, SOP, STUDY, SERIES)
