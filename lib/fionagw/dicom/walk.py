"""The element walker: DICOM elements in a byte buffer, without building any object.

:func:`elements` yields one tuple per element of a dataset, ``(tag, vr, length, start,
end)``: the tag as an int, the VR as text (None in implicit VR), the length as encoded
(:data:`UNDEFINED` for an undefined length), and where the value lies, ``data[start:end]``.
For an undefined length, ``end`` is where the sequence delimitation item begins, so the
value is what pydicom keeps of it (sequence items, or encapsulated fragments). The walker
finds that end by walking the items (never by searching for the delimiter's bytes), so it
also checks every nested element on the way.

:func:`items` walks the items of a sequence value, :func:`part10` splits a Part-10 file into
its file meta elements and its dataset (inflated, for the deflated syntaxes, when asked).

Every length is checked against ``end`` before it is used and every step moves forward, so
the walk over ``n`` bytes ends after at most ``n / 8`` elements per nesting level; nesting
deeper than :data:`MAX_DEPTH` is refused. Only :class:`~fionagw.dicom.errors.CodecError`
subclasses are raised.
"""

from __future__ import annotations

import zlib
from collections.abc import Container, Generator
from struct import Struct
from typing import NamedTuple

from fionagw.dicom.errors import MalformedError, TruncatedError, UnsupportedError
from fionagw.dicom.syntax import Syntax, syntax_of
from fionagw.dicom.tags import ITEM, ITEM_END, SEQUENCE_END, TRANSFER_SYNTAX_UID, tag_text
from fionagw.dicom.vr import LONG_NAMES, SHORT_NAMES, looks_explicit

UNDEFINED = 0xFFFFFFFF
MAX_DEPTH = 32  # nested sequences; real objects stay below ten
PREAMBLE = 128  # the Part-10 preamble, then b"DICM", then the file meta group

Element = tuple[int, str | None, int, int, int]  # tag, VR, length, value start, value end

# (explicit VR header, implicit VR header / item header, 4-byte length) per byte order
_STRUCTS = {
    little: (Struct(f"{order}HH2sH"), Struct(f"{order}HHI"), Struct(f"{order}I"))
    for little, order in ((True, "<"), (False, ">"))
}


def elements(
    data: bytes,
    pos: int,
    end: int,
    implicit: bool,
    little: bool,
    *,
    stop: Container[int] = (),
    depth: int = 0,
    item: bool = False,
) -> Generator[Element, None, int]:
    """The elements of the dataset in ``data[pos:end]``; returns where the walk ended.

    The walk ends at ``end``, before the first element whose tag is in ``stop`` (its
    value unread), or, for an ``item`` dataset, at its item delimitation item. Items or
    delimiters anywhere else are malformed.
    """
    explicit_head, implicit_head, length32 = _STRUCTS[little]
    explicit_head, implicit_head = explicit_head.unpack_from, implicit_head.unpack_from
    length32 = length32.unpack_from
    short_names, long_names = SHORT_NAMES, LONG_NAMES
    vr = None
    while pos + 8 <= end:
        if implicit:
            group, element, length = implicit_head(data, pos)
        else:
            group, element, raw_vr, length = explicit_head(data, pos)
        tag = group << 16 | element
        if tag in stop:
            return pos
        if group == 0xFFFE:  # items and delimiters have no VR field
            if tag == ITEM_END and item:
                return pos
            raise MalformedError(f"item tag {tag_text(tag)} where an element must be", pos)
        if implicit:
            start = pos + 8
        elif (vr := short_names.get(raw_vr)) is not None:
            start = pos + 8
        elif (vr := long_names.get(raw_vr)) is not None:
            if pos + 12 > end:
                raise TruncatedError("element header cut short", pos, in_header=True)
            length = length32(data, pos + 8)[0]
            start = pos + 12
        else:
            raise UnsupportedError(f"unknown VR (or implicit VR) in {tag_text(tag)}", pos)
        if length == UNDEFINED:
            value_end = undefined_length_end(data, start, end, implicit, little, depth + 1)
            yield tag, vr, length, start, value_end
            pos = value_end + 8
        else:
            pos = start + length
            if pos > end:
                raise TruncatedError(
                    f"value of {tag_text(tag)} needs {length} bytes, {end - start} left",
                    start,
                    in_header=False,
                )
            yield tag, vr, length, start, pos
    if pos < end:
        raise TruncatedError("element header cut short", pos, in_header=True)
    return pos


def undefined_length_end(
    data: bytes, pos: int, end: int, implicit: bool, little: bool, depth: int
) -> int:
    """Where the sequence delimitation item of the undefined-length value at ``pos`` is."""
    return _run(items(data, pos, end, implicit, little, depth, delimited=True))


