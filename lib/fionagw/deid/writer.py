"""Fast Part-10 reading and writing for the de-identification path.

``read(path)`` gives what ``dcmread(path)`` gives (the same raw elements, offsets, encodings
and file meta): the file is read in one call and its elements split by the codec
(:mod:`fionagw.dicom`) instead of pydicom's file-object reader, about four times faster;
undefined-length sequences are parsed by pydicom's own function once the codec has checked
their bytes. Anything the codec leaves to pydicom (no preamble, deflate, an unknown VR, an
implicit/explicit switch, a header cut short) is read by ``dcmread`` itself, so errors and
heuristics stay pydicom's. One difference on purpose: a value that runs past the end of the
file raises TruncatedError, where dcmread would quietly return a short value (a gateway must
not send half an image).

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
from pydicom.charset import default_encoding
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element, write_file_meta_info
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pydicom.valuerep import PersonName

from fionagw.dicom.errors import CodecError, TruncatedError
from fionagw.dicom.raw import (
    ITEM_DELIMITER,
    SEQUENCE_DELIMITER,
    element_header,
    item_header,
    read_part10,
)
from fionagw.dicom.tags import GROUP_LENGTH_META
from fionagw.dicom.vr import LONG_LENGTH_NAMES, TEXT_PAD
from fionagw.dicom.walk import UNDEFINED

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
_UL = struct.Struct("<L")


# --- reading ------------------------------------------------------------------------------


def read(path: Path | str) -> FileDataset:
    """``dcmread(path)``, faster for ordinary Part-10 files (see module doc)."""
    path = str(path)
    with open(path, "rb") as f:
        data = f.read()
    try:
        return read_part10(data, path)
    except TruncatedError as exc:
        if not exc.in_header:
            raise  # a value cut short: refused (dcmread would return it short)
        return dcmread(path)  # pydicom ignores a few stray bytes at the end, or raises
    except CodecError:
        return dcmread(path)


# --- writing ------------------------------------------------------------------------------


def raw_text_element(ds: Dataset, tag: int, vr: str, value: object) -> RawDataElement | None:
    """A new text or UID element (str or list of str, ASCII) as a raw element in the encoding
    ``ds`` was read in, with the bytes pydicom would write for it; None when that does not
    apply (other VRs or values, a dataset not read from bytes, big endian). Raw elements cost
    a tuple instead of a validated DataElement, and are written and scanned as they are."""
    pad = TEXT_PAD.get(vr)
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
    if len(raw) > 0xFFFF and vr not in LONG_LENGTH_NAMES:
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
        pixel.length == UNDEFINED
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
    _encode_dataset(meta, False, default_encoding, body, skip=GROUP_LENGTH_META)
    data = b"".join(body)
    return element_header(GROUP_LENGTH_META, "UL", 4, False) + _UL.pack(len(data)) + data


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
                and elem.length != UNDEFINED
                and (implicit or elem.VR is not None)
                and elem.value is not None
                and len(elem.value) == elem.length
            ):
                parts.append(element_header(tag, elem.VR, elem.length, implicit))
                parts.append(elem.value)
                continue
        elif _encode_new(tag, elem, implicit, encodings, parts):
            continue
        fp = DicomBytesIO()
        fp.is_little_endian, fp.is_implicit_VR = True, implicit
        write_data_element(fp, ds[tag], encodings)
        parts.append(fp.getvalue())


def _encode_new(tag: int, elem: DataElement, implicit: bool, encodings, parts: list[bytes]) -> bool:
    """Append the bytes of an ASCII text/UID value or a sequence, as pydicom writes them;
    False (nothing appended) for anything else."""
    vr = elem.VR
    if vr == "SQ":
        return _encode_sequence(tag, elem, implicit, encodings, parts)
    pad = TEXT_PAD.get(vr)
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
    if not implicit and vr not in LONG_LENGTH_NAMES and len(raw) > 0xFFFF:
        return False
    parts.append(element_header(tag, vr, len(raw), implicit))
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
            body += [item_header(UNDEFINED), *content, ITEM_DELIMITER]
        else:
            body += [item_header(sum(map(len, content))), *content]
    if elem.is_undefined_length:
        parts.append(element_header(tag, "SQ", UNDEFINED, implicit))
        parts += body
        parts.append(SEQUENCE_DELIMITER)
    else:
        parts.append(element_header(tag, "SQ", sum(map(len, body)), implicit))
        parts += body
    return True


def write(ds: Dataset, path: Path | str) -> Path:
    path = Path(path)
    path.write_bytes(encode(ds))
    return path
