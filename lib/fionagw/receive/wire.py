"""The DICOM upper layer and DIMSE pieces of the receiver (PS3.8, PS3.7), small and direct.

pynetdicom does what it is good at: decoding the A-ASSOCIATE-RQ, negotiating presentation
contexts and role selection, encoding the A-ASSOCIATE-AC. The per-image path (P-DATA-TF
framing, the C-STORE/C-ECHO command sets, the file meta of a received object) is encoded
and decoded here with ``struct``: each of these is a handful of fixed fields, and going
through pydicom Datasets and pynetdicom's state machine for them cost ~3 ms per image.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION
from pynetdicom.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RQ
from pynetdicom.pdu_primitives import (
    A_ASSOCIATE,
    ImplementationClassUIDNotification,
    ImplementationVersionNameNotification,
    MaximumLengthNotification,
    SCP_SCU_RoleSelectionNegotiation,
)
from pynetdicom.presentation import build_context, negotiate_unrestricted
from pynetdicom.sop_class import Verification

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


# --- association negotiation (pynetdicom's PDU classes and negotiation) ----------------------


@dataclass
class Request:
    """What the receiver needs from an A-ASSOCIATE-RQ."""

    primitive: A_ASSOCIATE
    calling: str
    called: str
    protocol_version: int
    application_context: str
    peer_max_pdu: int


def decode_associate_rq(data: bytes) -> Request:
    """``data`` is the whole PDU (header included); ProtocolError if it cannot be decoded."""
    rq = A_ASSOCIATE_RQ()
    try:
        rq.decode(data)
        primitive = rq.to_primitive()
    except Exception as exc:  # pynetdicom raises anything from struct.error to ValueError
        raise ProtocolError(
            ABORT_INVALID_PARAMETER, f"undecodable A-ASSOCIATE-RQ: {type(exc).__name__}"
        ) from None
    peer_max = 0
    for item in primitive.user_information or []:
        if isinstance(item, MaximumLengthNotification):
            peer_max = int(item.maximum_length_received or 0)
    return Request(
        primitive,
        (primitive.calling_ae_title or "").strip(),
        (primitive.called_ae_title or "").strip(),
        int(rq.protocol_version),
        str(primitive.application_context_name or ""),
        peer_max,
    )


_SUPPORTED = [build_context(Verification)]  # besides storage, which is accepted as proposed


def accept(request: Request, max_pdu: int) -> tuple[bytes, dict[int, tuple[str, str]]]:
    """The A-ASSOCIATE-AC PDU and the accepted contexts {id: (abstract, transfer syntax)}.

    Every storage SOP Class (public, private, or unknown to pynetdicom) is accepted in the
    first transfer syntax the sender proposes, so the bytes are kept as encoded; Verification
    in one of the default syntaxes; anything else is rejected (pynetdicom's unrestricted
    storage negotiation).
    """
    rq = request.primitive
    roles = {
        item.sop_class_uid: (item.scu_role, item.scp_role)
        for item in rq.user_information or []
        if isinstance(item, SCP_SCU_RoleSelectionNegotiation)
    }
    results, role_items = negotiate_unrestricted(
        rq.presentation_context_definition_list, _SUPPORTED, roles
    )
    accepted = {
        int(cx.context_id): (str(cx.abstract_syntax), str(cx.transfer_syntax[0]))
        for cx in results
        if cx.result == 0x00
    }

    ac = A_ASSOCIATE()
    ac.application_context_name = APPLICATION_CONTEXT_NAME
    ac.calling_ae_title = rq.calling_ae_title
    ac.called_ae_title = rq.called_ae_title
    ac.result = 0x00
    ac.result_source = 0x01
    ac.presentation_context_definition_results_list = [
        cx for cx in results if cx.result == 0x00
    ] + [cx for cx in results if cx.result != 0x00]
    max_length = MaximumLengthNotification()
    max_length.maximum_length_received = max_pdu
    impl_uid = ImplementationClassUIDNotification()
    impl_uid.implementation_class_uid = IMPLEMENTATION_CLASS_UID
    impl_version = ImplementationVersionNameNotification()
    impl_version.implementation_version_name = IMPLEMENTATION_VERSION_NAME
    ac.user_information = [max_length, impl_uid, impl_version, *role_items]
    pdu_ac = A_ASSOCIATE_AC()
    pdu_ac.from_primitive(ac)
    return pdu_ac.encode(), accepted


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
