"""Header reading: the elements of an image up to its pixels, for the series record.

The record built from them is in classify/record.py; its file in organize/series_json.py.
"""

from __future__ import annotations

import logging
import struct
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import pydicom
from pydicom.charset import convert_encodings, default_encoding
from pydicom.dataelem import RawDataElement, convert_raw_data_element, empty_value_for_VR
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.tag import BaseTag

log = logging.getLogger(__name__)

REQUIRED = (
    ("StudyInstanceUID", 0x0020000D),
    ("SeriesInstanceUID", 0x0020000E),
    ("SOPInstanceUID", 0x00080018),
)
# A dataset without the Part-10 preamble still starts with a group 0x0002 or 0x0008 tag.
_BARE_START = (b"\x02\x00", b"\x08\x00")


class NotDicomError(Exception):
    """The file is not DICOM or is broken; str() is the reason."""


class Connection(NamedTuple):
    calling: str
    called: str
    ip: str


def read_header(path: Path | str) -> Dataset:
    """Read the header of a DICOM file, stopping before the pixel data.

    Raises NotDicomError for a file that is not DICOM, is truncated/garbled, or lacks one of
    StudyInstanceUID, SeriesInstanceUID, SOPInstanceUID. OSError (missing file, permissions)
    passes through: that is not a property of the file's content.
    """
    path = Path(path)
    with open(path, "rb") as f:
        ds = _fast_read(f, str(path))
        if ds is None:
            ds = _pydicom_read(f)
    for keyword, tag in REQUIRED:
        try:
            elem = ds.get_item(tag)
            value = elem.value if elem is not None else None
        except Exception as exc:
            raise NotDicomError(f"broken: cannot read {keyword}: {exc}") from None
        if isinstance(value, bytes):
            value = value.strip(b"\0 ")
        if not value or not str(value).strip():
            raise NotDicomError(f"broken: missing {keyword}")
    return ds


def _pydicom_read(f: BinaryIO) -> Dataset:
    f.seek(0)
    # pydicom logs its complaints about odd files too; the warnings would only duplicate them
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return _pydicom_read_file(f)


def _pydicom_read_file(f: BinaryIO) -> Dataset:
    try:
        try:
            return pydicom.dcmread(f, stop_before_pixels=True)
        except InvalidDicomError:
            f.seek(0)
            if f.read(2) not in _BARE_START:
                raise NotDicomError("not DICOM: no 'DICM' preamble and no dataset start") from None
            f.seek(0)
            return pydicom.dcmread(f, stop_before_pixels=True, force=True)
    except (NotDicomError, OSError):
        raise
    except (
        EOFError,
        struct.error,
        ValueError,
        KeyError,
        TypeError,
        NotImplementedError,
        AttributeError,
        IndexError,
        OverflowError,
        UnicodeError,
    ) as exc:
        raise NotDicomError(f"unreadable DICOM: {type(exc).__name__}: {exc}") from None


# --- fast path -------------------------------------------------------------------------
# pydicom's reader costs ~1 ms per MR header. The common case (Part-10 file, little endian,
# explicit or implicit VR) is parsed here into the same raw elements pydicom would keep
# (values stay undecoded until used). Anything unusual returns None and pydicom reads it.

_CHUNK = 1 << 16
_UNDEFINED = 0xFFFFFFFF
_ITEM, _ITEM_END, _SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_PIXELS = frozenset({0x7FE00010, 0x7FE00009, 0x7FE00008})
_STOP = _PIXELS | {_ITEM, _ITEM_END, _SEQ_END}
_LONG_VRS = frozenset(
    v.encode()
    for v in ("OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV")
)
_SHORT_VRS = frozenset(
    v.encode()
    for v in (
        "AE",
        "AS",
        "AT",
        "CS",
        "DA",
        "DS",
        "DT",
        "FL",
        "FD",
        "IS",
        "LO",
        "LT",
        "PN",
        "SH",
        "SL",
        "SS",
        "ST",
        "TM",
        "UI",
        "UL",
        "US",
    )
)
_VR_TEXT = {v: v.decode() for v in _LONG_VRS | _SHORT_VRS}
_HEAD = struct.Struct("<HH2sH")
_HEAD_IMPLICIT = struct.Struct("<HHI")
_U32 = struct.Struct("<I")


class _Slow(Exception):
    """This file needs pydicom's reader."""


class _More(Exception):
    """The header goes past the bytes read so far."""


def _fast_read(f: BinaryIO, name: str) -> Dataset | None:
    data = f.read(_CHUNK)
    complete = len(data) < _CHUNK
    while True:
        try:
            return _fast_parse(data, complete, name)
        except _More:
            data += f.read()
            complete = True
        except (_Slow, struct.error, UnicodeDecodeError, ValueError):
            return None


