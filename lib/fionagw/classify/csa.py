"""Siemens CSA headers: the binary "shadow" elements (0029,xx10) image and (0029,xx20) series.

Two layouts exist. CSA2 starts with b"SV10" and 4 bytes (04 03 02 01); CSA1 (older syngo)
has no magic. Then, in both: uint32 element count, uint32 (77), and per element a 64-byte
NUL-terminated name (the bytes after the NUL are garbage), int32 VM, 4-byte VR, int32
syngo datatype, int32 item count, int32 (77 or 205); per item four int32 and the item bytes
padded to a multiple of 4. CSA2 gives the item length in the 2nd int32; CSA1 in the 1st,
offset by the item count of element #1 (what nibabel and GDCM document).

FIONA reads these with Python 2 era code that, under Python 3, keeps the names as bytes with
their garbage, so no lookup ever matches; here names are text, NUL-trimmed. Nothing in this
module raises on bad input: a malformed header yields what could be read (logged at debug).
"""

from __future__ import annotations

import logging
import re
import struct
from functools import lru_cache
from typing import Any

from pydicom.dataset import Dataset

from fionagw.classify.elements import element_value

log = logging.getLogger(__name__)

IMAGE_TAGS = (0x00291010, 0x00291210, 0x00291110)  # FIONA's search order
SERIES_TAGS = (0x00291020, 0x00291220, 0x00291120)
CSA_CREATOR = "SIEMENS CSA HEADER"

_ELEMENT = struct.Struct("<64si4siii")
_ITEM = struct.Struct("<4i")
_U32x2 = struct.Struct("<II")
_MAX_ELEMENTS = 1000  # real headers hold ~100; a larger count means garbage
_MAX_ITEMS = 1000
_FLOAT_VRS = frozenset({"FL", "FD", "DS"})
_INT_VRS = frozenset({"IS", "SL", "SS", "UL", "US"})

CsaHeader = dict[str, list[Any]]


def _text(raw: bytes) -> str:
    """Bytes up to the first NUL, as text (Siemens writes Latin-1), stripped."""
    end = raw.find(b"\0")
    if end >= 0:
        raw = raw[:end]
    return raw.decode("latin-1").strip()


def _convert(vr: str, text: str) -> Any:
    try:
        if vr in _FLOAT_VRS:
            return float(text)
        if vr in _INT_VRS:
            return int(float(text)) if "." in text else int(text)
    except ValueError:
        pass  # keep the text: a value we cannot convert is still information
    return text


def parse_csa(blob: bytes | bytearray | memoryview | None) -> CsaHeader:
    """Parse a CSA1 or CSA2 header into {name: [values]}; never raises.

    Values are converted by the element's VR (floats for FL/FD/DS, ints for IS/SL/...);
    empty items are dropped; at most VM values are kept when VM > 0.
    """
    out: CsaHeader = {}
    if not blob:
        return out
    data = bytes(blob)
    try:
        _parse_into(data, out)
    except (struct.error, UnicodeDecodeError) as exc:
        log.debug(
            "malformed CSA header (%d bytes, %d elements read): %s",
            len(data),
            len(out),
            type(exc).__name__,
        )
    except ValueError as exc:  # ours: counts and element numbers, no values
        log.debug("malformed CSA header (%d bytes, %d elements read): %s", len(data), len(out), exc)
    return out


def _parse_into(data: bytes, out: CsaHeader) -> None:
    csa2 = data[:4] == b"SV10"
    pos = 8 if csa2 else 0
    count, _ = _U32x2.unpack_from(data, pos)
    pos += 8
    if not 0 < count <= _MAX_ELEMENTS:
        raise ValueError(f"element count {count} out of range")
    size = len(data)
    csa1_offset: int | None = None
    for index in range(count):
        name_raw, vm, vr_raw, _syngo_dt, n_items, _mark = _ELEMENT.unpack_from(data, pos)
        pos += _ELEMENT.size
        if not 0 <= n_items <= _MAX_ITEMS:
            raise ValueError(f"element {index}: item count {n_items} out of range")
        name, vr = _text(name_raw), _text(vr_raw)
        if index == 1:
            csa1_offset = n_items
        values: list[Any] = []
        for _ in range(n_items):
            x0, x1, _x2, _x3 = _ITEM.unpack_from(data, pos)
            pos += _ITEM.size
            if csa2:
                length = x1
            elif csa1_offset is None:
                length = x1  # element #0 of CSA1: its offset is not known yet; x1 is the length
            else:
                length = x0 - csa1_offset
            if length < 0 or pos + length > size:
                if not csa2:
                    break  # CSA1 pads with items whose lengths make no sense
                raise ValueError(f"element {index}: item length {length} past the end")
            raw = data[pos : pos + length]
            pos += length + (-length % 4)
            if length:
                text = _text(raw)
                if text:
                    values.append(_convert(vr, text))
        if vm > 0:
            del values[vm:]
        out[name] = values


