"""The C-STORE / C-ECHO SCP of a site (what storectl runs), built on pynetdicom.

* Accepts every storage SOP Class, private ones included, in the transfer syntax the
  sender proposes first (pynetdicom's unrestricted storage service), and keeps the bytes
  exactly as received: file meta + the dataset in the negotiated transfer syntax, no
  transcoding (FIONA's storescp converted to explicit little endian; we do not).
* Streams each dataset into ``site/temp`` while it arrives (pynetdicom's chunked receive:
  memory stays flat for multi-GB objects), then commits it durably into
  ``site/archive/scp_<Study>/<MOD>.<SOP>`` (:mod:`fionagw.receive.store`) BEFORE the
  Success status goes out; touches the study job and writes the FIFO line
  (:mod:`fionagw.receive.notify`).
* Optional calling-AE and IP/network allow-lists (rejected associations are logged),
  optional TLS (client certificates required when ``tls_ca`` is set), TCP_NODELAY on
  every connection.

pynetdicom's switches for the unrestricted storage service and the chunked receive are
process-wide (``pynetdicom._config``); :func:`serve_scp` turns them on. The temp files of
the chunked receive go to the site's temp folder (same filesystem as the archive, so the
final rename is atomic) through a small hook that only affects our own AE.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import ssl
import struct
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import AE, _config, evt
from pynetdicom import dimse_messages as _dimse_messages
from pynetdicom.dimse_primitives import C_ECHO, C_STORE
from pynetdicom.pdu_primitives import P_DATA
from pynetdicom.sop_class import Verification

from fionagw.config import ConfigError, SiteConfig
from fionagw.receive import store
from fionagw.receive.notify import Notifier

LOG = logging.getLogger("fionagw.receive.scp")
TEMP_PREFIX = ".scp-"
SHUTDOWN_GRACE_S = 3.0  # let associations end on their own before aborting them


@dataclass
class _AssocState:
    calling: str
    called: str
    ip: str
    port: int
    started: float = field(default_factory=time.monotonic)
    stored: int = 0
    failed: int = 0
    bytes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    closing: bool = False


# --- chunked receive into the site's temp folder ------------------------------------

_ORIGINAL_NTF = tempfile.NamedTemporaryFile


class ReceiveFile:
    """The file pynetdicom streams a C-STORE dataset into, in the site's temp folder.

    A write error (disk full, quota, the folder gone) is remembered instead of raised:
    raised, it would abort the association from pynetdicom's DUL thread; remembered,
    the rest of the dataset is discarded and the SCP answers a proper failure status
    (0xA700 for no space) when the request is complete. pynetdicom uses ``write``,
    ``file.flush``, ``name`` and ``close``.
    """

    def __init__(self, tempdir: str) -> None:
        self.error: OSError | None = None
        self.file = self
        self._f: Any = None
        try:
            self._f = _ORIGINAL_NTF(delete=False, mode="wb", suffix=".dcm", prefix=TEMP_PREFIX,
                                    dir=tempdir)
            self.name = self._f.name
        except OSError as exc:
            self.error = exc
            self.name = os.path.join(tempdir, f"{TEMP_PREFIX}failed-{os.getpid()}-{id(self)}")

    def _fail(self, exc: OSError) -> None:
        if self.error is None:
            self.error = exc
        f, self._f = self._f, None
        if f is not None:
            try:
                f.close()
            except OSError:
                pass
            try:
                os.unlink(self.name)  # free the space at once
            except OSError:
                pass

    def write(self, data: bytes) -> int:
        if self._f is not None:
            try:
                self._f.write(data)
            except OSError as exc:
                self._fail(exc)
        return len(data)

    def flush(self) -> None:
        if self._f is not None:
            try:
                self._f.flush()
            except OSError as exc:
                self._fail(exc)

    def close(self) -> None:
        f, self._f = self._f, None
        if f is not None:
            try:
                f.close()
            except OSError as exc:
                if self.error is None:
                    self.error = exc


def _site_named_temporary_file(*args: Any, **kwargs: Any) -> Any:
    """pynetdicom's NamedTemporaryFile, as a :class:`ReceiveFile` for our AE.

    pynetdicom opens the file in its DUL thread, whose ``assoc.ae`` is the AE; an AE
    without ``fionagw_tempdir`` (any other pynetdicom user in the process) keeps the
    default behaviour.
    """
    thread = threading.current_thread()
    ae = getattr(getattr(thread, "assoc", None), "ae", None)
    tempdir = getattr(ae, "fionagw_tempdir", None)
    if tempdir is None:
        return _ORIGINAL_NTF(*args, **kwargs)
    return ReceiveFile(tempdir)


_settings_lock = threading.Lock()
_settings_users = 0
_saved_settings: tuple[bool, bool] = (False, False)


def _install_pynetdicom_settings() -> None:
    """Turn on pynetdicom's process-wide switches while at least one SCP runs."""
    global _settings_users, _saved_settings
    with _settings_lock:
        if _settings_users == 0:
            _saved_settings = (_config.UNRESTRICTED_STORAGE_SERVICE,
                               _config.STORE_RECV_CHUNKED_DATASET)
            _config.UNRESTRICTED_STORAGE_SERVICE = True
            _config.STORE_RECV_CHUNKED_DATASET = True
            _dimse_messages.NamedTemporaryFile = _site_named_temporary_file  # type: ignore[assignment]
        _settings_users += 1


