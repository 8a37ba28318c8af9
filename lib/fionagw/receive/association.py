"""One association of the receiver: negotiation, then the data phase, in its own thread.

* Establishment (:mod:`fionagw.receive.wire`): the whole A-ASSOCIATE-RQ must arrive within
  ``receiver.handshake_timeout`` seconds of the accept; the calling AE title is checked
  (:class:`~fionagw.receive.access.AccessPolicy`) and an association slot claimed before a
  presentation context is parsed. Every storage SOP Class, private ones included, is accepted
  in the first transfer syntax the sender proposes that pydicom knows, so the bytes are kept
  exactly as received (file meta + the data set in the negotiated transfer syntax, no
  transcoding; FIONA's storescp converted to explicit little endian). Any called AE title is
  accepted, like FIONA's storescp. Until the association is established, what goes wrong is
  logged through the server's throttle (one line per kind and interval, not per connection).
* One line per association when it ends ("association closed": contexts accepted and
  rejected, objects stored and failed, bytes, seconds); no line per context or per image
  above DEBUG but the failures, and no value from the data (no UID) in any of them.
* The data phase is a plain blocking loop over the socket: P-DATA-TF fragments of a C-STORE
  data set go into a :class:`~fionagw.receive.sink.Sink` (its temp file taken from the
  committer's pool, made ahead of time); on the last fragment the object is checked, made
  durable (sealed with one flush, :mod:`fionagw.receive.durable`) and renamed into the
  archive BEFORE the Success status goes out; the committer thread then flushes the study
  folder, batched with the renames of the other associations, and writes the FIFO line
  (:mod:`fionagw.receive.notify`). Write errors
  answer failure statuses (0xA700 for a full disk), a broken protocol an A-ABORT; a silent
  peer is aborted after ``receiver.network_timeout`` seconds.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import ssl
import struct
import threading
import time
from typing import Any, Protocol

from fionagw.config import SiteConfig
from fionagw.paths import SitePaths
from fionagw.receive import durable, store, wire
from fionagw.receive import sink as sinks
from fionagw.receive.access import AccessPolicy, peer_ip
from fionagw.receive.notify import Notifier
from fionagw.receive.throttle import LogThrottle

LOGGER = logging.getLogger(__name__)
MAX_REQUEST_PDU = 256 * 1024  # a larger A-ASSOCIATE-RQ is not a real one (~15 KB is usual)
MAX_COMMAND_SET = 1 << 16
READ_BUFFER = 256 * 1024
READ_CHUNK = 1 << 20  # data set fragments are read in pieces of at most this size
_PDV = struct.Struct(">IBB")


class PeerGone(Exception):
    """The connection ended (EOF, reset, shut down)."""


class Server(Protocol):
    """What an association needs of the server that accepted its connection."""

    cfg: SiteConfig
    paths: SitePaths
    committer: durable.Committer
    notifier: Notifier
    access: AccessPolicy
    ssl_context: ssl.SSLContext | None
    throttle: LogThrottle

    def claim_association(self, assoc: Association) -> bool: ...

    def forget(self, assoc: Association) -> None: ...


def _shutdown_socket(sock: socket.socket) -> None:
    """Wake a thread blocked reading ``sock`` (plain or TLS) without touching its TLS state."""
    try:
        fd = sock.fileno()
        if fd < 0:
            return
        with socket.socket(fileno=os.dup(fd)) as dup:
            dup.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class Association:
    """One connection: association negotiation, then the data phase, in its own thread."""

    def __init__(self, server: Server, sock: socket.socket, address: tuple) -> None:
        self.server = server
        self.sock = sock
        self.ip, self.port = peer_ip(str(address[0])), int(address[1])
        self.calling = self.called = ""
        self.started = time.monotonic()
        self.stored = self.failed = self.bytes = 0
        self.lock = threading.RLock()  # held while a store commits and for every send
        self.closing = False
        self.established = False
        self.contexts: dict[int, tuple[str, str]] = {}
        self.rejected_contexts = 0
        self.idle_since: float | None = None  # waiting for the next PDU since (data phase)
        self.peer_max_pdu = 0
        self.sink: sinks.Sink | None = None
        self.buffer: memoryview | None = None  # reused by every data set (FLUSH_BYTES)
        self.rfile: Any = None
        self.thread: threading.Thread | None = None

    # --- helpers -------------------------------------------------------------------------

    def log_fields(self) -> dict[str, Any]:
        return {"calling_aet": self.calling, "called_aet": self.called, "peer": self.ip}

    def _read_by(self, n: int, deadline: float) -> bytes:
        """``n`` bytes straight from the socket, all of them before ``deadline``."""
        buf = bytearray(n)
        view, got = memoryview(buf), 0
        while got < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            self.sock.settimeout(left)
            k = self.sock.recv_into(view[got:])
            if not k:
                raise PeerGone
            got += k
        return bytes(buf)

    def _read(self, n: int) -> bytes:
        data = self.rfile.read(n)
        if len(data) != n:
            raise PeerGone
        return data

    def _send(self, data: bytes) -> None:
        with self.lock:
            if self.closing:
                raise PeerGone
            self.sock.sendall(data)

    def _abort(self, reason: int) -> None:
        try:
            self._send(wire.abort_pdu(reason))
        except (OSError, PeerGone):
            pass

    # --- life cycle ------------------------------------------------------------------------

    def run(self) -> None:
        try:
            self._run()
        except PeerGone:
            if self.closing and self.established:
                LOGGER.debug("association ended by shutdown", extra=self.log_fields())
        except TimeoutError:
            if self.established:
                LOGGER.warning("network timeout, association aborted", extra=self.log_fields())
            else:
                self.server.throttle.warning(
                    "handshake timeout: no complete A-ASSOCIATE-RQ within"
                    " receiver.handshake_timeout, connection closed",
                    {"peer": self.ip},
                )
            self._abort(wire.ABORT_NOT_SPECIFIED)
        except wire.ProtocolError as exc:
            if self.established:
                LOGGER.warning(
                    "protocol error, association aborted: %s", exc, extra=self.log_fields()
                )
            else:
                self.server.throttle.warning(
                    "protocol error before the association, aborted",
                    {**self.log_fields(), "error": str(exc)},
                )
            self._abort(exc.reason)
        except ssl.SSLError as exc:
            self.server.throttle.warning(
                "TLS error", {**self.log_fields(), "error": str(exc.reason or exc)}
            )
        except OSError as exc:
            if not self.closing and self.established:
                LOGGER.info("connection error: %s", exc.strerror or exc, extra=self.log_fields())
        except Exception:  # a bug: drop this association, keep serving
            LOGGER.exception("association failed unexpectedly", extra=self.log_fields())
            self._abort(wire.ABORT_NOT_SPECIFIED)
        finally:
            self._close()

    def _close(self) -> None:
        if self.sink is not None:
            self.sink.discard()  # a dataset cut off by an abort or a dropped connection
            self.sink = None
        for closable in (self.rfile, self.sock):  # the socket stays open while its file is
            try:
                if closable is not None:
                    closable.close()
            except OSError:
                pass
        self.server.forget(self)
        if self.established:
            level = logging.INFO if self.stored or self.failed else logging.DEBUG
            LOGGER.log(
                level,
                "association closed",
                extra={
                    **self.log_fields(),
                    "contexts_accepted": len(self.contexts),
                    "contexts_rejected": self.rejected_contexts,
                    "stored": self.stored,
                    "failed": self.failed,
                    "bytes": self.bytes,
                    "seconds": round(time.monotonic() - self.started, 3),
                },
            )

    def shutdown(self) -> None:
        """From the server's thread: abort between stores (waits for one being written)."""
        with self.lock:
            if self.closing:
                return
            if not isinstance(self.sock, ssl.SSLSocket):  # TLS objects are one-thread only
                try:
                    self.sock.sendall(wire.abort_pdu(wire.ABORT_NOT_SPECIFIED))
                except OSError:
                    pass
            self.closing = True
            _shutdown_socket(self.sock)

    def _run(self) -> None:
        cfg = self.server.cfg
        sock = self.sock
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        deadline = self.started + cfg.receiver.handshake_timeout
        if self.server.ssl_context is not None:
            sock.settimeout(max(deadline - time.monotonic(), 0.001))
            self.sock = sock = self.server.ssl_context.wrap_socket(sock, server_side=True)
        if not self._establish(deadline):
            return
        self.rfile = sock.makefile("rb", buffering=READ_BUFFER)
        timeout = cfg.receiver.network_timeout
        sock.settimeout(timeout if timeout and timeout > 0 else None)
        self._data_phase()

    # --- association establishment -----------------------------------------------------------

    def _establish(self, deadline: float) -> bool:
        header = self._read_by(6, deadline)
        pdu_type, length = wire.parse_header(header)
        if pdu_type != wire.A_ASSOCIATE_RQ_TYPE:
            raise wire.ProtocolError(
                wire.ABORT_UNEXPECTED_PDU, f"PDU type 0x{pdu_type:02X} before A-ASSOCIATE-RQ"
            )
        if length > MAX_REQUEST_PDU:
            raise wire.ProtocolError(wire.ABORT_INVALID_PARAMETER, "A-ASSOCIATE-RQ too large")
        data = header + self._read_by(length, deadline)
        request = wire.decode_request_head(data)
        self.calling, self.called = request.calling, request.called

        server = self.server
        reason, rejection = "", wire.REJECT_NO_REASON
        if not request.protocol_version & 1:
            reason, rejection = "protocol version not supported", wire.REJECT_PROTOCOL_VERSION
        elif not server.access.aet_allowed(self.calling):
            reason = "calling AE title not in receiver.allowed_calling_aetitles"
            rejection = wire.REJECT_CALLING_AE
        elif not server.claim_association(self):
            reason, rejection = "too many associations", wire.REJECT_LOCAL_LIMIT
        else:
            try:
                wire.decode_request_items(request, data)
            except wire.RequestRefused as exc:
                reason = str(exc)
            else:
                if request.application_context != wire.APPLICATION_CONTEXT_NAME:
                    reason = "application context not supported"
                    rejection = wire.REJECT_APPLICATION_CONTEXT
        if reason:
            server.throttle.warning(f"association rejected: {reason}", self.log_fields())
            self._send(wire.reject_pdu(*rejection))
            return False
        self.peer_max_pdu = request.peer_max_pdu
        self.contexts = wire.negotiate(request)
        self.rejected_contexts = len(request.contexts) - len(self.contexts)
        self._send(wire.accept_pdu(request, server.cfg.receiver.max_pdu))
        self.established = True
        return True

    # --- data phase ------------------------------------------------------------------------------

    def _data_phase(self) -> None:
        read = self._read
        readinto = self.rfile.readinto
        command_parts: list[bytes] = []
        command_size = 0
        pending: tuple[int, dict[int, bytes]] | None = None  # a request waiting for its data set
        while True:
            self.idle_since = time.monotonic()  # until a PDU starts: see StoreSCP.claim_association
            pdu_type, length = wire.parse_header(read(6))
            self.idle_since = None
            if pdu_type == wire.P_DATA_TF_TYPE:
                remaining = length
                while remaining:
                    if remaining < 6:
                        raise wire.ProtocolError(
                            wire.ABORT_INVALID_PARAMETER, "malformed P-DATA-TF"
                        )
                    item_length, context_id, control = _PDV.unpack(read(6))
                    if item_length < 2 or item_length + 4 > remaining:
                        raise wire.ProtocolError(wire.ABORT_INVALID_PARAMETER, "malformed PDV item")
                    remaining -= item_length + 4
                    size = item_length - 2
                    if context_id not in self.contexts:
                        raise wire.ProtocolError(
                            wire.ABORT_UNEXPECTED_PARAMETER,
                            f"presentation context {context_id} not accepted",
                        )
                    if control & 0x01:  # command fragment
                        if pending is not None:
                            raise wire.ProtocolError(
                                wire.ABORT_UNEXPECTED_PARAMETER,
                                "command while a data set was expected",
                            )
                        command_size += size
                        if command_size > MAX_COMMAND_SET:
                            raise wire.ProtocolError(
                                wire.ABORT_INVALID_PARAMETER, "command set too large"
                            )
                        command_parts.append(read(size))
                        if control & 0x02:
                            command = wire.decode_command(b"".join(command_parts))
                            command_parts, command_size = [], 0
                            if self._on_command(context_id, command):
                                pending = (context_id, command)
                    else:  # data set fragment
                        if pending is None or pending[0] != context_id:
                            raise wire.ProtocolError(
                                wire.ABORT_UNEXPECTED_PARAMETER, "data set without its command"
                            )
                        if self.sink is not None:
                            if not self.sink.read_from(readinto, size):
                                raise PeerGone
                        else:  # the data set of an echo or a cancel: dropped
                            while size:
                                size -= len(read(min(size, READ_CHUNK)))
                        if control & 0x02:
                            self._on_data_set(*pending)
                            pending = None
            elif pdu_type == wire.A_RELEASE_RQ_TYPE:
                read(min(length, 4))
                self._send(wire.RELEASE_RP)
                return
            elif pdu_type == wire.A_ABORT_TYPE:
                LOGGER.info("association aborted by the peer", extra=self.log_fields())
                return
            elif pdu_type in (
                wire.A_ASSOCIATE_RQ_TYPE,
                wire.A_ASSOCIATE_AC_TYPE,
                wire.A_ASSOCIATE_RJ_TYPE,
                wire.A_RELEASE_RP_TYPE,
            ):
                raise wire.ProtocolError(
                    wire.ABORT_UNEXPECTED_PDU, f"unexpected PDU type 0x{pdu_type:02X}"
                )
            else:
                raise wire.ProtocolError(
                    wire.ABORT_UNRECOGNIZED_PDU, f"unknown PDU type 0x{pdu_type:02X}"
                )

    def _on_command(self, context_id: int, command: dict[int, bytes]) -> bool:
        """Handle a complete command set; True when a data set follows."""
        field = wire.command_us(command, wire.COMMAND_FIELD)
        if field is None:
            raise wire.ProtocolError(
                wire.ABORT_INVALID_PARAMETER, "command set without a command field"
            )
        has_data = wire.command_us(command, wire.DATA_SET_TYPE) != wire.NO_DATA_SET
        if field == wire.C_STORE_RQ:
            if not has_data:
                self._respond_store(
                    context_id, command, store.CANNOT_DECODE, "C-STORE request without a data set"
                )
                return False
            transfer_syntax = self.contexts[context_id][1]
            sop_class = wire.command_ui(command, wire.AFFECTED_SOP_CLASS)
            sop_uid = wire.command_ui(command, wire.AFFECTED_SOP_INSTANCE)
            try:
                meta = wire.file_meta(sop_class, sop_uid, transfer_syntax)
            except ValueError:
                meta = b""
            if self.buffer is None:
                self.buffer = sinks.new_buffer()
            committer = self.server.committer
            path, fd, entry_durable = committer.take_temp()
            self.sink = sinks.Sink(
                self.buffer,
                meta,
                (path, fd),
                checksum=committer.sealing,
                entry_durable=entry_durable,
            )
            if not meta:  # answered 0xC230 once the data set is read
                self.sink.error = OSError(errno.EINVAL, "UID too long")
            return True
        if field == wire.C_ECHO_RQ:
            self._send(
                wire.p_data(
                    context_id,
                    wire.encode_response(
                        wire.C_ECHO_RSP,
                        wire.command_ui(command, wire.AFFECTED_SOP_CLASS),
                        wire.command_us(command, wire.MESSAGE_ID) or 0,
                        0x0000,
                    ),
                    self.peer_max_pdu,
                )
            )
            return has_data  # a data set on an echo is read and dropped
        if field == wire.C_CANCEL_RQ or field & 0x8000:
            if field & 0x8000:
                LOGGER.warning(
                    "unexpected DIMSE response 0x%04X ignored", field, extra=self.log_fields()
                )
            return has_data
        # Any other service (C-FIND, C-MOVE, N-...): not provided here.
        LOGGER.warning(
            "DIMSE request 0x%04X refused: service not provided", field, extra=self.log_fields()
        )
        sop_class = wire.command_ui(command, wire.AFFECTED_SOP_CLASS) or wire.command_ui(
            command, wire.REQUESTED_SOP_CLASS
        )
        self._send(
            wire.p_data(
                context_id,
                wire.encode_response(
                    field | 0x8000,
                    sop_class,
                    wire.command_us(command, wire.MESSAGE_ID) or 0,
                    wire.UNRECOGNIZED_OPERATION,
                ),
                self.peer_max_pdu,
            )
        )
        return has_data

    def _respond_store(
        self, context_id: int, command: dict[int, bytes], status: int, comment: str | None = None
    ) -> None:
        rsp = wire.encode_response(
            wire.C_STORE_RSP,
            wire.command_ui(command, wire.AFFECTED_SOP_CLASS),
            wire.command_us(command, wire.MESSAGE_ID) or 0,
            status,
            wire.command_ui(command, wire.AFFECTED_SOP_INSTANCE),
            comment,
        )
        self._send(wire.p_data(context_id, rsp, self.peer_max_pdu))

    def _on_data_set(self, context_id: int, command: dict[int, bytes]) -> None:
        sink, self.sink = self.sink, None
        if sink is None:  # not a C-STORE: the data set was dropped
            return
        sop_class = wire.command_ui(command, wire.AFFECTED_SOP_CLASS)
        sop_uid = wire.command_ui(command, wire.AFFECTED_SOP_INSTANCE)
        stored = sealed = None
        with self.lock:  # shutdown waits for a store being committed
            try:
                if self.closing:
                    raise store.StoreError(store.OUT_OF_RESOURCES, "receiver shutting down")
                stored, sealed = sinks.commit(
                    sink,
                    self.server.paths,
                    sop_class,
                    sop_uid,
                    committer=self.server.committer,
                    peer=(self.calling, self.called, self.ip),
                    check_replaced=LOGGER.isEnabledFor(logging.DEBUG),
                )
            except store.StoreError as exc:
                self.failed += 1
                LOGGER.warning(
                    "store failed: %s",
                    exc.reason,
                    extra={**self.log_fields(), "status": f"0x{exc.status:04X}"},
                )
                status, comment = exc.status, exc.reason
            except Exception as exc:  # a bug: answer failure, keep serving
                self.failed += 1
                LOGGER.exception("store failed unexpectedly", extra=self.log_fields())
                status, comment = store.WRITE_FAILED, f"internal error: {type(exc).__name__}"
            else:
                self.stored += 1
                self.bytes += stored.size
                status, comment = store.SUCCESS, None
            finally:
                if stored is None:
                    sink.discard()
                else:
                    sink.close()
            self._respond_store(context_id, command, status, comment)
        # While the sender prepares its next request: the committer flushes the folder of a
        # sealed object and announces it; a synchronously committed one is announced here.
        if sealed is not None:
            self.server.committer.submit(sealed)
        elif stored is not None:
            self.server.notifier.arrived(
                self.calling, self.called, self.ip, stored.study_uid, stored.study_dir, stored.name
            )
        if stored is not None and LOGGER.isEnabledFor(logging.DEBUG):
            LOGGER.debug(
                "stored",
                extra={**self.log_fields(), "replaced": stored.replaced, "bytes": stored.size},
            )
