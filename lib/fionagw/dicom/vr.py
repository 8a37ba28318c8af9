"""Value representations as the element codec needs them (PS3.5 section 6.2 and 7.1.2)."""

from __future__ import annotations

from pydicom.datadict import _dictionary_vr_fast

# Explicit VR with a 2-byte reserved field and a 4-byte length; all others have a 2-byte length.
LONG_LENGTH = frozenset(
    (b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV")
)
SHORT_LENGTH = frozenset(
    (b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO", b"LT")
    + (b"PN", b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US")
)
SHORT_NAMES = {vr: vr.decode("ascii") for vr in SHORT_LENGTH}  # the VR field -> the VR
LONG_NAMES = {vr: vr.decode("ascii") for vr in LONG_LENGTH}
LONG_LENGTH_NAMES = frozenset(LONG_NAMES.values())

# Text VRs and the byte that pads their values to an even length.
TEXT_PAD = {
    **dict.fromkeys(
        ("AE", "AS", "CS", "DA", "DT", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UR", "UT"), b" "
    ),
    "UI": b"\0",
}


def looks_explicit(vr: bytes) -> bool:
    """pydicom's test for an explicit VR field: two upper-case ASCII letters."""
    return len(vr) == 2 and 0x40 < vr[0] < 0x5B and 0x40 < vr[1] < 0x5B


def dictionary_vr(tag: int) -> str | None:
    """The data dictionary's VR of ``tag`` (e.g. "SQ", "OB or OW"); None when unknown."""
    try:
        return _dictionary_vr_fast(tag)
    except KeyError:
        return None


def vr_of(elem) -> str:  # type: ignore[no-untyped-def]  # any pydicom element
    """An element's VR, from the dictionary when a raw element has none ("UN" if unknown)."""
    vr = elem.VR
    if vr is None:
        return dictionary_vr(elem.tag) or "UN"
    return vr