def _restore_pynetdicom_settings() -> None:
    """Give other pynetdicom users in the process their defaults back (tests, `fiona run`)."""
    global _settings_users
    with _settings_lock:
        _settings_users -= 1
        if _settings_users == 0:
            _config.UNRESTRICTED_STORAGE_SERVICE, _config.STORE_RECV_CHUNKED_DATASET = _saved_settings
            _dimse_messages.NamedTemporaryFile = _ORIGINAL_NTF  # type: ignore[assignment]


def _clean_stale_temp(tempdir: Path) -> None:
    """Partial datasets left by a crash (never answered Success, so the sender resends)."""
    try:
        for entry in os.scandir(tempdir):
            if entry.name.startswith(TEMP_PREFIX):
                try:
                    os.unlink(entry.path)
                except OSError:
                    pass
    except OSError:
        pass


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
        raise ConfigError(cfg.config_file, "receiver.tls_cert", f"cannot load TLS files: {exc}") from None
    return ctx


def _failure(status: int, comment: str) -> Dataset:
    rsp = Dataset()
    rsp.Status = status
    rsp.ErrorComment = comment[:64]
    return rsp


# --- fast C-STORE/C-ECHO responses ----------------------------------------------------
# pynetdicom builds every response through pydicom Datasets with value validation
# (~1 ms of CPU per response, a third of its per-image cost). A response command set is
# seven fixed elements in implicit VR little endian (PS3.7 9.3.1.2, 9.3.5.2), so it is
# encoded here directly and handed to the DUL as one P-DATA primitive. Installed per
# association; anything else (and a peer with a tiny maximum PDU) takes pynetdicom's path.

_RSP_FIELDS = {C_STORE: 0x8001, C_ECHO: 0x8030}


def _ui(element: int, value: str) -> bytes:
    raw = value.encode("ascii", "replace")
    if len(raw) % 2:
        raw += b"\0"
    return struct.pack("<HHI", 0x0000, element, len(raw)) + raw


def _us(element: int, value: int) -> bytes:
    return struct.pack("<HHIH", 0x0000, element, 2, value)


def encode_response(command_field: int, sop_class: str, message_id: int, status: int,
                    sop_instance: str | None = None, error_comment: str | None = None) -> bytes:
    """Command set of a C-STORE-RSP / C-ECHO-RSP (implicit VR little endian)."""
    body = _ui(0x0002, sop_class) + _us(0x0100, command_field) + _us(0x0120, message_id)
    body += _us(0x0800, 0x0101) + _us(0x0900, status)
    if error_comment:
        text = error_comment.encode("ascii", "replace")[:64]
        if len(text) % 2:
            text += b" "
        body += struct.pack("<HHI", 0x0000, 0x0902, len(text)) + text
    if sop_instance:
        body += _ui(0x1000, sop_instance)
    return struct.pack("<HHII", 0x0000, 0x0000, 4, len(body)) + body


def _install_fast_responses(assoc: Any) -> None:
    dimse = assoc.dimse
    original = dimse.send_msg

    def send_msg(primitive: Any, context_id: int) -> None:
        field = _RSP_FIELDS.get(type(primitive))
        if field is None or primitive.MessageIDBeingRespondedTo is None:
            return original(primitive, context_id)
        command = encode_response(
            field, str(primitive.AffectedSOPClassUID or ""), primitive.MessageIDBeingRespondedTo,
            primitive.Status, str(getattr(primitive, "AffectedSOPInstanceUID", None) or ""),
            getattr(primitive, "ErrorComment", None))
        max_pdu = dimse.maximum_pdu_size
        if max_pdu and len(command) + 12 > max_pdu:
            return original(primitive, context_id)
        pdata = P_DATA()
        pdata.presentation_data_value_list = [[context_id, b"\x03" + command]]
        dimse.dul.send_pdu(pdata)

    dimse.send_msg = send_msg


