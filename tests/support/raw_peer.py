"""A DICOM peer that speaks PDUs by hand over a raw socket, to misbehave in ways no toolkit will."""

from __future__ import annotations

import socket
import struct

from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_dataset
from pynetdicom.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RQ
from pynetdicom.pdu_primitives import (
    A_ASSOCIATE,
    ImplementationClassUIDNotification,
    MaximumLengthNotification,
)
from pynetdicom.presentation import build_context

from fionagw.receive import wire

MR = "1.2.840.10008.5.1.4.1.1.4"


VERIFICATION = "1.2.840.10008.1.1"


def dimse_command(**elements: object) -> bytes:
    ds = Dataset()
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, True
    write_dataset(fp, ds)
    body = fp.getvalue()
    return struct.pack("<HHII", 0, 0, 4, len(body)) + body


def split_pdvs(data: bytes) -> list[tuple[int, int, bytes]]:
    """(context, control header, fragment) of every PDV in a run of P-DATA-TF PDUs."""
    out, pos = [], 0
    while pos < len(data):
        pdu_type, length = wire.parse_header(data[pos : pos + 6])
        assert pdu_type == wire.P_DATA_TF_TYPE
        end, pos = pos + 6 + length, pos + 6
        while pos < end:
            item_length, context, control = struct.unpack_from(">IBB", data, pos)
            out.append((context, control, data[pos + 6 : pos + 4 + item_length]))
            pos += 4 + item_length
    return out


class RawPeer:
    """A socket speaking PDUs by hand."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def close(self) -> None:
        self.sock.close()

    def read_pdu(self) -> tuple[int, bytes]:
        header = self._read(6)
        pdu_type, length = wire.parse_header(header)
        return pdu_type, header + self._read(length)

    def _read(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise EOFError(f"connection closed after {len(data)} of {n} bytes")
            data += chunk
        return data

    def closed(self, timeout: float = 5) -> bool:
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def request(
        self, contexts: list[tuple[str, list[str]]], max_pdu: int = 16384, calling: str = "RAWSCU"
    ) -> tuple[int, bytes]:
        """Send an A-ASSOCIATE-RQ; the answering PDU."""
        rq = A_ASSOCIATE()
        rq.application_context_name = wire.APPLICATION_CONTEXT_NAME
        rq.calling_ae_title, rq.called_ae_title = calling, "FIONA"
        for i, (abstract, syntaxes) in enumerate(contexts):
            cx = build_context(abstract, syntaxes)
            cx.context_id = 2 * i + 1
            rq.presentation_context_definition_list.append(cx)
        length = MaximumLengthNotification()
        length.maximum_length_received = max_pdu
        impl = ImplementationClassUIDNotification()
        impl.implementation_class_uid = "1.2.826.0.1.3680043.9.9999"
        rq.user_information = [length, impl]
        self.sock.sendall(A_ASSOCIATE_RQ(rq).encode())
        return self.read_pdu()

    def associate(
        self, contexts: list[tuple[str, list[str]]], max_pdu: int = 16384
    ) -> A_ASSOCIATE_AC:
        pdu_type, data = self.request(contexts, max_pdu)
        assert pdu_type == wire.A_ASSOCIATE_AC_TYPE, data
        ac = A_ASSOCIATE_AC()
        ac.decode(data)
        return ac

    def send_pdv(self, context: int, control: int, data: bytes) -> None:
        self.sock.sendall(
            struct.pack(">BBIIBB", 4, 0, len(data) + 6, len(data) + 2, context, control) + data
        )

    def store(
        self, sop_class: str, sop_instance: str, message_id: int, body: bytes, context: int = 1
    ) -> Dataset:
        """One C-STORE: its command, then ``body`` as the data set; the C-STORE-RSP."""
        self.send_pdv(context, 0x03, store_command(sop_instance, message_id, sop_class))
        self.send_pdv(context, 0x02, body)
        return self.response()

    def response(self) -> Dataset:
        """The next DIMSE command, assembled from P-DATA-TF PDUs of any size."""
        command = b""
        while True:
            pdu_type, data = self.read_pdu()
            assert pdu_type == wire.P_DATA_TF_TYPE, data
            for _context, control, fragment in split_pdvs(data):
                assert control & 0x01
                command += fragment
                if control & 0x02:
                    return read_dataset(
                        DicomBytesIO(command), is_implicit_VR=True, is_little_endian=True
                    )


def store_command(sop_instance: str, message_id: int = 1, sop_class: str = MR) -> bytes:
    """A C-STORE-RQ command (its data set follows in its own PDVs)."""
    return dimse_command(
        AffectedSOPClassUID=sop_class,
        CommandField=1,
        MessageID=message_id,
        Priority=0,
        CommandDataSetType=0x0000,
        AffectedSOPInstanceUID=sop_instance,
    )


def echo_command(message_id: int = 1) -> bytes:
    return dimse_command(
        AffectedSOPClassUID=VERIFICATION,
        CommandField=0x30,
        MessageID=message_id,
        CommandDataSetType=0x0101,
    )
