"""What a Transfer Syntax UID says about the bytes of the dataset that follows the file meta."""

from __future__ import annotations

from typing import NamedTuple

IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
EXPLICIT_VR_BIG_ENDIAN = "1.2.840.10008.1.2.2"
DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1.99"
JPIP_REFERENCED_DEFLATE = "1.2.840.10008.1.2.4.95"


class Syntax(NamedTuple):
    implicit: bool  # implicit VR: no VR field, every length 4 bytes
    little: bool  # little endian
    deflated: bool  # the whole dataset is one raw deflate stream (PS3.5 A.5)


_KNOWN = {
    IMPLICIT_VR_LITTLE_ENDIAN: Syntax(True, True, False),
    EXPLICIT_VR_BIG_ENDIAN: Syntax(False, False, False),
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN: Syntax(False, True, True),
    JPIP_REFERENCED_DEFLATE: Syntax(False, True, True),
}
_DEFAULT = Syntax(False, True, False)


def syntax_of(uid: str) -> Syntax:
    """The encoding of a dataset in transfer syntax ``uid``.

    Every syntax not named here is explicit VR little endian: the standard's encapsulated
    (compressed) syntaxes all are, and so does pydicom read an unknown UID (PS3.5 A.4).
    A private syntax registered with pydicom is the caller's business (pydicom.uid).
    """
    return _KNOWN.get(uid, _DEFAULT)
