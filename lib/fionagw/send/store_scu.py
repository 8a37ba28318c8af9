"""The per-image path of our C-STORE SCU, small and direct (like the receiver's data loop).

pynetdicom's SCU costs ~8 ms per image on loopback (its state machine, reactor thread and
DIMSE queues; dcmtk's storescu needs ~5 ms to Orthanc). Here the association is negotiated
with pynetdicom's PDU classes (A-ASSOCIATE-RQ/AC/RJ, as the receiver does), and each instance
goes out as stored: the C-STORE-RQ command set (receive/wire.py), then the file's bytes after
its File Meta Information, read in large blocks and framed into P-DATA-TF PDUs as large as the
peer takes, sent with few system calls on a TCP_NODELAY socket. Datasets are never decoded.

One C-STORE is outstanding at a time (asynchronous operations are not negotiated; PACSes
rarely grant them): several associations per study give the parallelism instead
(DicomDestination ``associations``).
"""

from __future__ import annotations

import os
import socket
import ssl
import struct
from collections.abc import Sequence
from typing import BinaryIO

from pynetdicom.pdu import A_ABORT_RQ, A_ASSOCIATE_AC, A_ASSOCIATE_RJ, A_ASSOCIATE_RQ
from pynetdicom.pdu_primitives import (
    A_ASSOCIATE,
    ImplementationClassUIDNotification,
    ImplementationVersionNameNotification,
    MaximumLengthNotification,
)
from pynetdicom.presentation import PresentationContext

from fionagw.receive import wire
from fionagw.send.base import SendError, one_line

_PDV = struct.Struct(">BBIIBB")  # PDU type, reserved, PDU length, PDV length, context, flags
_LONG_VRS = {
    b"OB",
    b"OD",
    b"OF",
    b"OL",
    b"OV",
    b"OW",
    b"SQ",
    b"SV",
    b"UC",
    b"UN",
    b"UR",
    b"UT",
    b"UV",
}
BLOCK = 1024 * 1024  # file bytes read and framed at a time
_IOV_MAX = 512  # iovecs per sendmsg (Linux allows 1024)


class Lost(Exception):
    """The association is gone (abort, timeout, closed): the instance was not confirmed."""


class NoContexts(Exception):
    """The peer accepted none of the presentation contexts offered."""


def read_meta(f: BinaryIO) -> tuple[int, dict[int, str]] | None:
    """(where the dataset starts, {element: value}) of the group-0002 File Meta Information
    of a Part-10 file, UI values as text; None for a file without preamble or with a garbled
    meta group (pydicom then reads it, and says what is wrong)."""
    head = f.read(132)
    if len(head) < 132 or head[128:132] != b"DICM":
        return None
    pos, values = 132, {}
    while True:
        element = f.read(8)
        if len(element) < 8 or int.from_bytes(element[:2], "little") != 0x0002:
            break
        number = int.from_bytes(element[2:4], "little")
        if element[4:6] in _LONG_VRS:
            extra = f.read(4)
            if len(extra) < 4:
                return None
            length, header = int.from_bytes(extra, "little"), 12
        else:
            length, header = int.from_bytes(element[6:8], "little"), 8
        if element[4:6] == b"UI":
            raw = f.read(length)
            if len(raw) < length:
                return None
            values[number] = raw.decode("ascii", "replace").rstrip("\0 ")
        pos += header + length
        f.seek(pos)
    return pos, values


def dataset_offset(f: BinaryIO) -> int | None:
    """Where the dataset starts in a Part-10 file (after the preamble and the File Meta
    Information); None for a file without a preamble (sent the slow way instead)."""
    meta = read_meta(f)
    return meta[0] if meta else None


