"""What the codec raises for bytes it cannot read: one base class, three kinds.

Callers decide from the kind: a truncated object is refused, anything else is left to
pydicom's reader (or refused, where pydicom would not read it either). Messages name the
byte offset and the tag, never a value (values may be PHI).
"""

from __future__ import annotations


class CodecError(Exception):
    """Bytes the codec does not read as DICOM; ``offset`` is where it gave up."""

    def __init__(self, reason: str, offset: int) -> None:
        super().__init__(f"{reason} at byte {offset}")
        self.reason = reason
        self.offset = offset


class TruncatedError(CodecError, EOFError):
    """The bytes end inside an element: in its header (``in_header``) or in its value."""

    def __init__(self, reason: str, offset: int, *, in_header: bool) -> None:
        super().__init__(reason, offset)
        self.in_header = in_header


class MalformedError(CodecError):
    """A structure DICOM does not allow (an item where an element must be, nesting too deep,
    an undefined length on something that is no sequence)."""


class UnsupportedError(CodecError):
    """Bytes that may well be DICOM but that the codec leaves to pydicom (no Part-10 prefix,
    an unknown VR, a switch between explicit and implicit VR)."""
