"""Walked elements as pydicom objects, and raw element headers for writing them back.

:func:`read_part10` builds the ``FileDataset`` that ``dcmread`` builds from a Part-10 file's
bytes: the same ``RawDataElement`` tuples (tag, VR, length, value, value offset, encoding),
the same file meta and character set, values undecoded until used. A sequence of undefined
length becomes pydicom's parsed ``Sequence``, as dcmread reads it, or, with
``lazy_sequences``, stays raw: its items' bytes as a defined-length value, parsed by pydicom
only if someone reads it (the classifier reads few sequences). Any other value of undefined
length (encapsulated pixel data) is a raw element of undefined length.

Where pydicom would read the bytes differently from the plain reading here (a private
transfer syntax registered with pydicom, an empty dataset, whose encoding pydicom guesses,
an undefined-length UN, which pydicom's settings decide) an
:class:`~fionagw.dicom.errors.UnsupportedError` leaves the file to pydicom.
"""

from __future__ import annotations

from collections.abc import Container
from struct import Struct
from typing import Any

from pydicom.charset import default_encoding
from pydicom.dataelem import DataElement, RawDataElement, empty_value_for_VR
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_sequence
from pydicom.tag import BaseTag
from pydicom.uid import PrivateTransferSyntaxes

from fionagw.dicom.charset import python_encodings
from fionagw.dicom.errors import UnsupportedError
from fionagw.dicom.tags import SPECIFIC_CHARACTER_SET
from fionagw.dicom.vr import LONG_LENGTH_NAMES, dictionary_vr
from fionagw.dicom.walk import UNDEFINED, elements, part10

# pydicom's RawDataElement is a NamedTuple: its generated constructor costs as much as all the
# rest of reading an element, so elements are made by tuple.__new__ with the field layout that
# pydicom 3 has (checked here), and the BaseTag objects of the tags seen are reused.
_RAW_FIELDS = ("tag", "VR", "length", "value", "value_tell", "is_implicit_VR", "is_little_endian")
if RawDataElement._fields[:7] != _RAW_FIELDS or RawDataElement._field_defaults != {
    "is_raw": True,
    "is_buffered": False,
}:
    raise ImportError("pydicom's RawDataElement has changed: fionagw.dicom.raw needs a look")
_TAGS: dict[int, BaseTag] = {}
_MAX_TAGS = 1 << 16  # distinct tags kept (private tags vary by site; a crafted file may not)


def raw_elements(
    data: bytes,
    pos: int,
    end: int,
    implicit: bool,
    little: bool,
    *,
    lazy_sequences: bool = False,
    stop: Container[int] = (),
    encodings: Any = default_encoding,
) -> tuple[dict[BaseTag, Any], Any]:
    """The dataset in ``data[pos:end]`` as pydicom's reader keeps it, and its encodings."""
    out: dict[BaseTag, Any] = {}
    new, raw, tags = tuple.__new__, RawDataElement, _TAGS  # locals: the loop runs per element
    for tag, vr, length, start, value_end in elements(data, pos, end, implicit, little, stop=stop):
        key = tags.get(tag)
        if key is None:
            if len(tags) >= _MAX_TAGS:
                tags.clear()
            key = tags[tag] = BaseTag(tag)
        if length == UNDEFINED:
            out[key] = _undefined_element(
                key, vr, data, start, value_end, implicit, little, lazy_sequences, encodings
            )
            continue
        value = data[start:value_end] if length else empty_value_for_VR(vr, raw=True)
        out[key] = new(raw, (key, vr, length, value, start, implicit, little, True, False))
        if tag == SPECIFIC_CHARACTER_SET:
            encodings = python_encodings(value, little)
    return out, encodings