def items(
    data: bytes,
    pos: int,
    end: int,
    implicit: bool,
    little: bool,
    depth: int = 0,
    *,
    delimited: bool = False,
) -> Generator[tuple[int, int, bool], None, int]:
    """The items of the sequence value (or encapsulated fragments) in ``data[pos:end]``:
    ``(start, end, implicit)`` of each item's content, ``implicit`` the VR encoding of the
    item's dataset (an item of an explicit VR sequence may be implicit, as pydicom reads it).
    A sequence delimitation item ends the walk (returns its position); ``delimited``
    requires one."""
    if depth > MAX_DEPTH:
        raise MalformedError(f"sequences nested deeper than {MAX_DEPTH}", pos)
    head = _STRUCTS[little][1].unpack_from
    while True:
        if pos + 8 > end:
            if pos == end and not delimited:
                return pos
            raise TruncatedError("sequence delimiter missing", pos, in_header=True)
        group, element, length = head(data, pos)
        tag = group << 16 | element
        if tag == SEQUENCE_END:
            return pos
        if tag != ITEM:
            raise MalformedError(f"{tag_text(tag)} where an item must be", pos)
        pos += 8
        item_implicit = implicit or (pos + 6 <= end and not looks_explicit(data[pos + 4 : pos + 6]))
        if length == UNDEFINED:
            walk = elements(data, pos, end, item_implicit, little, depth=depth, item=True)
            item_end = _run(walk)
            if item_end == end:
                raise TruncatedError("item delimiter missing", pos, in_header=True)
            yield pos, item_end, item_implicit
            pos = item_end + 8
        else:
            if pos + length > end:
                raise TruncatedError("item runs past the end", pos, in_header=False)
            yield pos, pos + length, item_implicit
            pos += length


def _run(walk: Generator[object, None, int]) -> int:
    """Exhaust a walk; where it ended."""
    try:
        while True:
            next(walk)
    except StopIteration as done:
        return done.value


class Part10(NamedTuple):
    meta: list[Element]  # the file meta elements, values in ``data``
    syntax_uid: str  # the Transfer Syntax UID, as pydicom compares it
    syntax: Syntax
    body: bytes  # the dataset's bytes: the file's own, or inflated
    start: int  # where the dataset begins in ``body``


class _OutsideGroup:
    """The tags of every group but one: where a walk of that group stops."""

    def __init__(self, group: int) -> None:
        self.group = group

    def __contains__(self, tag: object) -> bool:
        return isinstance(tag, int) and tag >> 16 != self.group


_OUTSIDE_META = _OutsideGroup(2)  # the file meta group ends at the first tag of another group


def part10(data: bytes, *, inflate_limit: int = 0) -> Part10:
    """The file meta elements and the dataset of a Part-10 file's bytes (or of its start).

    A deflated dataset is inflated to at most ``inflate_limit`` bytes (cut there: the walk
    over it then meets a truncation); with no limit it is unsupported.
    """
    if len(data) < PREAMBLE + 4 or data[PREAMBLE : PREAMBLE + 4] != b"DICM":
        raise UnsupportedError("no DICM prefix", PREAMBLE)
    meta = list(elements(data, PREAMBLE + 4, len(data), False, True, stop=_OUTSIDE_META))
    uid = None
    for tag, _vr, length, value_start, value_end in meta:
        if length == UNDEFINED:
            raise UnsupportedError(
                f"undefined length of {tag_text(tag)} in the file meta", value_start
            )
        if tag == TRANSFER_SYNTAX_UID:
            try:
                uid = data[value_start:value_end].decode("ascii").rstrip("\0 ")
            except UnicodeDecodeError:
                raise MalformedError("transfer syntax UID is not ASCII", value_start) from None
    start = meta[-1][4] if meta else PREAMBLE + 4
    if not uid:
        raise UnsupportedError("no transfer syntax in the file meta", start)
    syntax = syntax_of(uid)
    body = data
    if syntax.deflated:
        if not inflate_limit:
            raise UnsupportedError("deflated dataset", start)
        body, start = inflate(data, start, inflate_limit), 0
    if len(body) - start >= 6:
        if body[start : start + 2] == b"\0\0":
            raise UnsupportedError("a command set (pydicom reads it as implicit VR)", start)
        if looks_explicit(body[start + 4 : start + 6]) == syntax.implicit:
            raise UnsupportedError("VR encoding differs from the transfer syntax", start)
    return Part10(meta, uid, syntax, body, start)


def inflate(data: bytes, pos: int, limit: int) -> bytes:
    """The raw deflate stream from ``pos`` inflated, at most ``limit`` bytes of it."""
    try:
        return zlib.decompressobj(-zlib.MAX_WBITS).decompress(data[pos:], limit)
    except zlib.error:
        raise MalformedError("broken deflate stream", pos) from None
