"""The C-STORE / C-ECHO SCP of a site (what storectl runs): the listener and its threads.

A threaded TCP server of its own: one thread per association (:mod:`fionagw.receive.association`
negotiates and receives; :mod:`fionagw.receive.sink` writes), TCP_NODELAY on every connection,
optional TLS (client certificates required when ``tls_ca`` is set), optional calling-AE and
IP/network allow-lists (:mod:`fionagw.receive.access`; rejected associations are logged).
Connections beyond :data:`MAX_CONNECTIONS` are closed at once, associations beyond
:data:`MAX_ASSOCIATIONS` rejected.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable

from fionagw.config import ConfigError, SiteConfig
from fionagw.ops.ports import listen
from fionagw.receive import store
from fionagw.receive.access import AccessPolicy
from fionagw.receive.association import Association
from fionagw.receive.notify import Notifier

LOGGER = logging.getLogger(__name__)
SHUTDOWN_GRACE_S = 3.0  # let associations end on their own before aborting them
MAX_ASSOCIATIONS = 32
MAX_CONNECTIONS = 4 * MAX_ASSOCIATIONS  # open sockets, associated or not (one thread each)


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


class StoreSCP:
    """One site's receiver; :func:`serve_scp` is the component entry point."""

    def __init__(self, cfg: SiteConfig, *, durable: bool = True) -> None:
        self.cfg = cfg
        self.paths = cfg.paths
        self.tempdir = str(cfg.paths.temp)
        self.durable = durable
        self.notifier = Notifier(cfg.paths)
        self.access = AccessPolicy.from_settings(cfg.receiver)
        self.ssl_context: ssl.SSLContext | None = None
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._stopping = threading.Event()
        self._active: set[Association] = set()
        self._active_lock = threading.Lock()

    # --- life cycle -------------------------------------------------------------------

    def start(self) -> None:
        self.paths.archive.mkdir(parents=True, exist_ok=True)
        self.paths.temp.mkdir(parents=True, exist_ok=True)
        store.remove_temps(self.paths.temp)
        self.ssl_context = _tls_context(self.cfg)
        ip, port = self.cfg.dicom_ip, self.cfg.dicom_port
        try:
            listener = listen(ip, port, backlog=64)
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
        LOGGER.info(
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
                LOGGER.warning("accept failed: %s", exc.strerror or exc)  # EMFILE and the like
                time.sleep(0.1)
                continue
            if self.active_count() >= MAX_CONNECTIONS:  # idle connections must not pile up
                LOGGER.warning(
                    "connection refused: %d connections open",
                    MAX_CONNECTIONS,
                    extra={"peer": str(address[0])},
                )
                conn.close()
                continue
            assoc = Association(self, conn, address)
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

    def at_association_limit(self) -> bool:
        """More associations than :data:`MAX_ASSOCIATIONS` (the asking one included)."""
        return self.active_count() > MAX_ASSOCIATIONS

    def forget(self, assoc: Association) -> None:
        """An association has ended (called from its thread)."""
        with self._active_lock:
            self._active.discard(assoc)

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
                LOGGER.warning("aborting association at shutdown", extra=assoc.log_fields())
            assoc.shutdown()
        for assoc in remaining:
            if assoc.thread is not None:
                assoc.thread.join(2.0)
        store.remove_temps(self.paths.temp)  # datasets cut off by the aborts
        self.notifier.close()
        LOGGER.info("SCP stopped", extra={"port": self.cfg.dicom_port})


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
