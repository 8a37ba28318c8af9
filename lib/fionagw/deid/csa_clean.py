"""Siemens CSA headers (0029,xx10 image, 0029,xx20 series) cleaned for release.

The CSA headers are on the private allow-list because dcm2niix and diffusion tools read them
(B_value, gradient directions, MosaicRefAcqTimes for slice timing, PhaseEncodingDirection-
Positive, the multiband factor in MrPhoenixProtocol). They also carry the original study's
UIDs (the localizer's and the frame of reference's inside MrPhoenixProtocol) and free text
typed at the scanner. ``clean_csa(blob, uid, scrub)`` rewrites a CSA2 header ("SV10") with
every UID-like token of every item value (four or more dotted numbers) replaced by ``uid``
(the engine's UID mapping, so a UID in the header matches the same UID in the elements) and
every text value passed through ``scrub`` (the engine's scrubber); every other byte of the
values stays as it was, lengths are recomputed. The layout is the one classify/csa.py reads.

A CSA1 header (no magic, offsets relative to the first item) or one that cannot be parsed is
not rewritten: it is kept when it holds no UID-like token and removed (None) otherwise, so an
original UID never leaves inside an opaque blob.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable

_MAGIC = b"SV10\x04\x03\x02\x01"
_ELEMENT = struct.Struct("<64si4siii")  # name, VM, VR, syngo datatype, item count, mark
_ITEM = struct.Struct("<4i")
_U32x2 = struct.Struct("<II")
_MAX = 1000
# a UID: four or more dotted numbers (floats and versions have fewer)
UID_TOKEN = re.compile(rb"(?<![0-9.])[0-9]+(?:\.[0-9]+){3,}(?![0-9])")
_TEXT_VRS = frozenset({b"LO", b"SH", b"ST", b"LT", b"UT", b"UN", b"CS", b"PN"})


def clean_csa(blob: bytes, uid: Callable[[str], str], scrub: Callable[[str], str]) -> bytes | None:
    """The CSA header ``blob`` with its UIDs remapped and text scrubbed (module docstring);
    the same object when nothing changed; None when it must be removed."""
    if not blob.startswith(_MAGIC):
        return None if UID_TOKEN.search(blob) else blob
    try:
        return _rewrite(blob, uid, scrub)
    except (struct.error, ValueError):
        return None if UID_TOKEN.search(blob) else blob


def _rewrite(blob: bytes, uid: Callable[[str], str], scrub: Callable[[str], str]) -> bytes:
    count, mark = _U32x2.unpack_from(blob, 8)
    if not 0 < count <= _MAX:
        raise ValueError("element count out of range")
    pos, out, changed = 16, [_MAGIC, _U32x2.pack(count, mark)], False

    def new_uid(m: re.Match[bytes]) -> bytes:
        return uid(m.group().decode("ascii")).encode("ascii")

    for _ in range(count):
        name, vm, vr, syngo, n_items, emark = _ELEMENT.unpack_from(blob, pos)
        pos += _ELEMENT.size
        if not 0 <= n_items <= _MAX:
            raise ValueError("item count out of range")
        vr_name = vr.split(b"\0", 1)[0].strip()
        out.append(_ELEMENT.pack(name, vm, vr, syngo, n_items, emark))
        for _ in range(n_items):
            x0, length, x2, x3 = _ITEM.unpack_from(blob, pos)
            pos += _ITEM.size
            if length < 0 or pos + length > len(blob):
                raise ValueError("item past the end")
            value = blob[pos : pos + length]
            pos += length + (-length % 4)
            new = UID_TOKEN.sub(new_uid, value) if length else value
            if length and vr_name in _TEXT_VRS:
                text = new.decode("latin-1")
                cleaned = scrub(text)
                if cleaned != text:
                    new = cleaned.encode("latin-1", "replace")
            if new != value:
                changed = True
                n = len(new)
                x0, x3 = (n if x0 == length else x0), (n if x3 == length else x3)
                length = n
            out.append(_ITEM.pack(x0, length, x2, x3))
            out.append(new + b"\0" * (-length % 4))
    if not changed:
        return blob
    out.append(blob[pos:])  # what follows the last element (padding), as it was
    return b"".join(out)