def _element_bytes(ds: Dataset, tag: int) -> bytes | None:
    if tag not in ds._dict:  # pydicom's get() pays an exception per absent tag
        return None
    try:
        value = ds[tag].value
    except Exception as exc:  # a broken private element must not stop classification
        log.debug("cannot read CSA element %08X: %s", tag, type(exc).__name__)  # text may quote it
        return None
    return bytes(value) if isinstance(value, bytes | bytearray | memoryview) and value else None


def _find(ds: Dataset, element: int, fallback: tuple[int, ...]) -> bytes | None:
    """The CSA block of the "SIEMENS CSA HEADER" creator first, then FIONA's fixed tags."""
    candidates: list[int] = []
    for block in range(0x10, 0x100):
        creator_tag = 0x00290000 | block
        if creator_tag not in ds._dict:
            if block > 0x12:
                break
            continue
        try:
            creator = str(element_value(ds, creator_tag)).strip()
        except Exception:
            continue
        if creator == CSA_CREATOR:
            candidates.append(0x00290000 | (block << 8) | element)
    for tag in (*candidates, *fallback):
        blob = _element_bytes(ds, tag)
        if blob:
            return blob
    return None


def image_header(ds: Dataset) -> CsaHeader:
    """The parsed image CSA header ({} when absent or unreadable)."""
    return parse_csa(_find(ds, 0x10, IMAGE_TAGS))


def series_header(ds: Dataset) -> CsaHeader:
    """The parsed series CSA header ({} when absent or unreadable)."""
    return parse_csa(_find(ds, 0x20, SERIES_TAGS))


# --- MrPhoenixProtocol (the ASCCONV text inside the series header) -----------------------

# Lines look like 'sWipMemBlock.tFree\t = \t""abc""' (quotes doubled inside XProtocol).
_ASCCONV_LINE = re.compile(r"^([A-Za-z_][\w.\[\]]*)[ \t]*=[ \t]*(.*?)[ \t]*$", re.MULTILINE)


def ascconv(text: str) -> dict[str, str]:
    """The ASCCONV key = value pairs, quotes removed (first occurrence of a key wins)."""
    start = text.find("### ASCCONV BEGIN")
    end = text.find("### ASCCONV END", start + 1) if start >= 0 else -1
    body = text[start:end] if start >= 0 and end > start else text
    out: dict[str, str] = {}
    for key, value in _ASCCONV_LINE.findall(body):
        value = value.split("#", 1)[0].strip() if not value.startswith('"') else value
        out.setdefault(key, value.strip('"').strip())
    return out


def _protocol_text(series: CsaHeader) -> str:
    values = series.get("MrPhoenixProtocol") or series.get("MrProtocol") or []
    return str(values[0]) if values else ""


def series_info(series: CsaHeader) -> dict[str, str]:
    """FIONA's keys from MrPhoenixProtocol: siemensUUID, OSLevel, NumSlices, MeasID."""
    proto = ascconv(_protocol_text(series))
    info: dict[str, str] = {}
    if not proto:
        return info
    uuid = proto.get("sWipMemBlock.tFree", "")
    if uuid:
        info["siemensUUID"] = uuid
    baseline = proto.get("sProtConsistencyInfo.tMeasuredBaselineString") or proto.get(
        "sProtConsistencyInfo.tBaselineString", ""
    )
    match = re.match(r"N4_([^_\"]+)", baseline)
    if match:
        info["OSLevel"] = match.group(1)  # "N4_VE11C_LATEST_20160120" -> "VE11C"
    slices = proto.get("sGroupArray.asGroup[0].nSize") or proto.get("sSliceArray.lSize")
    if slices:
        info["NumSlices"] = slices
    # FIONA takes the (l)SequenceID line; a measurement UID, when written, identifies better.
    meas = proto.get("lMeasUID") or proto.get("MeasUID") or proto.get("lSequenceID")
    if meas:
        info["MeasID"] = meas
    return info


def image_info(image: CsaHeader) -> dict[str, Any]:
    """Per-image values: B_value, DiffusionGradientDirection, DiffusionDirectionality,
    NumberOfImagesInMosaic, PhaseEncodingDirectionPositive (only those present)."""
    info: dict[str, Any] = {}
    for name in (
        "B_value",
        "DiffusionDirectionality",
        "NumberOfImagesInMosaic",
        "PhaseEncodingDirectionPositive",
    ):
        values = image.get(name)
        if values:
            info[name] = values[0]
    direction = image.get("DiffusionGradientDirection")
    if direction:
        info["DiffusionGradientDirection"] = list(direction)
    return info


@lru_cache(maxsize=16)
def _series_info_of(blob: bytes) -> tuple[tuple[str, str], ...]:
    # Every image of a series carries the same series header: parse it once.
    return tuple(series_info(parse_csa(blob)).items())


def siemens_fields(ds: Dataset) -> tuple[dict[str, Any], dict[str, str], bool]:
    """(image_info, series_info, has_image_csa) for one dataset; never raises."""
    image = parse_csa(_find(ds, 0x10, IMAGE_TAGS))
    series_blob = _find(ds, 0x20, SERIES_TAGS)
    series = dict(_series_info_of(series_blob)) if series_blob else {}
    return image_info(image), series, bool(image)
