"""The DICOM upper layer and DIMSE pieces of the receiver (PS3.8, PS3.7), small and direct.

Everything is encoded and decoded here with ``struct``: the A-ASSOCIATE-RQ/AC (the
request comes from anyone who can connect: its fixed fields are read first, so the calling
AE title is checked before a context is parsed, and at most :data:`MAX_CONTEXTS` contexts of
:data:`MAX_SYNTAXES` syntaxes are read; pynetdicom's decoder logged a warning per unknown
transfer syntax, 38,000 lines for one crafted request, and failed on a context without
one), the P-DATA-TF framing, the C-STORE/C-ECHO command sets and the file meta of a received
object. Going through pydicom Datasets and pynetdicom's state machine for the per-image
pieces cost ~3 ms per image. pynetdicom only says which SOP classes are storage.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

from pydicom.uid import UID
from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION
from pynetdicom._globals import DEFAULT_TRANSFER_SYNTAXES
from pynetdicom.service_class import ServiceClass, StorageServiceClass
from pynetdicom.sop_class import uid_to_service_class

# --- PDUs (PS3.8 9.3) ---------------------------------------------------------------------

A_ASSOCIATE_RQ_TYPE = 0x01
A_ASSOCIATE_AC_TYPE = 0x02
A_ASSOCIATE_RJ_TYPE = 0x03
P_DATA_TF_TYPE = 0x04
A_RELEASE_RQ_TYPE = 0x05
A_RELEASE_RP_TYPE = 0x06
A_ABORT_TYPE = 0x07

# A-ABORT source 2 (service provider) reasons
ABORT_NOT_SPECIFIED = 0x00
ABORT_UNRECOGNIZED_PDU = 0x01
ABORT_UNEXPECTED_PDU = 0x02
ABORT_UNEXPECTED_PARAMETER = 0x05
ABORT_INVALID_PARAMETER = 0x06

# A-ASSOCIATE-RJ (result, source, reason/diagnostic)
REJECT_NO_REASON = (0x01, 0x01, 0x01)
REJECT_CALLING_AE = (0x01, 0x01, 0x03)
REJECT_APPLICATION_CONTEXT = (0x01, 0x01, 0x02)
REJECT_PROTOCOL_VERSION = (0x01, 0x02, 0x02)
REJECT_LOCAL_LIMIT = (0x02, 0x03, 0x02)

APPLICATION_CONTEXT_NAME = "1.2.840.10008.3.1.1.1"
VERIFICATION = "1.2.840.10008.1.1"
IMPLEMENTATION_CLASS_UID = str(PYNETDICOM_IMPLEMENTATION_UID)  # written into every file meta
IMPLEMENTATION_VERSION_NAME = PYNETDICOM_IMPLEMENTATION_VERSION

_HEADER = struct.Struct(">BBI")


class ProtocolError(Exception):
    """The peer broke the upper layer protocol: answered with an A-ABORT of ``reason``."""

    def __init__(self, reason: int, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def pdu(pdu_type: int, body: bytes) -> bytes:
    return _HEADER.pack(pdu_type, 0, len(body)) + body


def parse_header(header: bytes) -> tuple[int, int]:
    """(PDU type, length of the PDU body) of a 6-byte PDU header."""
    pdu_type, _, length = _HEADER.unpack(header)
    return pdu_type, length


RELEASE_RP = pdu(A_RELEASE_RP_TYPE, b"\0\0\0\0")


def abort_pdu(reason: int = ABORT_NOT_SPECIFIED, source: int = 0x02) -> bytes:
    """A-ABORT from the service provider (source 2) or the service user (source 0)."""
    return pdu(A_ABORT_TYPE, bytes((0, 0, source, reason if source == 0x02 else 0)))


def reject_pdu(result: int, source: int, reason: int) -> bytes:
    return pdu(A_ASSOCIATE_RJ_TYPE, bytes((0, result, source, reason)))


def p_data(context_id: int, data: bytes, max_pdu: int, *, command: bool = True) -> bytes:
    """P-DATA-TF PDUs carrying ``data`` in fragments that fit the peer's maximum PDU length
    (the length of a PDU's variable field; 0 = unlimited)."""
    flag = 0x01 if command else 0x00
    size = len(data) if max_pdu <= 0 else max(max_pdu - 6, 1)
    if len(data) <= size:
        return (
            _HEADER.pack(P_DATA_TF_TYPE, 0, len(data) + 6)
            + struct.pack(">IBB", len(data) + 2, context_id, flag | 0x02)
            + data
        )
    out = []
    for start in range(0, len(data), size):
        chunk = data[start : start + size]
        last = 0x02 if start + size >= len(data) else 0x00
        out.append(
            _HEADER.pack(P_DATA_TF_TYPE, 0, len(chunk) + 6)
            + struct.pack(">IBB", len(chunk) + 2, context_id, flag | last)
            + chunk
        )
    return b"".join(out)


# --- association negotiation (PS3.8 9.3.2, 9.3.3) -----------------------------------------------

MAX_CONTEXTS = 128  # context IDs are odd numbers 1-255: a request cannot carry more
MAX_SYNTAXES = 64  # transfer syntaxes per context; real senders propose a handful

# presentation context results (PS3.8 Table 9-18)
CONTEXT_ACCEPTED = 0x00
CONTEXT_NO_REASON = 0x02
CONTEXT_ABSTRACT_NOT_SUPPORTED = 0x03
CONTEXT_SYNTAXES_NOT_SUPPORTED = 0x04

_ITEM = struct.Struct(">BBH")
_VERIFICATION_SYNTAXES = frozenset(DEFAULT_TRANSFER_SYNTAXES)


class RequestRefused(Exception):
    """A well-formed A-ASSOCIATE-RQ beyond the receiver's bounds: answered with an
    A-ASSOCIATE-RJ (permanent, no reason given), its text is the log line's reason."""


@dataclass
class Context:
    """One proposed presentation context as it came, and what was decided for it."""

    context_id: int
    abstract: str
    syntaxes: list[str]
    result: int = CONTEXT_NO_REASON
    syntax: str = ""  # the accepted transfer syntax


@dataclass
class Request:
    """What the receiver needs from an A-ASSOCIATE-RQ."""

    calling: str
    called: str
    protocol_version: int
    application_context: str = ""
    peer_max_pdu: int = 0
    contexts: list[Context] = field(default_factory=list)
    roles: dict[str, tuple[int, int]] = field(default_factory=dict)  # SOP class: (SCU, SCP)
    raw_called: bytes = b""
    raw_calling: bytes = b""


def _text(raw: bytes) -> str:
    return raw.decode("ascii", "replace").strip("\0 ")


def _items(data: bytes, pos: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(type, body start, body end) of the items (or sub-items) in ``data[pos:end]``."""
    while pos < end:
        if pos + 4 > end:
            raise ProtocolError(ABORT_INVALID_PARAMETER, "A-ASSOCIATE-RQ item header cut short")
        item_type, _, length = _ITEM.unpack_from(data, pos)
        pos += 4
        if pos + length > end:
            raise ProtocolError(ABORT_INVALID_PARAMETER, "A-ASSOCIATE-RQ item runs past its end")
        yield item_type, pos, pos + length
        pos += length


def decode_request_head(data: bytes) -> Request:
    """The fixed fields of an A-ASSOCIATE-RQ (``data`` is the whole PDU, header included):
    enough to decide on the calling AE title before any presentation context is looked at."""
    if len(data) < 74:
        raise ProtocolError(ABORT_INVALID_PARAMETER, "A-ASSOCIATE-RQ too short")
    called, calling = data[10:26], data[26:42]
    return Request(
        _text(calling),
        _text(called),
        int.from_bytes(data[6:8], "big"),
        raw_called=called,
        raw_calling=calling,
    )


def decode_request_items(request: Request, data: bytes) -> Request:
    """Fill ``request`` from the variable items of the PDU ``data``.

    At most :data:`MAX_CONTEXTS` contexts of :data:`MAX_SYNTAXES` transfer syntaxes are
    read (RequestRefused beyond), so the work per request is bounded; ProtocolError for
    bytes that are not an A-ASSOCIATE-RQ.
    """
    for item_type, start, end in _items(data, 74, len(data)):
        if item_type == 0x10:
            request.application_context = _text(data[start:end])
        elif item_type == 0x20:
            if len(request.contexts) == MAX_CONTEXTS:
                raise RequestRefused(f"more than {MAX_CONTEXTS} presentation contexts")
            if end - start < 4:
                raise ProtocolError(ABORT_INVALID_PARAMETER, "presentation context cut short")
            context = Context(data[start], "", [])
            for sub_type, s, e in _items(data, start + 4, end):
                if sub_type == 0x30:
                    context.abstract = _text(data[s:e])
                elif sub_type == 0x40:
                    if len(context.syntaxes) == MAX_SYNTAXES:
                        raise RequestRefused(
                            f"more than {MAX_SYNTAXES} transfer syntaxes in a context"
                        )
                    context.syntaxes.append(_text(data[s:e]))
            request.contexts.append(context)
        elif item_type == 0x50:
            for sub_type, s, e in _items(data, start, end):
                if sub_type == 0x51 and e - s >= 4:
                    request.peer_max_pdu = int.from_bytes(data[s : s + 4], "big")
                elif sub_type == 0x54 and e - s >= 4:
                    uid_end = s + 2 + int.from_bytes(data[s : s + 2], "big")
                    if uid_end + 2 <= e and len(request.roles) < MAX_CONTEXTS:
                        request.roles[_text(data[s + 2 : uid_end])] = (
                            data[uid_end],
                            data[uid_end + 1],
                        )
    return request


def _readable_syntax(uid: str) -> bool:
    """A transfer syntax pydicom (and so the codec) knows how to read."""
    try:
        return UID(uid).is_transfer_syntax
    except ValueError:  # a private UID: pydicom cannot tell
        return False


def _storage_like(abstract: str) -> bool:
    """Storage, private, or unknown to pynetdicom: accepted as storage (FIONA took all)."""
    return uid_to_service_class(abstract) in (StorageServiceClass, ServiceClass)


def negotiate(request: Request) -> dict[int, tuple[str, str]]:
    """Decide every context of ``request`` (its ``result`` and ``syntax``); the accepted ones
    as {id: (abstract syntax, transfer syntax)}.

    A storage SOP class (public, private, or unknown) is accepted in the first transfer
    syntax proposed that pydicom knows, so the bytes are kept as encoded; Verification in
    one of the default syntaxes; a context without a usable syntax, an empty one included,
    gets "transfer syntaxes not supported", any other service "abstract syntax not
    supported" (PS3.8 9.3.3.2), and the others go on.
    """
    accepted: dict[int, tuple[str, str]] = {}
    for cx in request.contexts:
        if not cx.abstract or cx.context_id % 2 == 0 or cx.context_id in accepted:
            cx.result = CONTEXT_NO_REASON
            continue
        if cx.abstract == VERIFICATION:
            usable = [ts for ts in cx.syntaxes if ts in _VERIFICATION_SYNTAXES]
        elif _storage_like(cx.abstract):
            usable = [ts for ts in cx.syntaxes if _readable_syntax(ts)]
        else:
            cx.result = CONTEXT_ABSTRACT_NOT_SUPPORTED
            continue
        if not usable:
            cx.result = CONTEXT_SYNTAXES_NOT_SUPPORTED
            continue
        cx.result, cx.syntax = CONTEXT_ACCEPTED, usable[0]
        accepted[cx.context_id] = (cx.abstract, cx.syntax)
    return accepted


def _item(item_type: int, body: bytes) -> bytes:
    return _ITEM.pack(item_type, 0, len(body)) + body


def accept_pdu(request: Request, max_pdu: int) -> bytes:
    """The A-ASSOCIATE-AC for a negotiated ``request`` (results in the order proposed)."""
    parts = [_item(0x10, APPLICATION_CONTEXT_NAME.encode("ascii"))]
    for cx in request.contexts:
        syntax = (cx.syntax or "").encode("ascii")
        parts.append(_item(0x21, bytes((cx.context_id, 0, cx.result, 0)) + _item(0x40, syntax)))
    user = [
        _item(0x51, struct.pack(">I", max_pdu)),
        _item(0x52, IMPLEMENTATION_CLASS_UID.encode("ascii")),
        _item(0x55, IMPLEMENTATION_VERSION_NAME.encode("ascii")),
    ]
    accepted_classes = {cx.abstract for cx in request.contexts if cx.result == CONTEXT_ACCEPTED}
    for uid, (scu, _scp) in request.roles.items():
        if uid in accepted_classes:  # the sender may be SCU; we never send on its association
            raw = uid.encode("ascii", "replace")
            user.append(_item(0x54, struct.pack(">H", len(raw)) + raw + bytes((scu and 1, 0))))
    parts.append(_item(0x50, b"".join(user)))
    body = (
        b"\0\1\0\0"
        + request.raw_called.ljust(16, b" ")
        + request.raw_calling.ljust(16, b" ")
        + b"\0" * 32
        + b"".join(parts)
    )
    return pdu(A_ASSOCIATE_AC_TYPE, body)


# --- DIMSE command sets (PS3.7 E.1, always implicit VR little endian) -----------------------

C_STORE_RQ = 0x0001
C_ECHO_RQ = 0x0030
C_CANCEL_RQ = 0x0FFF
C_STORE_RSP = 0x8001
C_ECHO_RSP = 0x8030
NO_DATA_SET = 0x0101

# Command set elements (group 0000)
AFFECTED_SOP_CLASS = 0x0002
REQUESTED_SOP_CLASS = 0x0003
COMMAND_FIELD = 0x0100
MESSAGE_ID = 0x0110
DATA_SET_TYPE = 0x0800
AFFECTED_SOP_INSTANCE = 0x1000

UNRECOGNIZED_OPERATION = 0x0211  # PS3.7 C.4.3 (refused: the service is not provided)

_ELEMENT = struct.Struct("<HHI")


def decode_command(raw: bytes) -> dict[int, bytes]:
    """{element number: value bytes} of a group-0000 command set; ProtocolError if broken."""
    out: dict[int, bytes] = {}
    pos, end = 0, len(raw)
    while pos < end:
        if pos + 8 > end:
            raise ProtocolError(ABORT_INVALID_PARAMETER, "truncated command set")
        group, element, length = _ELEMENT.unpack_from(raw, pos)
        pos += 8
        if group != 0x0000 or length > end - pos:
            raise ProtocolError(ABORT_INVALID_PARAMETER, "malformed command set")
        out[element] = raw[pos : pos + length]
        pos += length
    return out


def command_us(command: dict[int, bytes], element: int) -> int | None:
    value = command.get(element)
    if value is None or len(value) < 2:
        return None
    return int.from_bytes(value[:2], "little")


def command_ui(command: dict[int, bytes], element: int) -> str:
    value = command.get(element)
    return value.decode("ascii", "replace").strip("\0 ") if value else ""


def _ui(element: int, value: str) -> bytes:
    raw = value.encode("ascii", "replace")
    if len(raw) % 2:
        raw += b"\0"
    return _ELEMENT.pack(0x0000, element, len(raw)) + raw


def _us(element: int, value: int) -> bytes:
    return struct.pack("<HHIH", 0x0000, element, 2, value)


def encode_response(
    command_field: int,
    sop_class: str,
    message_id: int,
    status: int,
    sop_instance: str | None = None,
    error_comment: str | None = None,
) -> bytes:
    """Command set of a C-STORE-RSP / C-ECHO-RSP (PS3.7 9.3.1.2, 9.3.5.2)."""
    body = _ui(0x0002, sop_class) + _us(0x0100, command_field) + _us(0x0120, message_id)
    body += _us(0x0800, NO_DATA_SET) + _us(0x0900, status)
    if error_comment:
        text = error_comment.encode("ascii", "replace")[:64]
        if len(text) % 2:
            text += b" "
        body += _ELEMENT.pack(0x0000, 0x0902, len(text)) + text
    if sop_instance:
        body += _ui(0x1000, sop_instance)
    return _ELEMENT.pack(0x0000, 0x0000, 4) + struct.pack("<I", len(body)) + body


def encode_store_rq(sop_class: str, sop_instance: str, message_id: int) -> bytes:
    """Command set of a C-STORE-RQ with a data set, medium priority (PS3.7 9.3.1.1); the
    gateway's own C-STORE SCU (fionagw.send.store_scu) sends it."""
    body = _ui(AFFECTED_SOP_CLASS, sop_class) + _us(COMMAND_FIELD, C_STORE_RQ)
    body += _us(MESSAGE_ID, message_id) + _us(0x0700, 0x0000) + _us(DATA_SET_TYPE, 0x0000)
    body += _ui(AFFECTED_SOP_INSTANCE, sop_instance)
    return _ELEMENT.pack(0x0000, 0x0000, 4) + struct.pack("<I", len(body)) + body


# --- file meta of a received object (PS3.10 7.1, explicit VR little endian) -----------------

PREAMBLE = b"\0" * 128 + b"DICM"


def _meta_ui(element: int, value: str) -> bytes:
    raw = value.encode("ascii", "replace")
    if len(raw) % 2:
        raw += b"\0"
    if len(raw) > 0xFFFF:
        raise ValueError("UID too long for the file meta")
    return struct.pack("<HH2sH", 0x0002, element, b"UI", len(raw)) + raw


def _meta_tail(transfer_syntax: str) -> bytes:
    version = IMPLEMENTATION_VERSION_NAME.encode("ascii")
    if len(version) % 2:
        version += b" "
    return (
        _meta_ui(0x0010, transfer_syntax)
        + _meta_ui(0x0012, IMPLEMENTATION_CLASS_UID)
        + struct.pack("<HH2sH", 0x0002, 0x0013, b"SH", len(version))
        + version
    )


_VERSION = struct.pack("<HH2sHI", 0x0002, 0x0001, b"OB", 0, 2) + b"\0\1"
_TAILS: dict[str, bytes] = {}


def file_meta(sop_class: str, sop_instance: str, transfer_syntax: str) -> bytes:
    """Preamble, "DICM" and the file meta group of a received object: the elements
    pynetdicom wrote (version, media storage SOP class/instance, transfer syntax,
    implementation class UID and version name). ValueError for an absurdly long UID."""
    tail = _TAILS.get(transfer_syntax)
    if tail is None:
        tail = _meta_tail(transfer_syntax)
        if len(_TAILS) < 64:  # the syntaxes come from peers: keep the cache bounded
            _TAILS[transfer_syntax] = tail
    elements = _VERSION + _meta_ui(0x0002, sop_class) + _meta_ui(0x0003, sop_instance) + tail
    return PREAMBLE + struct.pack("<HH2sHI", 0x0002, 0x0000, b"UL", 4, len(elements)) + elements
