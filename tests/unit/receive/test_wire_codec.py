"""The receiver's own upper layer / DIMSE encoders and decoders against pydicom/pynetdicom."""

from __future__ import annotations

import pytest
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import ImplicitVRLittleEndian, generate_uid
from pynetdicom.dsutils import create_file_meta

from fionagw.receive import wire
from support.raw_peer import MR, VERIFICATION, dimse_command, split_pdvs

# --- encoders and decoders -------------------------------------------------------------------


@pytest.mark.parametrize("sop_instance", ["1.2.3.4", "1.2.3.45", generate_uid()])
@pytest.mark.parametrize("syntax", [ImplicitVRLittleEndian, "1.2.840.10008.1.2.4.50"])
def test_file_meta_equals_pydicoms(sop_instance: str, syntax: str) -> None:
    """The bytes pynetdicom's chunked receive wrote before: same elements, same encoding."""
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, False
    fp.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(
        fp,
        create_file_meta(sop_class_uid=MR, sop_instance_uid=sop_instance, transfer_syntax=syntax),
    )
    assert wire.file_meta(MR, sop_instance, syntax) == fp.getvalue()


def test_command_decoding() -> None:
    raw = dimse_command(
        AffectedSOPClassUID=MR,
        CommandField=1,
        MessageID=77,
        Priority=0,
        CommandDataSetType=0x0000,
        AffectedSOPInstanceUID="1.2.3.45",
    )
    command = wire.decode_command(raw)
    assert wire.command_us(command, wire.COMMAND_FIELD) == wire.C_STORE_RQ
    assert wire.command_us(command, wire.MESSAGE_ID) == 77
    assert wire.command_ui(command, wire.AFFECTED_SOP_CLASS) == MR
    assert wire.command_ui(command, wire.AFFECTED_SOP_INSTANCE) == "1.2.3.45"
    assert wire.command_us(command, wire.DATA_SET_TYPE) != wire.NO_DATA_SET
    for broken in (raw[:-3], b"\x08\x00" + raw[2:], raw[:4] + b"\xff\xff\x00\x00" + raw[8:]):
        with pytest.raises(wire.ProtocolError):
            wire.decode_command(broken)


def test_response_encoding_round_trips() -> None:
    raw = wire.encode_response(0x8001, MR, 7, 0xA700, "1.2.3.4", "no space")
    ds = read_dataset(DicomBytesIO(raw), is_implicit_VR=True, is_little_endian=True)
    assert ds.CommandGroupLength == len(raw) - 12
    assert ds.CommandField == 0x8001 and ds.MessageIDBeingRespondedTo == 7
    assert ds.Status == 0xA700 and ds.CommandDataSetType == 0x0101
    assert ds.AffectedSOPInstanceUID == "1.2.3.4" and ds.ErrorComment == "no space"
    assert ds.AffectedSOPClassUID == MR


def test_p_data_respects_the_peers_maximum() -> None:
    command = wire.encode_response(0x8030, VERIFICATION, 1, 0)
    assert split_pdvs(wire.p_data(3, command, 0)) == [(3, 0x03, command)]
    pdus = wire.p_data(3, command, 20)
    pdvs = split_pdvs(pdus)
    assert len(pdvs) == -(-len(command) // 14)
    assert b"".join(p[2] for p in pdvs) == command
    assert [p[1] for p in pdvs] == [0x01] * (len(pdvs) - 1) + [0x03]
    pos = 0
    while pos < len(pdus):  # every PDU's variable field within the maximum
        length = wire.parse_header(pdus[pos : pos + 6])[1]
        assert length <= 20
        pos += 6 + length