class StoreSCP:
    """One site's receiver; :func:`serve_scp` is the component entry point."""

    def __init__(self, cfg: SiteConfig, *, durable: bool = True) -> None:
        self.cfg = cfg
        self.paths = cfg.paths
        self.durable = durable
        self.notifier = Notifier(cfg.paths)
        self.allowed_aets = {a.strip() for a in cfg.receiver.allowed_calling_aetitles}
        self.allowed_nets = [ipaddress.ip_network(n, strict=False) for n in cfg.receiver.allowed_ips]
        self._states: dict[int, _AssocState] = {}
        self._states_lock = threading.Lock()
        self.server: Any = None
        self.ae: AE | None = None

    # --- life cycle -------------------------------------------------------------------

    def start(self) -> None:
        self.paths.archive.mkdir(parents=True, exist_ok=True)
        self.paths.temp.mkdir(parents=True, exist_ok=True)
        _clean_stale_temp(self.paths.temp)
        self.notifier.start()
        ssl_context = _tls_context(self.cfg)
        _install_pynetdicom_settings()

        ae = AE(ae_title=self.cfg.aetitle)
        ae.fionagw_tempdir = str(self.paths.temp)  # type: ignore[attr-defined]
        ae.maximum_pdu_size = self.cfg.receiver.max_pdu
        ae.network_timeout = self.cfg.receiver.network_timeout
        ae.acse_timeout = 30
        ae.dimse_timeout = self.cfg.receiver.network_timeout
        ae.maximum_associations = 32
        ae.require_called_aet = False  # promiscuous like FIONA's storescp
        ae.add_supported_context(Verification)
        handlers = [
            (evt.EVT_CONN_OPEN, self._on_conn_open),
            (evt.EVT_REQUESTED, self._on_requested),
            (evt.EVT_C_ECHO, self._on_echo),
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_CONN_CLOSE, self._on_conn_close),
        ]
        try:
            self.server = ae.start_server(
                (self.cfg.dicom_ip, self.cfg.dicom_port), block=False,
                ssl_context=ssl_context, evt_handlers=handlers,
            )
        except OSError as exc:
            _restore_pynetdicom_settings()
            raise ConfigError(
                self.cfg.config_file, "DICOMPORT",
                f"{self.cfg.dicom_ip}:{self.cfg.dicom_port} is not available: {exc.strerror or exc}",
            ) from None
        self.ae = ae
        LOG.info("SCP listening", extra={
            "aetitle": self.cfg.aetitle, "ip": self.cfg.dicom_ip, "port": self.cfg.dicom_port,
            "tls": bool(self.cfg.receiver.tls_cert), "archive": str(self.paths.archive),
            "durable": self.durable})

    def shutdown(self, grace: float = SHUTDOWN_GRACE_S) -> None:
        """Stop accepting; let running associations end, then abort them between stores."""
        if self.server is None:
            return
        server, self.server = self.server, None
        server.shutdown()  # no new associations; the listening socket is closed
        deadline = time.monotonic() + grace
        while server.active_associations and time.monotonic() < deadline:
            time.sleep(0.05)
        for assoc in server.active_associations:
            state = self._state(assoc)
            if state is None:
                assoc.abort()
                continue
            with state.lock:  # waits for a store that is being written
                state.closing = True
                LOG.warning("aborting association at shutdown", extra=self._log_fields(state))
                assoc.abort()
        for assoc in server.active_associations:
            assoc.join(2.0)
        _clean_stale_temp(self.paths.temp)  # datasets cut off by the aborts
        self.notifier.close()
        _restore_pynetdicom_settings()
        LOG.info("SCP stopped", extra={"port": self.cfg.dicom_port})

    # --- per-association state ----------------------------------------------------------

    def _state(self, assoc: Any) -> _AssocState | None:
        with self._states_lock:
            return self._states.get(id(assoc))

    @staticmethod
    def _log_fields(state: _AssocState) -> dict[str, Any]:
        return {"calling_aet": state.calling, "called_aet": state.called, "peer": state.ip}

    def _on_conn_open(self, event: evt.Event) -> None:
        sock = event.assoc.dul.socket.socket
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        _install_fast_responses(event.assoc)
        ip, port = event.address[0], event.address[1]
        with self._states_lock:
            self._states[id(event.assoc)] = _AssocState("", "", ip, port)

    def _on_requested(self, event: evt.Event) -> None:
        assoc = event.assoc
        rq = assoc.requestor.primitive
        calling = (rq.calling_ae_title or "").strip()
        called = (rq.called_ae_title or "").strip()
        state = self._state(assoc)
        if state is None:
            state = _AssocState("", "", assoc.requestor.address, assoc.requestor.port)
            with self._states_lock:
                self._states[id(assoc)] = state
        state.calling, state.called = calling, called

        reason = ""
        diagnostic = 0x01
        if self.allowed_nets and not self._ip_allowed(state.ip):
            reason = "peer address not in receiver.allowed_ips"
        elif self.allowed_aets and calling not in self.allowed_aets:
            reason = "calling AE title not in receiver.allowed_calling_aetitles"
            diagnostic = 0x03  # calling AE title not recognised
        if reason:
            LOG.warning("association rejected: %s", reason, extra=self._log_fields(state))
            state.closing = True
            assoc.acse.send_reject(0x01, 0x01, diagnostic)
            assoc.kill()

    def _ip_allowed(self, ip: str) -> bool:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        if addr.version == 6 and addr.ipv4_mapped:
            addr = addr.ipv4_mapped
        return any(addr in net for net in self.allowed_nets)

    def _on_conn_close(self, event: evt.Event) -> None:
        # A dataset cut off by an abort or a dropped connection never reaches the
        # handler, so pynetdicom never removes its temp file: do it here.
        partial = getattr(getattr(event.assoc.dimse, "message", None), "_data_set_file", None)
        if isinstance(partial, ReceiveFile):
            partial.close()
            try:
                os.unlink(partial.name)
            except OSError:
                pass
        with self._states_lock:
            state = self._states.pop(id(event.assoc), None)
        if state is None:
            return
        level = logging.INFO if state.stored or state.failed else logging.DEBUG
        LOG.log(level, "association closed", extra={
            **self._log_fields(state), "stored": state.stored, "failed": state.failed,
            "bytes": state.bytes, "seconds": round(time.monotonic() - state.started, 3)})

    # --- DIMSE ------------------------------------------------------------------------

    def _on_echo(self, event: evt.Event) -> int:
        return 0x0000

    def _on_store(self, event: evt.Event) -> int | Dataset:
        assoc = event.assoc
        req = event.request
        state = self._state(assoc) or _AssocState(
            assoc.requestor.ae_title, assoc.acceptor.ae_title, assoc.requestor.address, 0)
        sop_class = str(req.AffectedSOPClassUID or "")
        sop_uid = str(req.AffectedSOPInstanceUID or "")
        with state.lock:
            if state.closing:
                return _failure(store.OUT_OF_RESOURCES, "receiver shutting down")
            try:
                received = getattr(req, "_dataset_file", None)
                if isinstance(received, ReceiveFile):
                    received.flush()
                    if received.error is not None:
                        raise store.StoreError(
                            store.status_for_oserror(received.error),
                            f"cannot write received data: {received.error.strerror}")
                tmp = Path(event.dataset_path)
                stored = store.store_received(self.paths, tmp, sop_class, sop_uid,
                                              durable=self.durable)
            except store.StoreError as exc:
                state.failed += 1
                LOG.warning("store failed: %s", exc.reason, extra={
                    **self._log_fields(state), "sop_class_uid": sop_class,
                    "sop_instance_uid": sop_uid, "status": f"0x{exc.status:04X}"})
                return _failure(exc.status, exc.reason)
            except Exception as exc:  # a bug: answer failure, keep serving
                state.failed += 1
                LOG.exception("store failed unexpectedly", extra={
                    **self._log_fields(state), "sop_instance_uid": sop_uid})
                return _failure(store.WRITE_FAILED, f"internal error: {type(exc).__name__}")
            state.stored += 1
            state.bytes += stored.size
        self.notifier.arrived(state.calling, state.called, state.ip, stored.study_uid,
                              stored.study_dir, stored.name)
        if LOG.isEnabledFor(logging.DEBUG):
            LOG.debug("stored", extra={**self._log_fields(state), "path": str(stored.path),
                                       "replaced": stored.replaced, "bytes": stored.size})
        return 0x0000


def serve_scp(cfg: SiteConfig, stop: threading.Event, ready: Callable[[], None],
              *, durable: bool = True) -> None:
    """Run the site's SCP until ``stop`` is set; call ``ready()`` once listening."""
    scp = StoreSCP(cfg, durable=durable)
    scp.start()
    try:
        ready()
        stop.wait()
    finally:
        scp.shutdown()


__all__ = ["StoreSCP", "serve_scp"]
