"""The C-STORE / C-ECHO SCP of a site (what storectl runs).

* A threaded TCP server of its own: one thread per association, TCP_NODELAY on every
  connection, optional TLS (client certificates required when ``tls_ca`` is set),
  optional calling-AE and IP/network allow-lists (rejected associations are logged).
* Association establishment with pynetdicom's pieces (:mod:`fionagw.receive.wire`):
  every storage SOP Class, private ones included, is accepted in the transfer syntax the
  sender proposes first, so the bytes are kept exactly as received: file meta + the
  dataset in the negotiated transfer syntax, no transcoding (FIONA's storescp converted
  to explicit little endian; we do not). Any called AE title is accepted, like FIONA's
  storescp.
* The data phase is a plain blocking loop over the socket: P-DATA-TF fragments of a
  C-STORE data set go into a buffer (flushed to ``site/temp`` every MiB, so memory stays
  flat for multi-GB objects); on the last fragment the object is committed durably into
  ``site/archive/scp_<Study>/<MOD>.<SOP>`` (:mod:`fionagw.receive.store`) BEFORE the
  Success status goes out; then, while the sender prepares its next request, the study
  job is touched, the FIFO line written (:mod:`fionagw.receive.notify`) and the next
  temp file created, keeping all three off the per-image critical path. Write errors answer failure statuses (0xA700 for a
  full disk), a broken protocol an A-ABORT; a silent peer is aborted after
  ``receiver.network_timeout`` seconds.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import os
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

from fionagw.config import ConfigError, SiteConfig
from fionagw.receive import store, wire
from fionagw.receive.notify import Notifier

LOG = logging.getLogger("fionagw.receive.scp")
SHUTDOWN_GRACE_S = 3.0  # let associations end on their own before aborting them
ACSE_TIMEOUT_S = 30.0  # for the A-ASSOCIATE-RQ after the connection is made
MAX_ASSOCIATIONS = 32
MAX_CONNECTIONS = 4 * MAX_ASSOCIATIONS  # open sockets, associated or not (one thread each)
MAX_REQUEST_PDU = 1 << 20  # a larger A-ASSOCIATE-RQ is not a real one
MAX_COMMAND_SET = 1 << 16
FLUSH_BYTES = 1 << 20  # a data set up to this size is kept in memory until complete
READ_BUFFER = 256 * 1024
READ_CHUNK = 1 << 20  # data set fragments are read in pieces of at most this size
_PDV = struct.Struct(">IBB")


class _PeerGone(Exception):
    """The connection ended (EOF, reset, shut down)."""


def _tls_context(cfg: SiteConfig) -> ssl.SSLContext | None:
    rec = cfg.receiver
    if not rec.tls_cert:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(str(rec.tls_cert), str(rec.tls_key))
        if rec.tls_ca:
            ctx.load_verify_locations(cafile=str(rec.tls_ca))
            ctx.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            cfg.config_file, "receiver.tls_cert", f"cannot load TLS files: {exc}"
        ) from None
    return ctx


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


class _Sink:
    """One C-STORE data set on its way to a temp file in ``site/temp``.

    Fragments are read from the connection straight into the association's buffer
    (:data:`FLUSH_BYTES`) and written to the file whenever it is full: an ordinary image is
    written with one system call when it is complete, a huge object never sits in memory.
    The start of the file is kept for the identifier scan. A write error (disk full, quota,
    the folder gone) is remembered, the rest of the data set is read and dropped, and the
    SCP answers a failure status once the request is complete.
    """

    __slots__ = ("path", "fd", "view", "filled", "size", "head", "error")

    def __init__(self, buffer: memoryview, meta: bytes, temp: tuple[str, int]) -> None:
        self.path, self.fd = temp  # fd -1: the file is created at the first write
        self.view = buffer
        self.filled = len(meta)
        buffer[: self.filled] = meta
        self.size = 0  # bytes in the file so far
        self.head: bytes | None = None
        self.error: OSError | None = None

    def read_from(self, readinto: Callable[[memoryview], int | None], size: int) -> None:
        """Read ``size`` bytes of a fragment from the connection into the file."""
        view, capacity = self.view, len(self.view)
        while size:
            start = self.filled
            n = min(size, capacity - start)
            if readinto(view[start : start + n]) != n:
                raise _PeerGone
            size -= n
            self.filled = start + n
            if self.filled == capacity:
                self._flush()

    def _flush(self) -> None:
        if self.error is not None:
            self.filled = 0  # the rest of a failed data set is dropped
            return
        if self.head is None:
            self.head = bytes(self.view[: min(self.filled, store.HEAD_BYTES)])
        try:
            if self.fd < 0:
                self.fd = os.open(
                    self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600
                )
            view = self.view[: self.filled]
            while view:
                view = view[os.write(self.fd, view) :]
        except OSError as exc:
            self.fail(exc)
        self.size += self.filled
        self.filled = 0

    def finish(self) -> bytes | None:
        """Write what is left; the start of the file (None after a write error)."""
        self._flush()
        return self.head

    def fail(self, exc: OSError) -> None:
        if self.error is None:
            self.error = exc
        self.discard()

    def close(self) -> None:
        if self.fd >= 0:
            try:
                os.close(self.fd)
            except OSError as exc:
                if self.error is None:
                    self.error = exc
            self.fd = -1

    def discard(self) -> None:
        """Drop the data; close and remove the temp file (frees the space at once)."""
        self.close()
        self.filled = 0
        _remove(self.path)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


class _Association:
    """One connection: association negotiation, then the data phase, in its own thread."""

    def __init__(self, scp: StoreSCP, sock: socket.socket, address: tuple) -> None:
        self.scp = scp
        self.sock = sock
        self.ip, self.port = str(address[0]), int(address[1])
        if self.ip.startswith("::ffff:") and "." in self.ip:
            self.ip = self.ip[7:]
        self.calling = self.called = ""
        self.started = time.monotonic()
        self.stored = self.failed = self.bytes = 0
        self.lock = threading.RLock()  # held while a store commits and for every send
        self.closing = False
        self.established = False
        self.contexts: dict[int, tuple[str, str]] = {}
        self.peer_max_pdu = 0
        self.sink: _Sink | None = None
        self.buffer: memoryview | None = None  # reused by every data set (FLUSH_BYTES)
        self.spare: tuple[str, int] | None = None  # the next data set's temp file, made early
        self.rfile: Any = None
        self.thread: threading.Thread | None = None

    # --- helpers -------------------------------------------------------------------------

    def log_fields(self) -> dict[str, Any]:
        return {"calling_aet": self.calling, "called_aet": self.called, "peer": self.ip}

    def _read(self, n: int) -> bytes:
        data = self.rfile.read(n)
        if len(data) != n:
            raise _PeerGone
        return data

    def _send(self, data: bytes) -> None:
        with self.lock:
            if self.closing:
                raise _PeerGone
            self.sock.sendall(data)

    def _abort(self, reason: int) -> None:
        try:
            self._send(wire.abort_pdu(reason))
        except (OSError, _PeerGone):
            pass

    # --- life cycle ------------------------------------------------------------------------

    def run(self) -> None:
        try:
            self._run()
        except _PeerGone:
            if self.closing:
                LOG.debug("association ended by shutdown", extra=self.log_fields())
        except TimeoutError:
            LOG.warning("network timeout, association aborted", extra=self.log_fields())
            self._abort(wire.ABORT_NOT_SPECIFIED)
        except wire.ProtocolError as exc:
            LOG.warning("protocol error, association aborted: %s", exc, extra=self.log_fields())
            self._abort(exc.reason)
        except ssl.SSLError as exc:
            LOG.warning("TLS error: %s", exc.reason or exc, extra=self.log_fields())
        except OSError as exc:
            if not self.closing:
                LOG.info("connection error: %s", exc.strerror or exc, extra=self.log_fields())
        except Exception:  # a bug: drop this association, keep serving
            LOG.exception("association failed unexpectedly", extra=self.log_fields())
            self._abort(wire.ABORT_NOT_SPECIFIED)
        finally:
            self._close()

    def _close(self) -> None:
        if self.sink is not None:
            self.sink.discard()  # a dataset cut off by an abort or a dropped connection
            self.sink = None
        if self.spare is not None:
            os.close(self.spare[1])
            _remove(self.spare[0])
            self.spare = None
        for closable in (self.rfile, self.sock):  # the socket stays open while its file is
            try:
                if closable is not None:
                    closable.close()
            except OSError:
                pass
        self.scp._forget(self)
        if self.established:
            level = logging.INFO if self.stored or self.failed else logging.DEBUG
            LOG.log(
                level,
                "association closed",
                extra={
                    **self.log_fields(),
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
        cfg = self.scp.cfg
        sock = self.sock
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        sock.settimeout(ACSE_TIMEOUT_S)
        if self.scp.ssl_context is not None:
            self.sock = sock = self.scp.ssl_context.wrap_socket(sock, server_side=True)
        self.rfile = sock.makefile("rb", buffering=READ_BUFFER)
        if not self._establish():
            return
        timeout = cfg.receiver.network_timeout
        sock.settimeout(timeout if timeout and timeout > 0 else None)
        self._data_phase()

    # --- association establishment -----------------------------------------------------------

    def _establish(self) -> bool:
        header = self._read(6)
        pdu_type, length = wire.parse_header(header)
        if pdu_type != wire.A_ASSOCIATE_RQ_TYPE:
            raise wire.ProtocolError(
                wire.ABORT_UNEXPECTED_PDU, f"PDU type 0x{pdu_type:02X} before A-ASSOCIATE-RQ"
            )
        if length > MAX_REQUEST_PDU:
            raise wire.ProtocolError(wire.ABORT_INVALID_PARAMETER, "A-ASSOCIATE-RQ too large")
        request = wire.decode_associate_rq(header + self._read(length))
        self.calling, self.called = request.calling, request.called
        self.peer_max_pdu = request.peer_max_pdu

        scp = self.scp
        reason, rejection = "", wire.REJECT_NO_REASON
        if not request.protocol_version & 1:
            reason, rejection = "protocol version not supported", wire.REJECT_PROTOCOL_VERSION
        elif request.application_context != wire.APPLICATION_CONTEXT_NAME:
            reason, rejection = "application context not supported", wire.REJECT_APPLICATION_CONTEXT
        elif scp.allowed_nets and not scp.ip_allowed(self.ip):
            reason = "peer address not in receiver.allowed_ips"
        elif scp.allowed_aets and self.calling not in scp.allowed_aets:
            reason = "calling AE title not in receiver.allowed_calling_aetitles"
            rejection = wire.REJECT_CALLING_AE
        elif scp.active_count() > MAX_ASSOCIATIONS:
            reason, rejection = "too many associations", wire.REJECT_LOCAL_LIMIT
        if reason:
            LOG.warning("association rejected: %s", reason, extra=self.log_fields())
            self._send(wire.reject_pdu(*rejection))
            return False
        ac, self.contexts = wire.accept(request, scp.cfg.receiver.max_pdu)
        self._send(ac)
        self.established = True
        LOG.debug(
            "association accepted", extra={**self.log_fields(), "contexts": len(self.contexts)}
        )
        return True

    # --- data phase ------------------------------------------------------------------------------

    def _data_phase(self) -> None:
        read = self._read
        readinto = self.rfile.readinto
        command_parts: list[bytes] = []
        command_size = 0
        pending: tuple[int, dict[int, bytes]] | None = None  # a request waiting for its data set
        while True:
            pdu_type, length = wire.parse_header(read(6))
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
                            self.sink.read_from(readinto, size)
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
                LOG.info("association aborted by the peer", extra=self.log_fields())
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
                self.buffer = memoryview(bytearray(FLUSH_BYTES))
            temp, self.spare = self.spare or (self._temp_path(), -1), None
            self.sink = _Sink(self.buffer, meta, temp)
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
                LOG.warning(
                    "unexpected DIMSE response 0x%04X ignored", field, extra=self.log_fields()
                )
            return has_data
        # Any other service (C-FIND, C-MOVE, N-...): not provided here.
        LOG.warning(
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
        stored = None
        with self.lock:  # shutdown waits for a store being committed
            try:
                if self.closing:
                    raise store.StoreError(store.OUT_OF_RESOURCES, "receiver shutting down")
                head = sink.finish()
                if sink.error is not None:
                    raise store.StoreError(
                        store.status_for_oserror(sink.error),
                        f"cannot write received data: {sink.error.strerror}",
                    )
                stored = store.store_received(
                    self.scp.paths,
                    sink.path,
                    sop_class,
                    sop_uid,
                    durable=self.scp.durable,
                    head=head,
                    fd=sink.fd,
                    size=sink.size,
                    check_replaced=LOG.isEnabledFor(logging.DEBUG),
                )
            except store.StoreError as exc:
                self.failed += 1
                LOG.warning(
                    "store failed: %s",
                    exc.reason,
                    extra={
                        **self.log_fields(),
                        "sop_class_uid": sop_class,
                        "sop_instance_uid": sop_uid,
                        "status": f"0x{exc.status:04X}",
                    },
                )
                status, comment = exc.status, exc.reason
            except Exception as exc:  # a bug: answer failure, keep serving
                self.failed += 1
                LOG.exception(
                    "store failed unexpectedly",
                    extra={**self.log_fields(), "sop_instance_uid": sop_uid},
                )
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
        # While the sender prepares its next request: announce this object, make the next
        # temp file (creating a file is not free on a busy filesystem).
        if stored is not None:
            self.scp.notifier.arrived(
                self.calling, self.called, self.ip, stored.study_uid, stored.study_dir, stored.name
            )
            if LOG.isEnabledFor(logging.DEBUG):
                LOG.debug(
                    "stored",
                    extra={
                        **self.log_fields(),
                        "path": str(stored.path),
                        "replaced": stored.replaced,
                        "bytes": stored.size,
                    },
                )
        self._make_spare()

    def _temp_path(self) -> str:
        return os.path.join(self.scp.tempdir, store.temp_name())

    def _make_spare(self) -> None:
        if self.spare is None:
            path = self._temp_path()
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            except OSError:
                return  # tried again at the first write, where a failure is answered
            self.spare = (path, fd)


class StoreSCP:
    """One site's receiver; :func:`serve_scp` is the component entry point."""

    def __init__(self, cfg: SiteConfig, *, durable: bool = True) -> None:
        self.cfg = cfg
        self.paths = cfg.paths
        self.tempdir = str(cfg.paths.temp)
        self.durable = durable
        self.notifier = Notifier(cfg.paths)
        self.allowed_aets = {a.strip() for a in cfg.receiver.allowed_calling_aetitles}
        self.allowed_nets = [
            ipaddress.ip_network(n, strict=False) for n in cfg.receiver.allowed_ips
        ]
        self.ssl_context: ssl.SSLContext | None = None
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._stopping = threading.Event()
        self._active: set[_Association] = set()
        self._active_lock = threading.Lock()

    # --- life cycle -------------------------------------------------------------------

    def start(self) -> None:
        self.paths.archive.mkdir(parents=True, exist_ok=True)
        self.paths.temp.mkdir(parents=True, exist_ok=True)
        store.remove_temps(self.paths.temp)
        self.ssl_context = _tls_context(self.cfg)
        ip, port = self.cfg.dicom_ip, self.cfg.dicom_port
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        try:
            listener = socket.socket(family, socket.SOCK_STREAM)
            try:
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                listener.bind((ip, port))
                listener.listen(64)
            except OSError:
                listener.close()
                raise
        except OSError as exc:
            raise ConfigError(
                self.cfg.config_file,
                "DICOMPORT",
                f"{ip}:{port} is not available: {exc.strerror or exc}",
            ) from None
        listener.settimeout(0.5)  # the accept loop looks at the stop flag this often
        self._listener = listener
        self.notifier.start()
        self._acceptor = threading.Thread(target=self._accept_loop, name="scp-accept", daemon=True)
        self._acceptor.start()
        LOG.info(
            "SCP listening",
            extra={
                "aetitle": self.cfg.aetitle,
                "ip": ip,
                "port": port,
                "tls": bool(self.cfg.receiver.tls_cert),
                "archive": str(self.paths.archive),
                "durable": self.durable,
            },
        )

    def _accept_loop(self) -> None:
        listener = self._listener
        assert listener is not None
        while not self._stopping.is_set():
            try:
                conn, address = listener.accept()
            except TimeoutError:
                continue
            except OSError as exc:
                if self._stopping.is_set():
                    break
                LOG.warning("accept failed: %s", exc.strerror or exc)  # EMFILE and the like
                time.sleep(0.1)
                continue
            if self.active_count() >= MAX_CONNECTIONS:  # idle connections must not pile up
                LOG.warning(
                    "connection refused: %d connections open",
                    MAX_CONNECTIONS,
                    extra={"peer": str(address[0])},
                )
                conn.close()
                continue
            assoc = _Association(self, conn, address)
            with self._active_lock:
                self._active.add(assoc)
            thread = threading.Thread(
                target=assoc.run, name=f"scp-{address[0]}:{address[1]}", daemon=True
            )
            assoc.thread = thread
            thread.start()

    def active_count(self) -> int:
        with self._active_lock:
            return len(self._active)

    def _forget(self, assoc: _Association) -> None:
        with self._active_lock:
            self._active.discard(assoc)

    def ip_allowed(self, ip: str) -> bool:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        if addr.version == 6 and addr.ipv4_mapped:
            addr = addr.ipv4_mapped
        return any(addr in net for net in self.allowed_nets)

    def shutdown(self, grace: float | None = None) -> None:
        """Stop accepting; let running associations end (``grace`` seconds, default
        :data:`SHUTDOWN_GRACE_S`), then abort them between stores."""
        if self._listener is None:
            return
        if grace is None:
            grace = SHUTDOWN_GRACE_S
        self._stopping.set()
        listener, self._listener = self._listener, None
        if self._acceptor is not None:
            self._acceptor.join(5)
        listener.close()
        deadline = time.monotonic() + grace
        while self.active_count() and time.monotonic() < deadline:
            time.sleep(0.05)
        with self._active_lock:
            remaining = list(self._active)
        for assoc in remaining:
            if assoc.established:
                LOG.warning("aborting association at shutdown", extra=assoc.log_fields())
            assoc.shutdown()
        for assoc in remaining:
            if assoc.thread is not None:
                assoc.thread.join(2.0)
        store.remove_temps(self.paths.temp)  # datasets cut off by the aborts
        self.notifier.close()
        LOG.info("SCP stopped", extra={"port": self.cfg.dicom_port})


def serve_scp(
    cfg: SiteConfig, stop: threading.Event, ready: Callable[[], None], *, durable: bool = True
) -> None:
    """Run the site's SCP until ``stop`` is set; call ``ready()`` once listening."""
    scp = StoreSCP(cfg, durable=durable)
    scp.start()
    try:
        ready()
        stop.wait()
    finally:
        scp.shutdown()


__all__ = ["StoreSCP", "serve_scp"]
