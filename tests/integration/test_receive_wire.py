"""The SCP's answers to peers that misbehave, spoken to with raw sockets (support/raw_peer.py)."""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid
from pynetdicom.pdu import A_ASSOCIATE_RJ

from fionagw.config import SiteConfig
from fionagw.receive import sink, wire
from support.raw_peer import MR, VERIFICATION, RawPeer, dimse_command, echo_command, store_command
from support.scp import archived, log_entries, running_scp, temp_leftovers
from support.site import pydicom_test_file, write_config

STUDY_FIND = "1.2.840.10008.5.1.4.1.2.2.1"


# --- a raw peer --------------------------------------------------------------------------------


@pytest.fixture
def scp(site_config: Path) -> Iterator[SiteConfig]:
    with running_scp(site_config) as cfg:
        yield cfg


def peer_for(cfg: SiteConfig) -> RawPeer:
    return RawPeer(cfg.dicom_port)


def wait_for(predicate, timeout: float = 5) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


# --- association establishment ------------------------------------------------------------------


def test_negotiation_accepts_storage_and_verification_only(scp: SiteConfig) -> None:
    peer = peer_for(scp)
    ac = peer.associate(
        [
            (MR, ["1.2.840.10008.1.2.4.50", ExplicitVRLittleEndian]),
            ("1.3.12.2.1107.5.9.1", [ExplicitVRLittleEndian]),  # private storage
            (VERIFICATION, ["1.2.3.4.5", ExplicitVRLittleEndian]),
            (STUDY_FIND, [ImplicitVRLittleEndian]),
        ]
    )
    results = {
        cx.context_id: (cx.result, cx.transfer_syntax[0] if cx.result == 0 else None)
        for cx in ac.to_primitive().presentation_context_definition_results_list
    }
    assert results[1] == (0, "1.2.840.10008.1.2.4.50")  # the sender's first choice, kept
    assert results[3] == (0, ExplicitVRLittleEndian)
    assert results[5] == (0, ExplicitVRLittleEndian)
    assert results[7][0] != 0  # a query service: not here
    assert ac.to_primitive().maximum_length_received == scp.receiver.max_pdu
    assert ac.to_primitive().implementation_class_uid == wire.IMPLEMENTATION_CLASS_UID
    peer.sock.sendall(wire.pdu(wire.A_RELEASE_RQ_TYPE, b"\0\0\0\0"))
    assert peer.read_pdu()[0] == wire.A_RELEASE_RP_TYPE
    assert peer.closed()


def test_garbage_instead_of_an_association_is_aborted(scp: SiteConfig) -> None:
    peer = peer_for(scp)
    peer.sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    pdu_type, data = peer.read_pdu()
    assert pdu_type == wire.A_ABORT_TYPE and data[8] == 0x02  # from the service provider
    assert peer.closed()
    peer = peer_for(scp)  # the receiver carries on
    peer.associate([(VERIFICATION, [ImplicitVRLittleEndian])])
    peer.close()


def test_too_many_associations_are_rejected(tmp_path: Path) -> None:
    with running_scp(write_config(tmp_path, receiver={"max_associations": 1})) as cfg:
        first = peer_for(cfg)
        first.associate([(VERIFICATION, [ImplicitVRLittleEndian])])
        second = peer_for(cfg)
        pdu_type, data = second.request(
            [(VERIFICATION, [ImplicitVRLittleEndian])], calling="SECOND"
        )
        assert pdu_type == wire.A_ASSOCIATE_RJ_TYPE
        rj = A_ASSOCIATE_RJ()
        rj.decode(data)
        assert (rj.result, rj.source, rj.reason_diagnostic) == wire.REJECT_LOCAL_LIMIT
        first.close()


# --- data phase --------------------------------------------------------------------------------


def test_echo_answered_within_a_tiny_maximum_pdu(scp: SiteConfig) -> None:
    peer = peer_for(scp)
    peer.associate([(VERIFICATION, [ImplicitVRLittleEndian])], max_pdu=24)
    peer.send_pdv(1, 0x03, echo_command(42))
    rsp = peer.response()
    assert rsp.CommandField == 0x8030 and rsp.Status == 0 and rsp.MessageIDBeingRespondedTo == 42
    peer.close()


def test_fragmented_command_and_data_set(scp: SiteConfig) -> None:
    """Command and data set cut into many small PDVs, several per PDU."""
    src = pydicom_test_file("CT_small.dcm")
    ds = dcmread(src)
    body = DicomBytesIO()
    body.is_little_endian, body.is_implicit_VR = True, False
    write_dataset(body, ds)
    data = body.getvalue()
    peer = peer_for(scp)
    peer.associate([(ds.SOPClassUID, [ExplicitVRLittleEndian])])
    command = store_command(ds.SOPInstanceUID, 5, ds.SOPClassUID)
    chunks = [data[i : i + 1000] for i in range(0, len(data), 1000)]
    pdvs = [(0x01, command[:10]), (0x03, command[10:])]
    pdvs += [(0x00, c) for c in chunks[:-1]] + [(0x02, chunks[-1])]
    for i in range(0, len(pdvs), 3):  # three PDVs per P-DATA-TF
        items = b"".join(struct.pack(">IBB", len(d) + 2, 1, c) + d for c, d in pdvs[i : i + 3])
        peer.sock.sendall(wire.pdu(wire.P_DATA_TF_TYPE, items))
    rsp = peer.response()
    assert rsp.Status == 0 and rsp.MessageIDBeingRespondedTo == 5
    [path] = archived(scp).values()
    stored = path.read_bytes()
    assert stored.endswith(data) and stored[:128] == b"\0" * 128
    assert dcmread(path).file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    peer.close()


def _association_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("scp-127.0.0.1:")]