class StoreAssociation:
    """One association for C-STORE, on our own socket."""

    def __init__(
        self,
        sock: socket.socket,
        accepted: dict[tuple[str, str], int],
        peer_max: int,
        max_pdu: int,
    ) -> None:
        self.sock = sock
        self.accepted = accepted  # (SOP class, transfer syntax) -> presentation context ID
        self.accepted_syntaxes: dict[str, list[str]] = {}
        for sop_class, syntax in accepted:
            self.accepted_syntaxes.setdefault(sop_class, []).append(syntax)
        limit = min(peer_max, max_pdu) if peer_max else max_pdu
        self.fragment = max(limit - 6, 16)  # bytes of data per PDV (a PDU holds one)
        self.plain = not isinstance(sock, ssl.SSLSocket)  # sendmsg with iovecs
        self.message_id = 0

    # -- negotiation -------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        host: str,
        port: int,
        calling: str,
        called: str,
        contexts: Sequence[PresentationContext],
        *,
        max_pdu: int,
        timeout: float,
        tls: tuple[ssl.SSLContext, str] | None = None,
    ) -> StoreAssociation:
        """Connect and negotiate; SendError (one line) if the peer cannot be reached or
        refuses, NoContexts if it accepts no context. OSError is left to the caller, which
        diagnoses the connection problem."""
        where = f"{called}@{host}:{port}"
        sock = socket.create_connection((host, port), timeout=timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if tls is not None:
                sock = tls[0].wrap_socket(sock, server_hostname=tls[1])
            offered = {}
            for i, cx in enumerate(contexts):
                cx.context_id = 2 * i + 1
                offered[cx.context_id] = str(cx.abstract_syntax)
            sock.sendall(_associate_rq(calling, called, contexts, max_pdu))
            pdu_type, body = _read_pdu(sock)
            if pdu_type == wire.A_ASSOCIATE_RJ_TYPE:
                rj = A_ASSOCIATE_RJ()
                rj.decode(_whole(pdu_type, body))
                raise SendError(
                    f"{where}: association rejected: {rj.reason_str} ({rj.result_str},"
                    f" {rj.source_str})"
                )
            if pdu_type == wire.A_ABORT_TYPE:
                ab = A_ABORT_RQ()
                ab.decode(_whole(pdu_type, body))
                raise SendError(f"{where}: association aborted by the peer: {ab.reason_str}")
            if pdu_type != wire.A_ASSOCIATE_AC_TYPE:
                raise SendError(
                    f"{where}: unexpected PDU type {pdu_type} in reply to A-ASSOCIATE-RQ"
                )
            ac = A_ASSOCIATE_AC()
            ac.decode(_whole(pdu_type, body))
            primitive = ac.to_primitive()
            accepted = {
                (offered[int(cx.context_id)], str(cx.transfer_syntax[0])): int(cx.context_id)
                for cx in primitive.presentation_context_definition_results_list or []
                if cx.result == 0x00 and int(cx.context_id) in offered and cx.transfer_syntax
            }
            peer_max = 0
            for item in primitive.user_information or []:
                if isinstance(item, MaximumLengthNotification):
                    peer_max = int(item.maximum_length_received or 0)
            assoc = cls(sock, accepted, peer_max, max_pdu)
            if not accepted:
                assoc.abort()
                raise NoContexts()
            return assoc
        except (SendError, NoContexts):
            sock.close()
            raise
        except Lost as exc:
            sock.close()
            raise SendError(
                f"cannot connect to {where}: {exc} during association negotiation"
            ) from None
        except ssl.SSLCertVerificationError as exc:
            sock.close()
            raise SendError(
                f"cannot connect to {where}: TLS: the peer's certificate is not trusted:"
                f" {exc.verify_message}"
            ) from None
        except ssl.SSLError as exc:  # e.g. the peer wants a client certificate
            sock.close()
            raise SendError(
                f"cannot connect to {where}: TLS: {exc.reason or one_line(exc)}"
            ) from None
        except (struct.error, ValueError, KeyError, AttributeError, TypeError) as exc:
            sock.close()
            raise SendError(f"{where}: undecodable association reply: {one_line(exc)}") from None
        except BaseException:
            sock.close()
            raise

    # -- C-STORE -------------------------------------------------------------------------------

    def context_for(self, sop_class: str, syntax: str) -> int | None:
        return self.accepted.get((sop_class, syntax))

    def store(
        self, context_id: int, sop_class: str, sop_uid: str, f: BinaryIO, offset: int
    ) -> tuple[int, str]:
        """Send one instance (the bytes of ``f`` from ``offset``) and wait for its response:
        (status, error comment). Lost when the association is gone."""
        self.message_id = self.message_id % 65535 + 1
        command = wire.encode_store_rq(sop_class, sop_uid, self.message_id)
        size = os.fstat(f.fileno()).st_size - offset
        f.seek(offset)
        try:
            self._send([wire.p_data(context_id, command, self.fragment + 6, command=True)])
            sent = 0
            while True:
                block = f.read(min(BLOCK, size - sent)) if size > sent else b""
                if size > sent and not block:
                    raise OSError("the file shrank while it was being sent")
                sent += len(block)
                self._send(self._frames(context_id, block, last=sent >= size))
                if sent >= size:
                    break
            return self._response()
        except (TimeoutError, OSError) as exc:
            raise Lost(exc.strerror or one_line(exc) or type(exc).__name__) from None

    def _frames(self, context_id: int, block: bytes, *, last: bool) -> list[bytes | memoryview]:
        view = memoryview(block)
        out: list[bytes | memoryview] = []
        n = len(view)
        if n == 0:
            return [_PDV.pack(wire.P_DATA_TF_TYPE, 0, 6, 2, context_id, 0x02 if last else 0)]
        for start in range(0, n, self.fragment):
            chunk = view[start : start + self.fragment]
            flag = 0x02 if last and start + self.fragment >= n else 0x00
            out.append(
                _PDV.pack(wire.P_DATA_TF_TYPE, 0, len(chunk) + 6, len(chunk) + 2, context_id, flag)
            )
            out.append(chunk)
        return out

    def _send(self, parts: list[bytes | memoryview]) -> None:
        if not self.plain:
            self.sock.sendall(b"".join(parts))
            return
        for i in range(0, len(parts), _IOV_MAX):
            batch = parts[i : i + _IOV_MAX]
            total = sum(len(p) for p in batch)
            done = self.sock.sendmsg(batch)
            if done < total:  # a partial write: send the rest plainly
                self.sock.sendall(b"".join(bytes(p) for p in batch)[done:])

    def _response(self) -> tuple[int, str]:
        command = bytearray()
        while True:
            pdu_type, body = _read_pdu(self.sock)
            if pdu_type == wire.A_ABORT_TYPE:
                ab = A_ABORT_RQ()
                ab.decode(_whole(pdu_type, body))
                raise Lost(f"association aborted by the peer: {ab.reason_str}")
            if pdu_type != wire.P_DATA_TF_TYPE:
                raise Lost(f"unexpected PDU type {pdu_type} while waiting for a C-STORE response")
            pos = 0
            while pos + 6 <= len(body):
                length = int.from_bytes(body[pos : pos + 4], "big")
                flags = body[pos + 5]
                data = body[pos + 6 : pos + 4 + length]
                pos += 4 + length
                if flags & 0x01:
                    command += data
                    if flags & 0x02:
                        fields = wire.decode_command(bytes(command))
                        status = wire.command_us(fields, 0x0900)
                        if status is None:
                            raise Lost("a C-STORE response without a status")
                        return status, wire.command_ui(fields, 0x0902)

    # -- ending -------------------------------------------------------------------------------

    def release(self) -> None:
        """A-RELEASE-RQ and wait (briefly) for the RP; then close."""
        try:
            self.sock.sendall(wire.pdu(wire.A_RELEASE_RQ_TYPE, b"\0\0\0\0"))
            self.sock.settimeout(min(self.sock.gettimeout() or 10.0, 10.0))
            _read_pdu(self.sock)
        except (OSError, Lost):
            pass
        finally:
            self.sock.close()

    def abort(self) -> None:
        try:
            self.sock.sendall(wire.abort_pdu(source=0x00))
        except OSError:
            pass
        finally:
            self.sock.close()


def _associate_rq(
    calling: str, called: str, contexts: Sequence[PresentationContext], max_pdu: int
) -> bytes:
    primitive = A_ASSOCIATE()
    primitive.application_context_name = wire.APPLICATION_CONTEXT_NAME
    primitive.calling_ae_title = calling
    primitive.called_ae_title = called
    primitive.presentation_context_definition_list = list(contexts)
    max_length = MaximumLengthNotification()
    max_length.maximum_length_received = max_pdu
    impl_uid = ImplementationClassUIDNotification()
    impl_uid.implementation_class_uid = wire.IMPLEMENTATION_CLASS_UID
    impl_version = ImplementationVersionNameNotification()
    impl_version.implementation_version_name = wire.IMPLEMENTATION_VERSION_NAME
    primitive.user_information = [max_length, impl_uid, impl_version]
    rq = A_ASSOCIATE_RQ()
    rq.from_primitive(primitive)
    return rq.encode()


def _whole(pdu_type: int, body: bytes) -> bytes:
    return wire.pdu(pdu_type, body)


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            raise Lost("the peer closed the connection")
        got += k
    return bytes(buf)


def _read_pdu(sock: socket.socket) -> tuple[int, bytes]:
    try:
        pdu_type, length = wire.parse_header(_recv_exactly(sock, 6))
        return pdu_type, _recv_exactly(sock, length)
    except TimeoutError:
        raise Lost("no answer within the timeout") from None
    except ssl.SSLError:  # a TLS alert: the caller says what it means
        raise
    except OSError as exc:
        raise Lost(exc.strerror or one_line(exc)) from None
