"""Fast Part-10 reading and writing for the de-identification path.

``read(path)`` gives what ``dcmread(path)`` gives (the same raw elements, offsets, encodings
and file meta) for the files a gateway sees: little endian, explicit or implicit VR, any
encapsulated transfer syntax. It reads the file in one call and splits its elements with
``struct.unpack_from`` instead of pydicom's file-object generator, about four times faster;
undefined-length sequences and values are read by pydicom's own functions. Anything unusual
(no preamble, big endian, deflate, an unknown VR, an implicit/explicit switch) is left to
``dcmread`` itself, so errors and heuristics stay pydicom's. One difference on purpose: a value
that runs past the end of the file raises TruncatedError, where dcmread would quietly return a
short value (a gateway must not send half an image).

``encode(ds)`` gives the bytes ``dcmwrite(..., enforce_file_format=True)`` writes, except for
the preamble, always 128 zero bytes (an input's preamble is not carried over). pydicom
spends tens of microseconds per element it writes; most elements of a de-identified object
are still the raw elements read from the input, written here straight from their bytes (same
transfer syntax). New ASCII text/UID values and sequences are encoded here too; everything
else goes through pydicom's element writer. Pixel data are copied as read, never decoded.
Big endian and deflated transfer syntaxes fall back to ``dcmwrite``.
"""

from __future__ import annotations

import copy
import io
import struct
from pathlib import Path

from pydicom import dcmread, dcmwrite
from pydicom.charset import convert_encodings, default_encoding
from pydicom.datadict import _dictionary_vr_fast
from pydicom.dataelem import DataElement, RawDataElement, empty_value_for_VR
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import ENCODED_VR, read_sequence
from pydicom.fileutil import read_undefined_length_value
from pydicom.filewriter import write_data_element, write_file_meta_info
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag, SequenceDelimiterTag
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    PrivateTransferSyntaxes,
)
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32, PersonName
from pydicom.values import convert_string

