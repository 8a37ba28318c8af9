"""The release check reads a sequence still in its raw bytes with the codec, unchanged."""

from __future__ import annotations

import struct

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag

from fionagw.deid.release import Hit, Identifiers, check_release
from fionagw.dicom.raw import ITEM_DELIMITER, SEQUENCE_DELIMITER, element_header, item_header
from fionagw.dicom.walk import UNDEFINED

PRIVATE_SQ = 0x00091010


def _explicit(tag: int, vr: str, value: bytes) -> bytes:
    return element_header(tag, vr, len(value), False) + value


def _raw_sequence(value: bytes) -> Dataset:
    ds = Dataset()
    elem = RawDataElement(BaseTag(PRIVATE_SQ), "SQ", len(value), value, 0, False, True)
    ds._dict[BaseTag(PRIVATE_SQ)] = elem
    return ds


def _ids() -> Identifiers:
    ids = Identifiers()
    ids.add("patient_name", "SMITHERS^WAYLON")
    ids.add("uid", "1.2.826.0.1.99.7")
    return ids


def test_hits_inside_raw_items_name_their_path_and_the_element_stays_raw() -> None:
    implicit_item = struct.pack("<HHI", 0x0010, 0x0010, 16) + b"SMITHERS^WAYLON "
    nested = _explicit(0x00081155, "UI", b"1.2.826.0.1.99.7\0")
    inner = element_header(0x00081140, "SQ", UNDEFINED, False)
    inner += item_header(UNDEFINED) + nested + ITEM_DELIMITER + SEQUENCE_DELIMITER
    value = item_header(len(implicit_item)) + implicit_item + item_header(len(inner)) + inner
    ds = _raw_sequence(value)
    hits = check_release(ds, _ids())
    assert hits == [
        Hit("(0009,1010)[0]/(0010,0010)", "patient_name"),
        Hit("(0009,1010)[1]/(0008,1140)[0]/(0008,1155)", "uid"),
    ]
    assert type(ds._dict[PRIVATE_SQ]) is RawDataElement  # checked, not converted


def test_bytes_the_codec_does_not_read_are_left_to_pydicom() -> None:
    value = item_header(12) + _explicit(0x00100010, "ZZ", b"SMITHERS")  # an unknown VR
    ds = _raw_sequence(value)
    assert check_release(ds, _ids()) == [Hit("(0009,1010)[0]/(0010,0010)", "patient_name")]
    assert type(ds._dict[PRIVATE_SQ]) is not RawDataElement  # pydicom converted it
