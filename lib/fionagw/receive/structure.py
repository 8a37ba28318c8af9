"""The whole structure of a received object, checked before it is answered Success.

An object broken after its Series Instance UID (cut short, a wrong element length) used to be
answered Success and stored, to end up in ``broken/`` when the classifier read it: the sender
had long forgotten it. :func:`check_file` walks every element of the data set, the items of
every sequence at every depth, and the fragments of encapsulated pixel data, with the one
codec (:mod:`fionagw.dicom.walk`), so such an object is refused while the sender can still
send it again. The walk reads the temp file through a read-only memory map of the page cache
the data was just written to: it copies nothing and jumps over every value, pixel data
included, touching only element headers.

What the codec cannot walk is refused too (an unknown VR, implicit VR where explicit was
negotiated): it is what the classifier and the de-identification read with. A deflated data set
is inflated up to :data:`MAX_INFLATE` bytes; one larger than that is left unchecked.
"""

from __future__ import annotations

import mmap
import os
from pathlib import Path

from fionagw.dicom.errors import CodecError
from fionagw.dicom.tags import PIXEL_TAGS
from fionagw.dicom.vr import dictionary_vr
from fionagw.dicom.walk import UNDEFINED, elements, items, part10

MAX_INFLATE = 256 << 20


class BrokenStructure(Exception):
    """The data set is not well formed; str() names the tag and offset, never a value."""


def check_file(path: Path | str) -> None:
    """BrokenStructure unless every element of the Part-10 file at ``path`` is well formed.
    OSError when the file cannot be read."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        with mmap.mmap(fd, 0, access=mmap.ACCESS_READ) as data:
            check_bytes(data)
    finally:
        os.close(fd)


def check_bytes(data: bytes | mmap.mmap) -> None:
    """BrokenStructure unless the Part-10 bytes ``data`` are well formed throughout."""
    try:
        p = part10(data, inflate_limit=MAX_INFLATE)
        if p.syntax.deflated and len(p.body) >= MAX_INFLATE:
            return  # cut at the limit: the walk would meet a truncation that is ours
        _walk(p.body, p.start, len(p.body), p.syntax.implicit, p.syntax.little, 0)
    except CodecError as exc:
        raise BrokenStructure(str(exc)) from None


def _walk(
    data: bytes | mmap.mmap, pos: int, end: int, implicit: bool, little: bool, depth: int
) -> None:
    """Every element of ``data[pos:end]``, and recursively every item of its sequences."""
    for tag, vr, length, start, stop in elements(data, pos, end, implicit, little, depth=depth):
        if tag in PIXEL_TAGS or not _is_sequence(tag, vr, length, data, start, stop, little):
            continue  # the walker has checked the fragments of encapsulated pixel data
        for item_start, item_end, item_implicit in items(
            data, start, stop, implicit, little, depth + 1
        ):
            _walk(data, item_start, item_end, item_implicit, little, depth + 1)


_ITEM_TAG = {True: b"\xfe\xff\x00\xe0", False: b"\xff\xfe\xe0\x00"}


def _is_sequence(
    tag: int,
    vr: str | None,
    length: int,
    data: bytes | mmap.mmap,
    start: int,
    stop: int,
    little: bool,
) -> bool:
    if vr == "SQ":
        return True
    if length == UNDEFINED:  # implicit VR or UN of undefined length: a sequence (PS3.5 6.2.2)
        return True
    if vr is not None or stop - start < 8:
        return False
    # Implicit VR, defined length: a sequence when the dictionary says so and it holds items.
    return data[start : start + 4] == _ITEM_TAG[little] and dictionary_vr(tag) == "SQ"
