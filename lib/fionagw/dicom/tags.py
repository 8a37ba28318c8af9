"""The tags the codec treats specially, and how a tag is written in messages."""

from __future__ import annotations

ITEM, ITEM_END, SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD  # group FFFE: no VR field
PIXEL_TAGS = frozenset({0x7FE00008, 0x7FE00009, 0x7FE00010})  # float, double, integer pixels
SPECIFIC_CHARACTER_SET = 0x00080005
TRANSFER_SYNTAX_UID = 0x00020010
GROUP_LENGTH_META = 0x00020000


def tag_text(tag: int) -> str:
    """``(GGGG,EEEE)``: a tag as DICOM texts write it (never a value: safe in logs)."""
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
