"""The C-STORE / C-ECHO SCP of a site (what storectl runs): the listener and its threads.

A threaded TCP server of its own: one thread per association (:mod:`fionagw.receive.association`
negotiates and receives; :mod:`fionagw.receive.sink` writes), TCP_NODELAY on every connection,
optional TLS (client certificates required when ``tls_ca`` is set), optional calling-AE and
IP/network allow-lists (:mod:`fionagw.receive.access`).

Anyone who can connect must not be able to lock senders out (128 idle connections once did
for 30 s), so a connection is held to account from the moment it is accepted:

* an address outside ``receiver.allowed_ips`` is closed at once, before a byte is read;
* until its A-ASSOCIATE-RQ is complete a connection is *unassociated*: it has
  ``receiver.handshake_timeout`` seconds for that, and at most
  ``receiver.max_unassociated_per_ip`` of them per address and ``receiver.max_unassociated``
  in all are kept: a new connection beyond either closes the oldest one (of its address,
  else of all). A real sender sends its request within milliseconds of connecting, so it is
  served even while idle connections keep arriving;
* when ``receiver.max_associations`` are running, a new one displaces (A-ABORT) the one that
  has waited longest for its next PDU, if that is ``receiver.idle_displace_seconds`` or more
  (one that opened an association and then sent nothing must not lock senders out either;
  one in the middle of a PDU is never displaced), else it is rejected (local limit).

What such peers cause is logged through :class:`~fionagw.receive.throttle.LogThrottle`: one
line per kind and interval, however many connections.
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
from fionagw.receive import durable as durability
from fionagw.receive import flushes
from fionagw.receive.access import AccessPolicy, peer_ip
from fionagw.receive.association import Association
from fionagw.receive.notify import Notifier
from fionagw.receive.throttle import LogThrottle

LOGGER = logging.getLogger(__name__)
SHUTDOWN_GRACE_S = 3.0  # let associations end on their own before aborting them


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

    def __init__(self, cfg: SiteConfig, *, durable: bool | None = None) -> None:
        """``durable`` overrides ``receiver.durability`` (tests, the bench)."""
        self.cfg = cfg
        self.paths = cfg.paths
        self.durable = cfg.receiver.durability == "flush" if durable is None else durable
        self.notifier = Notifier(cfg.paths)
        self.committer = durability.Committer(cfg.paths, self.notifier, durable=self.durable)
        self.stored = 0  # objects stored by ended associations (the "SCP stopped" line)
        self.access = AccessPolicy.from_settings(cfg.receiver)
        self.ssl_context: ssl.SSLContext | None = None
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._stopping = threading.Event()
        self._active: set[Association] = set()
        self._active_lock = threading.Lock()  # guards the three collections here
        self._unassociated: dict[Association, None] = {}  # in the order accepted
        self._associated: set[Association] = set()
        self.throttle = LogThrottle(LOGGER)

    # --- life cycle -------------------------------------------------------------------

    def start(self) -> None:
        self.paths.archive.mkdir(parents=True, exist_ok=True)
        self.paths.temp.mkdir(parents=True, exist_ok=True)
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
        # Before any association: objects answered Success before a crash reach the archive,
        # temp files of cut-off data sets go.
        durability.recover(self.paths, self.notifier)
        self.committer.start()
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
            self.throttle.flush()
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
            ip = peer_ip(str(address[0]))
            if not self.access.ip_allowed(ip):  # before a byte is read from it
                self.throttle.warning(
                    "connection refused: peer address not in receiver.allowed_ips",
                    {"peer": ip},
                )
                conn.close()
                continue
            assoc = Association(self, conn, address)
            victim = self._admit(assoc)
            if victim is not None:
                victim.shutdown()
                self.throttle.warning(
                    "unassociated connection closed to make room for a new one",
                    {"peer": victim.ip},
                )
            thread = threading.Thread(
                target=assoc.run, name=f"scp-{address[0]}:{address[1]}", daemon=True
            )
            assoc.thread = thread
            thread.start()

    def _admit(self, assoc: Association) -> Association | None:
        """Count a new connection as unassociated; the oldest one it displaces, if any."""
        rec = self.cfg.receiver
        with self._active_lock:
            self._active.add(assoc)
            self._unassociated[assoc] = None
            same_ip = [a for a in self._unassociated if a.ip == assoc.ip]
            if len(same_ip) > rec.max_unassociated_per_ip:
                victim = same_ip[0]
            elif len(self._unassociated) > rec.max_unassociated:
                victim = next(iter(self._unassociated))
            else:
                return None
            del self._unassociated[victim]
            return victim

    def active_count(self) -> int:
        with self._active_lock:
            return len(self._active)

    def claim_association(self, assoc: Association) -> bool:
        """``assoc`` has sent its whole A-ASSOCIATE-RQ: it stops counting as unassociated.
        False when ``receiver.max_associations`` are running already and none of them is
        idle enough to be displaced (or ``assoc`` was displaced itself)."""
        rec = self.cfg.receiver
        victim = None
        with self._active_lock:
            if self._unassociated.pop(assoc, ...) is ...:
                return False
            if len(self._associated) >= rec.max_associations:
                idle = [(a.idle_since, a) for a in self._associated if a.idle_since is not None]
                since, oldest = min(idle, key=lambda pair: pair[0], default=(None, None))
                if since is None or time.monotonic() - since < rec.idle_displace_seconds:
                    return False
                victim = oldest
                self._associated.discard(victim)
            self._associated.add(assoc)
        if victim is not None:
            self.throttle.warning(
                "idle association aborted to make room for a new one", victim.log_fields()
            )
            victim.shutdown()
        return True

    def forget(self, assoc: Association) -> None:
        """An association has ended (called from its thread)."""
        with self._active_lock:
            self._active.discard(assoc)
            self._unassociated.pop(assoc, None)
            self._associated.discard(assoc)
            self.stored += assoc.stored

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
        self.committer.close()  # what is sealed goes into the archive
        durability.recover(self.paths, self.notifier)  # what a failed move left; cut-off temps
        self.notifier.close()
        counts = flushes.counts()
        LOGGER.info(
            "SCP stopped",
            extra={
                "port": self.cfg.dicom_port,
                "stored": self.stored,
                "file_flushes": counts["file"],
                "folder_flushes": counts["folder"],
                "flushes_per_image": round(sum(counts.values()) / max(1, self.stored), 3),
            },
        )


def serve_scp(
    cfg: SiteConfig,
    stop: threading.Event,
    ready: Callable[[], None],
    *,
    durable: bool | None = None,
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