def _fast_parse(data: bytes, complete: bool, name: str) -> Dataset | None:
    if data[128:132] != b"DICM":
        raise _Slow
    meta, pos = _elements(data, 132, complete, implicit=False, group2=True)
    syntax_elem = meta.get(0x00020010)
    if syntax_elem is None or not syntax_elem.value:
        raise _Slow
    syntax = syntax_elem.value.rstrip(b"\0 ").decode("ascii")
    if syntax == "1.2.840.10008.1.2":
        implicit = True
    elif syntax in ("1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99") or syntax.startswith(
        ("1.2.840.10008.1.2.4.95",)
    ):
        raise _Slow  # big endian, deflated, JPIP referenced-deflate
    else:
        implicit = False  # explicit VR little endian, and every encapsulated syntax
    elements, _ = _elements(data, pos, complete, implicit=implicit, group2=False)
    if not elements:
        raise _Slow
    encoding: Any = default_encoding
    charset = elements.get(0x00080005)
    if charset is not None:
        encoding = _encodings(charset.VR, charset.value)
    ds = FileDataset(name, elements, data[:128], FileMetaDataset(meta), implicit, True)
    ds.set_original_encoding(implicit, True, encoding)
    return ds


@lru_cache(maxsize=32)
def _encodings(vr: str | None, value: bytes | None) -> Any:
    """Python encodings of a raw (0008,0005) Specific Character Set (few distinct values)."""
    raw = RawDataElement(BaseTag(0x00080005), vr, len(value or b""), value, 0, False, True)
    return convert_encodings(convert_raw_data_element(raw).value)


def _elements(
    data: bytes, pos: int, complete: bool, *, implicit: bool, group2: bool
) -> tuple[dict[BaseTag, RawDataElement], int]:
    """Top-level raw elements from ``pos``: the group 2 run, or the dataset up to pixels."""
    out: dict[BaseTag, RawDataElement] = {}
    size = len(data)
    unpack = _HEAD_IMPLICIT.unpack_from if implicit else _HEAD.unpack_from
    u32 = _U32.unpack_from
    long_vrs, vr_text, stop = _LONG_VRS, _VR_TEXT, _STOP
    while pos + 8 <= size:
        vr = None
        if implicit:
            group, element, length = unpack(data, pos)
            start = pos + 8
        else:
            group, element, raw_vr, length = unpack(data, pos)
            vr = vr_text.get(raw_vr)
            if vr is None:
                raise _Slow  # unknown VR or a switch to implicit VR
            if raw_vr in long_vrs:
                if pos + 12 > size:
                    break
                length = u32(data, pos + 8)[0]
                start = pos + 12
            else:
                start = pos + 8
        if group2 != (group == 2) or group == 0:
            if group2:
                return out, pos
            raise _Slow  # a second meta group, or a command set (pydicom reads it implicit)
        tag = BaseTag(group << 16 | element)
        if tag in stop:
            if tag in _PIXELS:
                return out, pos
            raise _Slow
        if length == _UNDEFINED:
            end = _end_of_sequence(data, start, complete)
            value: bytes | None = data[start : end - 8]
            vr = "SQ"
            length = len(value)
        else:
            end = start + length
            if end > size:
                break
            value = data[start:end] if length else empty_value_for_VR(vr, raw=True)
        out[tag] = RawDataElement(tag, vr, length, value, start, implicit, True)
        pos = end
    if not complete:
        raise _More
    if pos == size:
        return out, pos
    raise _Slow  # truncated, or stray bytes at the end: let pydicom decide


def _need(data: bytes, end: int, complete: bool) -> None:
    if end > len(data):
        raise _More if not complete else _Slow


def _end_of_sequence(data: bytes, pos: int, complete: bool, depth: int = 0) -> int:
    """Position just after the sequence delimiter of an undefined-length value at ``pos``."""
    if depth > 16:
        raise _Slow
    while True:
        _need(data, pos + 8, complete)
        group, element, length = _HEAD_IMPLICIT.unpack_from(data, pos)
        tag = group << 16 | element
        pos += 8
        if tag == _SEQ_END:
            return pos
        if tag != _ITEM:
            raise _Slow  # undefined length but not a sequence (or garbage)
        if length != _UNDEFINED:
            pos += length
            continue
        pos = _end_of_item(data, pos, complete, depth)


def _end_of_item(data: bytes, pos: int, complete: bool, depth: int) -> int:
    """Position after the item delimiter of an undefined-length item starting at ``pos``."""
    implicit: bool | None = None
    while True:
        _need(data, pos + 8, complete)
        group, element, raw_vr, short = _HEAD.unpack_from(data, pos)
        tag = group << 16 | element
        if tag == _ITEM_END:
            return pos + 8
        if implicit is None:  # items inside UN (or odd writers) may be implicit VR
            implicit = raw_vr not in _LONG_VRS and raw_vr not in _SHORT_VRS
        if implicit:
            length = _U32.unpack_from(data, pos + 4)[0]
            start = pos + 8
        elif raw_vr in _LONG_VRS:
            _need(data, pos + 12, complete)
            length = _U32.unpack_from(data, pos + 8)[0]
            start = pos + 12
        elif raw_vr in _SHORT_VRS:
            length, start = short, pos + 8
        else:
            raise _Slow
        if length == _UNDEFINED:
            pos = _end_of_sequence(data, start, complete, depth + 1)
        else:
            pos = start + length
            _need(data, pos, complete)