_LONG_VRS = frozenset(str(vr) for vr in EXPLICIT_VR_LENGTH_32)
_SIMPLE_TS = frozenset(
    {
        ImplicitVRLittleEndian,
        ExplicitVRLittleEndian,
        "1.2.840.10008.1.2.4.50",
        "1.2.840.10008.1.2.4.51",
        "1.2.840.10008.1.2.4.57",
        "1.2.840.10008.1.2.4.70",
        "1.2.840.10008.1.2.4.80",
        "1.2.840.10008.1.2.4.81",
        "1.2.840.10008.1.2.4.90",
        "1.2.840.10008.1.2.4.91",
        "1.2.840.10008.1.2.5",
        "1.2.840.10008.1.2.4.201",
        "1.2.840.10008.1.2.4.202",
        "1.2.840.10008.1.2.4.203",
    }
)
# String VRs written here when the value is ASCII text: (padding byte)
_TEXT_PAD = {
    **dict.fromkeys(
        ("AE", "AS", "CS", "DA", "DT", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UR", "UT"), b" "
    ),
    "UI": b"\0",
}
_VRS = {vr: vr.decode() for vr in ENCODED_VR if len(vr) == 2}
_EXPLICIT = struct.Struct("<HH2sH")
_IMPLICIT = struct.Struct("<HHL")
_UL = struct.Struct("<L")
_ITEM = b"\xfe\xff\x00\xe0"
_ITEM_END = b"\xfe\xff\x0d\xe0\0\0\0\0"
_SEQ_END = b"\xfe\xff\xdd\xe0\0\0\0\0"


# --- reading ------------------------------------------------------------------------------


class _Unusual(Exception):
    """The file needs pydicom's full reader."""


class TruncatedError(EOFError):
    """A value runs past the end of the file (dcmread would return the part it could read)."""


def read(path: Path | str) -> FileDataset:
    """``dcmread(path)``, faster for ordinary little-endian Part-10 files (see module doc)."""
    path = str(path)
    with open(path, "rb") as f:
        data = f.read()
    try:
        return _parse(path, data)
    except (_Unusual, struct.error, IndexError):
        return dcmread(path)


def _parse(path: str, data: bytes) -> FileDataset:
    if len(data) < 140 or data[128:132] != b"DICM":
        raise _Unusual
    meta_elems, pos, _ = _elements(data, 132, False, default_encoding, meta=True)
    if not meta_elems or 0x00020010 not in meta_elems:
        raise _Unusual
    ts = meta_elems[0x00020010].value.decode("ascii").strip("\0 ")
    if ts in (ExplicitVRBigEndian, DeflatedExplicitVRLittleEndian) or ts in PrivateTransferSyntaxes:
        raise _Unusual
    implicit = ts == ImplicitVRLittleEndian
    if len(data) - pos < 8 or data[pos : pos + 2] == b"\0\0":  # empty, or a command set
        raise _Unusual
    looks_explicit = 0x40 < data[pos + 4] < 0x5B and 0x40 < data[pos + 5] < 0x5B
    if looks_explicit == implicit:  # pydicom would switch VR encoding: let it
        raise _Unusual
    elems, _, encoding = _elements(data, pos, implicit, default_encoding)

    file_meta = FileMetaDataset(meta_elems)
    file_meta.set_original_encoding(False, True, default_encoding)
    dataset = Dataset(elems, parent_encoding=default_encoding)
    dataset.set_original_encoding(implicit, True, encoding)
    ds = FileDataset(path, dataset, data[:128], file_meta, implicit, True)
    ds.set_original_encoding(implicit, True, dataset._character_set)
    return ds


def _elements(
    data: bytes,
    pos: int,
    implicit: bool,
    encoding,
    meta: bool = False,
) -> tuple[dict, int, object]:
    """The elements of one dataset from ``pos`` to the end (or, for ``meta``, the end of
    group 2), as pydicom's data_element_generator yields them."""
    elems: dict = {}
    end = len(data)
    fp = None
    while pos < end:
        if end - pos < 8:
            raise _Unusual  # pydicom ignores a short tail; keep its behaviour by using it
        if implicit:
            group, element, length = _IMPLICIT.unpack_from(data, pos)
            vr = None
            start = pos + 8
        else:
            group, element, vr_bytes, length = _EXPLICIT.unpack_from(data, pos)
            if meta and group != 2:
                break
            vr = _VRS.get(vr_bytes)
            if vr is None:
                raise _Unusual
            if vr in _LONG_VRS:
                length = _UL.unpack_from(data, pos + 8)[0]
                start = pos + 12
            else:
                start = pos + 8
        tag = group << 16 | element
        if tag == 0xFFFEE00D:
            raise _Unusual
        if length != 0xFFFFFFFF:
            if start + length > end:
                raise TruncatedError(
                    f"({group:04X},{element:04X}) needs {length} bytes, the "
                    f"file has {end - start} left"
                )
            if length:
                value = data[start : start + length]
            else:
                value = empty_value_for_VR(vr, raw=True)
            if tag == 0x00080005:
                encoding = convert_encodings(convert_string(value or b"", True))
            key = BaseTag(tag)
            elems[key] = RawDataElement(key, vr, length, value, start, implicit, True)
            pos = start + length
            continue
        # undefined length: pydicom's own readers, from a file object over the same bytes
        if vr == "UN":
            raise _Unusual  # pydicom may read it as a sequence (config dependent)
        if vr is None:
            try:
                vr = _dictionary_vr_fast(tag)
            except KeyError:
                if data[start : start + 4] == _ITEM:
                    vr = "SQ"
        if fp is None:
            fp = DicomBytesIO(data)
            fp.is_little_endian, fp.is_implicit_VR = True, implicit
        fp.seek(start)
        if vr == "SQ":
            seq = read_sequence(fp, implicit, True, length, encoding)
            elems[BaseTag(tag)] = DataElement(
                BaseTag(tag), vr, seq, start, is_undefined_length=True
            )
        else:
            value = read_undefined_length_value(fp, True, SequenceDelimiterTag, None)
            elems[BaseTag(tag)] = RawDataElement(
                BaseTag(tag), vr, length, value, start, implicit, True
            )
        pos = fp.tell()
    return elems, pos, encoding


# --- writing ------------------------------------------------------------------------------


def raw_text_element(ds: Dataset, tag: int, vr: str, value: object) -> RawDataElement | None:
    """A new text or UID element (str or list of str, ASCII) as a raw element in the encoding
    ``ds`` was read in, with the bytes pydicom would write for it; None when that does not
    apply (other VRs or values, a dataset not read from bytes, big endian). Raw elements cost
    a tuple instead of a validated DataElement, and are written and scanned as they are."""
    pad = _TEXT_PAD.get(vr)
    if pad is None:
        return None
    implicit, little = ds.original_encoding
    if implicit is None or not little:
        return None
    if isinstance(value, str):
        text = value
    elif isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        text = "\\".join(value)
    else:
        return None
    if not text.isascii() or "\x1b" in text:  # ESC: ISO 2022 code extensions, not ASCII
        return None
    raw = text.encode("ascii")
    if len(raw) % 2:
        raw += pad
    if len(raw) > 0xFFFF and vr not in _LONG_VRS:
        return None
    return RawDataElement(BaseTag(tag), vr, len(raw), raw, 0, implicit, True)


def encode(ds: Dataset) -> bytes:
    """Part-10 bytes of ``ds`` (which must have file_meta with a TransferSyntaxUID)."""
    ts = ds.file_meta.TransferSyntaxUID
    if ts not in _SIMPLE_TS:
        buf = io.BytesIO()
        dcmwrite(buf, ds, enforce_file_format=True)
        return b"\0" * 128 + buf.getvalue()[128:]  # a preamble is always written there
    implicit = ts == ImplicitVRLittleEndian
    meta = ds.file_meta
    # as dcmwrite: the meta names the dataset's SOP class and instance ...
    sync = {}
    for meta_kw, ds_kw in (
        ("MediaStorageSOPClassUID", "SOPClassUID"),
        ("MediaStorageSOPInstanceUID", "SOPInstanceUID"),
    ):
        in_meta, in_ds = meta.get(meta_kw), ds.get(ds_kw)
        if in_meta is None or (in_ds and in_ds != in_meta):
            sync[meta_kw] = in_ds
    if sync:
        meta = copy.deepcopy(meta)
        for keyword, value in sync.items():
            setattr(meta, keyword, value)
    # ... and pixel data has an undefined length exactly when it is encapsulated
    pixel = ds._dict.get(0x7FE00010)
    if pixel is not None and ts.is_compressed != (
        pixel.length == 0xFFFFFFFF
        if isinstance(pixel, RawDataElement)
        else pixel.is_undefined_length
    ):
        ds["PixelData"].is_undefined_length = ts.is_compressed
    parts = [b"\0" * 128, b"DICM", _encode_meta(meta)]
    _encode_dataset(ds, implicit, ds.get("SpecificCharacterSet", default_encoding), parts)
    return b"".join(parts)


# (0002,0001) version, media storage SOP class / instance, transfer syntax, implementation
# class UID (non-empty) and implementation version name: pydicom adds the missing ones
_META_REQUIRED = (0x00020001, 0x00020002, 0x00020003, 0x00020010, 0x00020012)


def _encode_meta(meta: FileMetaDataset) -> bytes:
    """The file meta group as ``write_file_meta_info(enforce_standard=True)`` writes it."""
    elements = meta._dict
    complete = 0x00020013 in elements and all(
        tag in elements
        and (
            elements[tag].length
            if isinstance(elements[tag], RawDataElement)
            else not elements[tag].is_empty
        )
        for tag in _META_REQUIRED
    )
    if not complete or any(tag >> 16 != 2 for tag in elements):
        fp = DicomBytesIO()  # pydicom adds what is missing, or raises
        fp.is_little_endian, fp.is_implicit_VR = True, False
        write_file_meta_info(fp, meta, enforce_standard=True)
        return fp.getvalue()
    body: list[bytes] = []
    _encode_dataset(meta, False, default_encoding, body, skip=0x00020000)
    data = b"".join(body)
    return _EXPLICIT.pack(2, 0, b"UL", 4) + _UL.pack(len(data)) + data


def _encode_dataset(
    ds: Dataset, implicit: bool, encodings, parts: list[bytes], skip: int = -1
) -> None:
    elements = ds._dict
    for tag in sorted(elements, key=int):  # int keys: BaseTag compares in Python
        if tag & 0xFFFF == 0 and (tag >> 16 > 6 or int(tag) == skip):
            continue  # group lengths: pydicom does not write them either
        elem = elements[tag]
        if isinstance(elem, RawDataElement):
            if (
                elem.is_little_endian
                and elem.is_implicit_VR == implicit
                and elem.length != 0xFFFFFFFF
                and (implicit or elem.VR is not None)
                and elem.value is not None
                and len(elem.value) == elem.length
            ):
                parts.append(_header(tag, elem.VR, elem.length, implicit))
                parts.append(elem.value)
                continue
        elif _encode_new(tag, elem, implicit, encodings, parts):
            continue
        fp = DicomBytesIO()
        fp.is_little_endian, fp.is_implicit_VR = True, implicit
        write_data_element(fp, ds[tag], encodings)
        parts.append(fp.getvalue())


def _header(tag: int, vr: str | None, length: int, implicit: bool) -> bytes:
    if implicit:
        return _IMPLICIT.pack(tag >> 16, tag & 0xFFFF, length)
    if vr in _LONG_VRS:
        return struct.pack("<HH2sHL", tag >> 16, tag & 0xFFFF, vr.encode(), 0, length)
    return _EXPLICIT.pack(tag >> 16, tag & 0xFFFF, vr.encode(), length)


def _encode_new(tag: int, elem: DataElement, implicit: bool, encodings, parts: list[bytes]) -> bool:
    """Append the bytes of an ASCII text/UID value or a sequence, as pydicom writes them;
    False (nothing appended) for anything else."""
    vr = elem.VR
    if vr == "SQ":
        return _encode_sequence(tag, elem, implicit, encodings, parts)
    pad = _TEXT_PAD.get(vr)
    if pad is None:
        return False
    value = elem.value
    if value is None or value == "":
        text = ""
    elif isinstance(value, str | PersonName):
        text = str(value)
    elif isinstance(value, MultiValue | list | tuple) and all(
        isinstance(v, str | PersonName) for v in value
    ):
        text = "\\".join(str(v) for v in value)
    else:
        return False
    if not text.isascii():
        return False
    raw = text.encode("ascii")
    if len(raw) % 2:
        raw += pad
    if not implicit and vr not in _LONG_VRS and len(raw) > 0xFFFF:
        return False
    parts.append(_header(tag, vr, len(raw), implicit))
    parts.append(raw)
    return True


def _encode_sequence(
    tag: int, elem: DataElement, implicit: bool, encodings, parts: list[bytes]
) -> bool:
    items = elem.value or ()
    for item in items:
        if (
            0x00080005 in item._dict
            or item.original_encoding not in ((implicit, True), (None, None))
            or any(" or " in (e.VR or "") for e in item._dict.values())
        ):
            return False  # own character set, other encoding, ambiguous VRs: pydicom
    body: list[bytes] = []
    for item in items:
        content: list[bytes] = []
        _encode_dataset(item, implicit, encodings, content)
        if getattr(item, "is_undefined_length_sequence_item", False):
            body += [_ITEM, b"\xff\xff\xff\xff", *content, _ITEM_END]
        else:
            body += [_ITEM, _UL.pack(sum(map(len, content))), *content]
    if elem.is_undefined_length:
        parts.append(_header(tag, "SQ", 0xFFFFFFFF, implicit))
        parts += body
        parts.append(_SEQ_END)
    else:
        parts.append(_header(tag, "SQ", sum(map(len, body)), implicit))
        parts += body
    return True


def write(ds: Dataset, path: Path | str) -> Path:
    path = Path(path)
    path.write_bytes(encode(ds))
    return path