def _undefined_element(
    tag: BaseTag,
    vr: str | None,
    data: bytes,
    start: int,
    end: int,
    implicit: bool,
    little: bool,
    lazy: bool,
    encodings: Any,
) -> DataElement | RawDataElement:
    """An undefined-length element (its bytes checked by the walk) as pydicom reads it."""
    if vr is None:  # implicit VR: the dictionary says; an unknown tag's value is items
        vr = dictionary_vr(tag) or "SQ"
    elif vr == "UN":
        if not lazy:
            raise UnsupportedError("undefined-length UN (pydicom's settings decide)", start)
        vr = "SQ"  # read as a sequence (of implicit VR items) by pydicom too
    if vr != "SQ":
        return RawDataElement(tag, vr, UNDEFINED, data[start:end], start, implicit, little)
    if lazy:
        return RawDataElement(tag, vr, end - start, data[start:end], start, implicit, little)
    fp = DicomBytesIO(data)
    fp.is_little_endian, fp.is_implicit_VR = little, implicit
    fp.seek(start)
    try:
        sequence = read_sequence(fp, implicit, little, UNDEFINED, encodings)
    except Exception:  # noqa: BLE001 - pydicom's reader raises many types; it decides
        raise UnsupportedError("a sequence pydicom reads its own way", start) from None
    return DataElement(tag, vr, sequence, start, is_undefined_length=True)


def read_part10(
    data: bytes,
    name: str,
    *,
    lazy_sequences: bool = False,
    stop: Container[int] = (),
) -> FileDataset:
    """``dcmread`` of a Part-10 file's bytes (up to the first tag in ``stop``).

    ``name`` becomes the dataset's filename. Raises CodecError for bytes this reading does
    not cover (the caller falls back to pydicom or refuses the file)."""
    p = part10(data)
    implicit, little = p.syntax.implicit, p.syntax.little
    if p.syntax_uid in PrivateTransferSyntaxes:
        raise UnsupportedError("a private transfer syntax registered with pydicom", p.start)
    if p.start == len(data):
        raise UnsupportedError("empty dataset (pydicom guesses its encoding)", p.start)
    meta_elements = {}
    for tag, vr, length, start, end in p.meta:
        if length == UNDEFINED:
            raise UnsupportedError("undefined length in the file meta", start)
        key = BaseTag(tag)
        value = data[start:end] if length else empty_value_for_VR(vr, raw=True)
        meta_elements[key] = RawDataElement(key, vr, length, value, start, False, True)
    elems, encodings = raw_elements(
        data, p.start, len(data), implicit, little, lazy_sequences=lazy_sequences, stop=stop
    )
    file_meta = FileMetaDataset(meta_elements)
    file_meta.set_original_encoding(False, True, default_encoding)
    ds = FileDataset(name, elems, data[:128], file_meta, implicit, little)
    ds.set_original_encoding(implicit, little, encodings)
    return ds


# --- writing raw elements ----------------------------------------------------------------------

_EXPLICIT = Struct("<HH2sH")
_EXPLICIT_LONG = Struct("<HH2sHL")
_IMPLICIT = Struct("<HHL")
ITEM_DELIMITER = b"\xfe\xff\x0d\xe0\0\0\0\0"  # the item delimitation item, encoded
SEQUENCE_DELIMITER = b"\xfe\xff\xdd\xe0\0\0\0\0"


def item_header(length: int) -> bytes:
    """The little-endian header of a sequence item (``length`` may be UNDEFINED)."""
    return _IMPLICIT.pack(0xFFFE, 0xE000, length)


def element_header(tag: int, vr: str | None, length: int, implicit: bool) -> bytes:
    """The little-endian header of an element (``vr`` is ignored in implicit VR)."""
    if implicit:
        return _IMPLICIT.pack(tag >> 16, tag & 0xFFFF, length)
    if vr is None:
        raise ValueError(f"explicit VR needs the VR of {tag:08X}")
    if vr in LONG_LENGTH_NAMES:
        return _EXPLICIT_LONG.pack(tag >> 16, tag & 0xFFFF, vr.encode(), 0, length)
    return _EXPLICIT.pack(tag >> 16, tag & 0xFFFF, vr.encode(), length)
