"""A-ASSOCIATE-RQ decoding and negotiation of the receiver (wire.py), from raw bytes."""

from __future__ import annotations

import struct

import pytest
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEGBaseline8Bit
from pynetdicom.pdu import A_ASSOCIATE_AC

from fionagw.receive import wire

MR = "1.2.840.10008.5.1.4.1.1.4"
STUDY_FIND = "1.2.840.10008.5.1.4.1.2.2.1"


def _item(item_type: int, body: bytes) -> bytes:
    return struct.pack(">BBH", item_type, 0, len(body)) + body


def _request(contexts: list[tuple[int, str, list[str]]], roles: bytes = b"") -> bytes:
    items = _item(0x10, wire.APPLICATION_CONTEXT_NAME.encode())
    for cid, abstract, syntaxes in contexts:
        sub = _item(0x30, abstract.encode()) + b"".join(_item(0x40, t.encode()) for t in syntaxes)
        items += _item(0x20, bytes((cid, 0, 0, 0)) + sub)
    items += _item(0x50, _item(0x51, struct.pack(">I", 32768)) + roles)
    body = b"\0\1\0\0" + b"FIONA".ljust(16) + b"SCANNER".ljust(16) + b"\0" * 32 + items
    return wire.pdu(wire.A_ASSOCIATE_RQ_TYPE, body)


def _decode(data: bytes) -> wire.Request:
    return wire.decode_request_items(wire.decode_request_head(data), data)


def test_results_per_context_and_an_ac_pynetdicom_reads() -> None:
    role = MR.encode()
    data = _request(
        [
            (1, MR, []),  # no transfer syntax at all
            (3, MR, ["1.2.3.4", JPEGBaseline8Bit, ExplicitVRLittleEndian]),
            (5, wire.VERIFICATION, [JPEGBaseline8Bit, ImplicitVRLittleEndian]),
            (7, STUDY_FIND, [ImplicitVRLittleEndian]),
            (9, "1.3.12.2.1107.5.9.1", ["1.2.3.4"]),  # private class, unknown syntax only
            (3, MR, [ExplicitVRLittleEndian]),  # a context ID used twice
        ],
        roles=_item(0x54, struct.pack(">H", len(role)) + role + b"\1\0"),
    )
    request = _decode(data)
    assert (request.calling, request.called, request.peer_max_pdu) == ("SCANNER", "FIONA", 32768)
    accepted = wire.negotiate(request)
    assert accepted == {3: (MR, JPEGBaseline8Bit), 5: (wire.VERIFICATION, ImplicitVRLittleEndian)}
    assert [cx.result for cx in request.contexts] == [
        wire.CONTEXT_SYNTAXES_NOT_SUPPORTED,
        wire.CONTEXT_ACCEPTED,
        wire.CONTEXT_ACCEPTED,
        wire.CONTEXT_ABSTRACT_NOT_SUPPORTED,
        wire.CONTEXT_SYNTAXES_NOT_SUPPORTED,
        wire.CONTEXT_NO_REASON,
    ]
    ac = A_ASSOCIATE_AC()
    ac.decode(wire.accept_pdu(request, 16384))
    primitive = ac.to_primitive()
    assert primitive.maximum_length_received == 16384
    assert primitive.calling_ae_title == "SCANNER"
    [role_reply] = [i for i in primitive.user_information if hasattr(i, "scu_role")]
    assert (role_reply.sop_class_uid, role_reply.scu_role, role_reply.scp_role) == (
        MR,
        True,
        False,
    )


@pytest.mark.parametrize(
    ("contexts", "reason"),
    [
        ([(1, MR, [ExplicitVRLittleEndian])] * 129, "more than 128 presentation contexts"),
        ([(1, MR, ["1.2.3"] * 65)], "more than 64 transfer syntaxes in a context"),
    ],
)
def test_bounds(contexts: list[tuple[int, str, list[str]]], reason: str) -> None:
    with pytest.raises(wire.RequestRefused, match=reason):
        _decode(_request(contexts))


@pytest.mark.parametrize("cut", [10, 80, 90])
def test_broken_requests_are_protocol_errors(cut: int) -> None:
    data = _request([(1, MR, [ExplicitVRLittleEndian])])
    broken = data[:6] + data[6:cut]  # items cut in the middle
    with pytest.raises(wire.ProtocolError):
        _decode(broken)