@pytest.mark.parametrize("how", ["abort", "drop"])
def test_partial_data_set_leaves_nothing(scp: SiteConfig, how: str) -> None:
    """A data set cut off after it started going to a temp file."""
    peer = peer_for(scp)
    peer.associate([(MR, [ExplicitVRLittleEndian])])
    peer.send_pdv(1, 0x03, store_command("1.2.3.4.5"))
    peer.send_pdv(
        1, 0x00, b"\x08\x00\x05\x00CS\x0a\x00ISO_IR 100" + b"\0" * (sink.FLUSH_BYTES + 5000)
    )
    assert wait_for(lambda: temp_leftovers(scp))
    if how == "abort":
        peer.sock.sendall(wire.abort_pdu(0, source=0))
    peer.close()
    assert wait_for(lambda: not _association_threads())
    assert not archived(scp) and not temp_leftovers(scp)


def test_large_object_goes_through_a_temp_file(scp: SiteConfig, tmp_path: Path) -> None:
    """Bigger than what the SCP keeps in memory: streamed into site/temp, same bytes."""
    from pynetdicom import AE

    ds = dcmread(pydicom_test_file("CT_small.dcm"))
    ds.PixelData = bytes(range(256)) * (3 * sink.FLUSH_BYTES // 256 + 8)
    ds.Rows, ds.Columns = len(ds.PixelData) // 2048, 1024
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    src = tmp_path / "big.dcm"
    ds.save_as(src, enforce_file_format=True)
    ae = AE(ae_title="BIGSCU")
    ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
    assoc = ae.associate("127.0.0.1", scp.dicom_port)
    assert assoc.send_c_store(ds).Status == 0
    assoc.release()
    [path] = archived(scp).values()
    assert dcmread(path).PixelData == ds.PixelData
    assert dcmread(path).SOPInstanceUID == ds.SOPInstanceUID
    assert not temp_leftovers(scp)


def test_context_not_accepted_is_aborted(scp: SiteConfig) -> None:
    peer = peer_for(scp)
    peer.associate([(VERIFICATION, [ImplicitVRLittleEndian])])
    peer.send_pdv(3, 0x03, echo_command())
    assert peer.read_pdu()[0] == wire.A_ABORT_TYPE
    assert peer.closed()
    assert any("not accepted" in e["message"] for e in log_entries(scp))


def test_data_set_without_command_is_aborted(scp: SiteConfig) -> None:
    peer = peer_for(scp)
    peer.associate([(MR, [ExplicitVRLittleEndian])])
    peer.send_pdv(1, 0x02, b"\0" * 16)
    assert peer.read_pdu()[0] == wire.A_ABORT_TYPE
    assert peer.closed()


def test_unknown_pdu_type_is_aborted(scp: SiteConfig) -> None:
    peer = peer_for(scp)
    peer.associate([(MR, [ExplicitVRLittleEndian])])
    peer.sock.sendall(wire.pdu(0x42, b"\0" * 4))
    pdu_type, data = peer.read_pdu()
    assert pdu_type == wire.A_ABORT_TYPE and data[9] == wire.ABORT_UNRECOGNIZED_PDU
    assert peer.closed()


def test_other_services_are_refused_with_a_status(scp: SiteConfig) -> None:
    peer = peer_for(scp)
    peer.associate([(MR, [ExplicitVRLittleEndian])])
    find = dimse_command(
        AffectedSOPClassUID=MR,
        CommandField=0x20,
        MessageID=9,
        Priority=0,
        CommandDataSetType=0x0000,
    )
    peer.send_pdv(1, 0x03, find)
    peer.send_pdv(1, 0x02, b"\x10\x00\x10\x00\x00\x00\x00\x00")  # its identifier: dropped
    rsp = peer.response()
    assert rsp.CommandField == 0x8020 and rsp.Status == wire.UNRECOGNIZED_OPERATION
    peer.send_pdv(1, 0x03, echo_command(10))  # the association is still usable
    assert peer.response().Status == 0
    peer.close()


@pytest.mark.slow
def test_silent_peer_is_aborted_after_the_network_timeout(tmp_path: Path) -> None:
    d = tmp_path / "site"
    d.mkdir()
    with running_scp(write_config(d, receiver={"network_timeout": 1})) as cfg:
        peer = peer_for(cfg)
        peer.associate([(MR, [ExplicitVRLittleEndian])])
        peer.send_pdv(1, 0x03, store_command("1.2.3.4.6"))
        peer.send_pdv(1, 0x00, b"\0" * 100)
        t0 = time.monotonic()
        assert peer.read_pdu()[0] == wire.A_ABORT_TYPE
        assert 0.5 < time.monotonic() - t0 < 5
        assert peer.closed()
        assert wait_for(lambda: not temp_leftovers(cfg))
        assert any(e["message"].startswith("network timeout") for e in log_entries(cfg))


@pytest.mark.slow
def test_parallel_associations(scp: SiteConfig, tmp_path: Path) -> None:
    from pynetdicom import AE

    ds = dcmread(pydicom_test_file("MR_small.dcm"))
    errors: list[str] = []

    def send(n: int) -> None:
        ae = AE(ae_title=f"PAR{n}")
        ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
        assoc = ae.associate("127.0.0.1", scp.dicom_port)
        for i in range(20):
            copy = ds.copy()
            copy.SOPInstanceUID = f"1.2.826.0.1.3680043.8.498.{n}.{i}"
            status = assoc.send_c_store(copy)
            if status.Status != 0:
                errors.append(f"{n}.{i}: 0x{status.Status:04X}")
        assoc.release()

    threads = [threading.Thread(target=send, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert len(archived(scp)) == 80
    assert not temp_leftovers(scp)
