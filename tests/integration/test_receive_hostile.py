"""The receiver under hostile or broken peers: idle connections, huge or odd
A-ASSOCIATE-RQs, structurally broken data sets.

The attacks are made with raw sockets (requests built byte by byte here, so that even ones
no toolkit would encode can be sent); the real sender beside them is dcmtk's storescu.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RJ

from fionagw.receive import store, wire
from support.raw_peer import MR, RawPeer
from support.scp import archived, log_entries, running_scp, temp_leftovers
from support.site import pydicom_test_file, storescu, write_config

pytestmark = pytest.mark.slow  # floods and timeouts against a running receiver


def _item(item_type: int, body: bytes) -> bytes:
    return struct.pack(">BBH", item_type, 0, len(body)) + body


def request_pdu(
    contexts: list[tuple[int, str, list[str]]], calling: str = "RAWSCU", max_pdu: int = 16384
) -> bytes:
    """An A-ASSOCIATE-RQ with exactly these (id, abstract syntax, transfer syntaxes)."""
    items = _item(0x10, wire.APPLICATION_CONTEXT_NAME.encode())
    for context_id, abstract, syntaxes in contexts:
        sub = _item(0x30, abstract.encode()) + b"".join(_item(0x40, ts.encode()) for ts in syntaxes)
        items += _item(0x20, bytes((context_id, 0, 0, 0)) + sub)
    items += _item(
        0x50, _item(0x51, struct.pack(">I", max_pdu)) + _item(0x52, b"1.2.826.0.1.3680043.9.9999")
    )
    body = b"\0\1\0\0" + b"FIONA".ljust(16) + calling.encode().ljust(16) + b"\0" * 32 + items
    return wire.pdu(wire.A_ASSOCIATE_RQ_TYPE, body)


def huge_request(n_contexts: int, n_syntaxes: int = 41) -> bytes:
    """The attacker's request: many contexts of many transfer syntaxes nobody knows, the
    last one of each a real one."""
    syntaxes = [f"1.2.3.4.{j}" for j in range(n_syntaxes - 1)] + [ExplicitVRLittleEndian]
    return request_pdu([((2 * i + 1) % 256, MR, syntaxes) for i in range(n_contexts)])


def send_request(port: int, data: bytes) -> tuple[int, bytes] | None:
    """Send ``data``; the answering PDU, or None when the receiver closed the connection."""
    peer = RawPeer(port)
    try:
        peer.sock.sendall(data)
        return peer.read_pdu()
    except (EOFError, ConnectionResetError, BrokenPipeError):
        return None
    finally:
        peer.close()


def wait_until(predicate, timeout: float = 10) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def _is_closed(sock: socket.socket) -> bool:
    """The receiver has closed ``sock`` (after an A-ABORT, perhaps: read past it)."""
    sock.setblocking(False)
    try:
        while sock.recv(4096):
            pass
        return True
    except BlockingIOError:
        return False
    except OSError:
        return True


# --- 1. idle connections must not lock senders out ---------------------------------------------


def test_idle_connections_do_not_lock_out_senders(tmp_path: Path) -> None:
    """Idle connections, far more than the limits, from the sender's own address and from
    eight others, opened before and all the while storescu stores: every storescu run
    succeeds within seconds, every idle socket is closed by the receiver."""
    config = write_config(
        tmp_path,
        receiver={
            "handshake_timeout": 2,
            "max_unassociated": 8,
            "max_unassociated_per_ip": 3,
            "max_associations": 4,
        },
    )
    series = tmp_path / "series"
    series.mkdir()
    ds = dcmread(pydicom_test_file("MR_small.dcm"))
    ds.StudyInstanceUID = generate_uid()
    for i in range(5):
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.save_as(series / f"{i}.dcm", enforce_file_format=True)

    with running_scp(config) as cfg:
        idle: list[socket.socket] = []
        stop = threading.Event()

        def attack() -> None:  # 127.0.0.1 and 127.0.0.2-9, round robin, as fast as accepted
            n = 0
            while not stop.is_set() and n < 400:
                s = socket.socket()
                s.bind((f"127.0.0.{1 + n % 9}", 0))
                s.settimeout(5)
                try:
                    s.connect(("127.0.0.1", cfg.dicom_port))
                except OSError:
                    s.close()
                    continue
                idle.append(s)
                n += 1
                time.sleep(0.01)

        attacker = threading.Thread(target=attack, daemon=True)
        attacker.start()
        assert wait_until(lambda: len(idle) >= 128)  # the tester's 128, already beyond limits
        runs = []
        try:
            for _ in range(6):
                started = time.monotonic()
                r = storescu(cfg.dicom_port, series, timeout=30)
                runs.append((r.returncode, time.monotonic() - started, r.stderr))
        finally:
            stop.set()
            attacker.join(10)
        for returncode, seconds, stderr in runs:
            assert returncode == 0, stderr
            assert seconds < 10, runs
        assert len(archived(cfg)) == 5
        # Every idle socket is closed by the receiver: displaced, or at the handshake timeout.
        assert wait_until(lambda: all(_is_closed(s) for s in idle), timeout=10)
        for s in idle:
            s.close()
        lines = log_entries(cfg)
        kinds = {e["message"].split(" (")[0] for e in lines if e["level"] == "WARNING"}
        assert kinds <= {
            "unassociated connection closed to make room for a new one",
            "handshake timeout: no complete A-ASSOCIATE-RQ within receiver.handshake_timeout,"
            " connection closed",
        }, kinds
        assert len([e for e in lines if e["level"] == "WARNING"]) < 20  # not one per socket


def test_slow_request_is_cut_at_the_handshake_timeout(tmp_path: Path) -> None:
    """A request trickled in a byte at a time never completes: closed at the timeout."""
    with running_scp(write_config(tmp_path, receiver={"handshake_timeout": 1})) as cfg:
        data = request_pdu([(1, MR, [ExplicitVRLittleEndian])])
        peer = RawPeer(cfg.dicom_port)
        started = time.monotonic()
        closed_after = None
        for byte in data:
            try:
                peer.sock.sendall(bytes((byte,)))
            except OSError:
                closed_after = time.monotonic() - started
                break
            if _is_closed(peer.sock):
                closed_after = time.monotonic() - started
                break
            peer.sock.setblocking(True)
            time.sleep(0.2)
        peer.close()
        assert closed_after is not None and closed_after < 3
        [line] = [e for e in log_entries(cfg) if e["message"].startswith("handshake timeout")]
        assert line["peer"] == "127.0.0.1"


def test_idle_associations_make_room_for_a_sender(tmp_path: Path) -> None:
    """All association slots taken by peers that associated and then went silent: storescu
    is served once they have been silent for receiver.idle_displace_seconds (each is
    aborted, the one silent longest first), and rejected before that (local limit)."""
    config = write_config(tmp_path, receiver={"max_associations": 2, "idle_displace_seconds": 1.5})
    image = pydicom_test_file("MR_small.dcm")
    with running_scp(config) as cfg:
        squatters = [RawPeer(cfg.dicom_port) for _ in range(2)]
        for peer in squatters:
            peer.associate([(MR, [ExplicitVRLittleEndian])])
        early = storescu(cfg.dicom_port, image, timeout=30)
        assert early.returncode != 0 and "Association Rejected" in early.stderr
        time.sleep(1.6)
        started = time.monotonic()
        r = storescu(cfg.dicom_port, image, timeout=30)
        assert r.returncode == 0, r.stderr
        assert time.monotonic() - started < 5
        first, second = squatters  # the one silent longest made room, the other is kept
        assert first.read_pdu()[0] == wire.A_ABORT_TYPE
        assert first.closed()
        assert not _is_closed(second.sock)
        second.close()
        assert len(archived(cfg)) == 1
        lines = [e for e in log_entries(cfg) if e["message"].startswith("idle association")]
        assert lines and lines[0]["calling_aet"] == "RAWSCU"


# --- 2. a huge request costs next to nothing ----------------------------------------------------


def test_huge_request_from_a_refused_address_is_closed_unread(tmp_path: Path) -> None:
    with running_scp(write_config(tmp_path, receiver={"allowed_ips": ["10.0.0.0/8"]})) as cfg:
        data = huge_request(961)
        before, cpu = len(log_entries(cfg)), time.process_time()
        assert send_request(cfg.dicom_port, data) is None
        assert time.process_time() - cpu < 0.5
        time.sleep(0.2)
        new = log_entries(cfg)[before:]
        assert len(new) <= 2, new
        assert new[0]["message"] == "connection refused: peer address not in receiver.allowed_ips"


def test_huge_request_from_an_allowed_address_is_bounded(tmp_path: Path) -> None:
    """961 contexts x 41 syntaxes (971 KB): aborted unparsed, one line. 961 contexts of one
    syntax, or a context of 65: rejected, one line each. 128 x 41 (as many contexts as a
    request can carry): accepted, the one real syntax of each; one summary line when it ends."""
    with running_scp(write_config(tmp_path)) as cfg:
        before, cpu = len(log_entries(cfg)), time.process_time()
        answer = send_request(cfg.dicom_port, huge_request(961))
        assert answer is None or answer[0] == wire.A_ABORT_TYPE
        assert time.process_time() - cpu < 0.5
        assert wait_until(lambda: len(log_entries(cfg)) > before)
        time.sleep(0.2)
        [line] = log_entries(cfg)[before:]
        assert line["message"] == "protocol error before the association, aborted"
        assert line["error"] == "A-ASSOCIATE-RQ too large"

        for data, reason in (
            (huge_request(961, 1), f"more than {wire.MAX_CONTEXTS} presentation contexts"),
            (
                request_pdu([(1, MR, [f"1.2.3.{j}" for j in range(wire.MAX_SYNTAXES + 1)])]),
                f"more than {wire.MAX_SYNTAXES} transfer syntaxes in a context",
            ),
        ):
            before, cpu = len(log_entries(cfg)), time.process_time()
            answer = send_request(cfg.dicom_port, data)
            assert answer is not None and answer[0] == wire.A_ASSOCIATE_RJ_TYPE
            rj = A_ASSOCIATE_RJ()
            rj.decode(answer[1])
            assert (rj.result, rj.source, rj.reason_diagnostic) == wire.REJECT_NO_REASON
            assert time.process_time() - cpu < 0.5
            time.sleep(0.2)
            assert [e["message"] for e in log_entries(cfg)[before:]] == [
                f"association rejected: {reason}"
            ]

        before, cpu = len(log_entries(cfg)), time.process_time()
        peer = RawPeer(cfg.dicom_port)
        peer.sock.sendall(huge_request(128))
        pdu_type, data = peer.read_pdu()
        assert pdu_type == wire.A_ASSOCIATE_AC_TYPE
        ac = A_ASSOCIATE_AC()
        ac.decode(data)
        results = ac.to_primitive().presentation_context_definition_results_list
        assert len(results) == 128
        assert {(cx.result, cx.transfer_syntax[0]) for cx in results} == {
            (0, ExplicitVRLittleEndian)
        }
        peer.sock.sendall(wire.pdu(wire.A_RELEASE_RQ_TYPE, b"\0\0\0\0"))
        assert peer.read_pdu()[0] == wire.A_RELEASE_RP_TYPE
        peer.close()
        assert time.process_time() - cpu < 1.0
        assert wait_until(lambda: len(log_entries(cfg)) > before)
        time.sleep(0.2)
        [line] = log_entries(cfg)[before:]
        assert line["message"] == "association closed"
        assert line["contexts_accepted"] == 128 and line["contexts_rejected"] == 0


def test_rejected_calling_aet_is_refused_before_contexts_are_read(tmp_path: Path) -> None:
    """Even with 961 contexts: the calling AE title decides first (not recognized)."""
    config = write_config(tmp_path, receiver={"allowed_calling_aetitles": ["MODALITY1"]})
    with running_scp(config) as cfg:
        before = len(log_entries(cfg))
        answer = send_request(cfg.dicom_port, huge_request(961, 1))
        assert answer is not None and answer[0] == wire.A_ASSOCIATE_RJ_TYPE
        rj = A_ASSOCIATE_RJ()
        rj.decode(answer[1])
        assert (rj.result, rj.source, rj.reason_diagnostic) == wire.REJECT_CALLING_AE
        time.sleep(0.2)
        [line] = log_entries(cfg)[before:]
        assert "allowed_calling_aetitles" in line["message"] and line["calling_aet"] == "RAWSCU"


# --- 3. odd presentation contexts -----------------------------------------------------------


def test_context_without_transfer_syntax_is_rejected_and_others_work(tmp_path: Path) -> None:
    """A context with no transfer syntax: "transfer syntaxes not supported" (PS3.8 Table
    9-18, result 4), as is one of only unknown syntaxes; the other contexts are accepted
    and a store over one of them succeeds."""
    src = dcmread(pydicom_test_file("CT_small.dcm"))
    body = DicomBytesIO()
    body.is_little_endian, body.is_implicit_VR = True, False
    write_dataset(body, src)
    with running_scp(write_config(tmp_path)) as cfg:
        peer = RawPeer(cfg.dicom_port)
        peer.sock.sendall(
            request_pdu(
                [
                    (1, src.SOPClassUID, []),
                    (3, src.SOPClassUID, ["1.2.3.4.5.6"]),
                    (5, src.SOPClassUID, [ExplicitVRLittleEndian]),
                ]
            )
        )
        pdu_type, data = peer.read_pdu()
        assert pdu_type == wire.A_ASSOCIATE_AC_TYPE, data
        ac = A_ASSOCIATE_AC()
        ac.decode(data)
        results = {
            cx.context_id: cx.result
            for cx in ac.to_primitive().presentation_context_definition_results_list
        }
        assert results == {1: 0x04, 3: 0x04, 5: 0x00}
        rsp = peer.store(src.SOPClassUID, src.SOPInstanceUID, 7, body.getvalue(), context=5)
        assert rsp.Status == 0 and rsp.MessageIDBeingRespondedTo == 7
        peer.sock.sendall(wire.pdu(wire.A_RELEASE_RQ_TYPE, b"\0\0\0\0"))
        assert peer.read_pdu()[0] == wire.A_RELEASE_RP_TYPE
        peer.close()
        assert len(archived(cfg)) == 1
        assert wait_until(
            lambda: any(e["message"] == "association closed" for e in log_entries(cfg))
        )
        [line] = [e for e in log_entries(cfg) if e["message"] == "association closed"]
        assert (line["contexts_accepted"], line["contexts_rejected"], line["stored"]) == (1, 2, 1)
        assert not [e for e in log_entries(cfg) if e["level"] in ("ERROR", "CRITICAL")]


# --- 5. broken data sets are refused, not stored ---------------------------------------------


def _ct_dataset() -> tuple[Dataset, bytes]:
    ds = dcmread(pydicom_test_file("CT_small.dcm"))
    body = DicomBytesIO()
    body.is_little_endian, body.is_implicit_VR = True, False
    write_dataset(body, ds)
    return ds, body.getvalue()


def _longer(data: bytes, marker: bytes, extra: int) -> bytes:
    """``data`` with the 2-byte length of the element starting with ``marker`` made longer."""
    pos = data.index(marker)
    out = bytearray(data)
    length = int.from_bytes(data[pos + 6 : pos + 8], "little") + extra
    out[pos + 6 : pos + 8] = length.to_bytes(2, "little")
    return bytes(out)


def _with_broken_item(data: bytes) -> bytes:
    """A sequence inserted after the Series UID whose one item holds an element longer than
    the item: invisible to a walk of the top level."""
    inner = b"\x40\x00\x01\x10SH\x28\x00ABCD"  # (0040,1001) SH, length 40, 4 bytes follow
    item = struct.pack("<HHI", 0xFFFE, 0xE000, len(inner)) + inner
    sequence = b"\x40\x00\x75\x02SQ\0\0" + struct.pack("<I", len(item)) + item
    pos = data.index(b"\x43\x00\x10\x00LO")  # (0043,0010): the sequence's place in tag order
    return data[:pos] + sequence + data[pos:]


@pytest.mark.parametrize(
    "breakage",
    [
        pytest.param(lambda d: d[:-100], id="cut-in-pixel-data"),
        pytest.param(lambda d: d[: d.index(b"\x28\x00\x30\x00DS") + 5], id="cut-in-a-header"),
        pytest.param(lambda d: _longer(d, b"\x28\x00\x30\x00DS", 6), id="wrong-length"),
        pytest.param(_with_broken_item, id="broken-nested-item"),
    ],
)
def test_broken_data_set_is_refused_and_not_stored(tmp_path: Path, breakage) -> None:  # type: ignore[no-untyped-def]
    """Broken after the Series Instance UID: 0xC210 with a comment, nothing under a final
    name, no temp file left; the intact object is stored on the same association."""
    ds, data = _ct_dataset()
    with running_scp(write_config(tmp_path)) as cfg:
        peer = RawPeer(cfg.dicom_port)
        peer.associate([(ds.SOPClassUID, [ExplicitVRLittleEndian])])
        for message_id, body in ((1, breakage(data)), (2, data)):
            rsp = peer.store(ds.SOPClassUID, ds.SOPInstanceUID, message_id, body)
            if message_id == 1:
                assert rsp.Status == store.CANNOT_DECODE
                assert rsp.ErrorComment.startswith("broken dataset")
                assert not archived(cfg)
            else:
                assert rsp.Status == 0x0000
        peer.sock.sendall(wire.pdu(wire.A_RELEASE_RQ_TYPE, b"\0\0\0\0"))
        assert peer.read_pdu()[0] == wire.A_RELEASE_RP_TYPE
        peer.close()
        [path] = archived(cfg).values()
        assert path.read_bytes().endswith(data)
        assert wait_until(
            lambda: any(e["message"] == "association closed" for e in log_entries(cfg))
        )
        assert not temp_leftovers(cfg)
        [line] = [e for e in log_entries(cfg) if e["message"] == "association closed"]
        assert (line["stored"], line["failed"]) == (1, 1)
        [failure] = [e for e in log_entries(cfg) if e["message"].startswith("store failed")]
        assert failure["status"] == "0xC210" and "broken dataset" in failure["message"]
