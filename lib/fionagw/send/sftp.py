"""The ``sftp`` destination: packages delivered to a remote folder over SFTP (paramiko).

    "daic": {"type": "sftp", "host": "upload.example.org", "port": 22, "user": "fiona",
             "remote_dir": "fiona/outbox", "known_hosts": "/etc/fiona/known_hosts",
             "key_file": "/etc/fiona/daic.key",
             "bandwidth_mb_s": 0, "parallel": 1, "timeout": 30}

``key_file`` (a private key) or ``password_file`` (the password on its first line): a secret
file of mode 0600 (config/secrets.py). The server's host key must be in ``known_hosts`` (OpenSSH
format; ``[host]:port`` for a port other than 22): an unknown or changed key is refused.

Each file of a package is written to ``.<name>.part`` in ``remote_dir`` (resumed where an
earlier attempt stopped), read back and compared with the local size and MD5, then renamed
into place with OpenSSH's atomic posix-rename: the final name only ever holds a whole,
verified file, and a file already there whole (a crash after the rename) is not sent again.
"""

from __future__ import annotations

import hashlib
import io
import logging
import posixpath
import socket
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from fionagw.config import SectionReader, SiteConfig, register_destination_type
from fionagw.config.secrets import read_secret_file, read_secret_line
from fionagw.send.base import SendError, one_line
from fionagw.send.package import (
    Package,
    PackageDestination,
    Progress,
    file_digests,
    iter_chunks,
)

if TYPE_CHECKING:
    import paramiko

log = logging.getLogger("fionagw.send.sftp")

KEYS = (
    "host",
    "port",
    "user",
    "remote_dir",
    "known_hosts",
    "key_file",
    "password_file",
    "bandwidth_mb_s",
    "parallel",
    "timeout",
)
WINDOW = 64 << 20  # a wide SSH window keeps loopback and long links busy
# SFTP read/write requests of 248 KiB, under OpenSSH sftp-server's 256 KiB message limit (the
# rename already needs OpenSSH's posix-rename): 3-8 times fewer requests than paramiko's 32 KiB
REQUEST = 248 << 10
READ_BATCH = 32  # read requests in flight while the remote copy is read back
FAST_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")  # AEAD: no separate MAC


@dataclass(frozen=True)
class SftpSettings:
    name: str
    host: str
    port: int
    user: str
    remote_dir: str
    known_hosts: Path
    key_file: Path | None
    password_file: Path | None
    outbox: Path
    bandwidth_mb_s: float = 0.0
    parallel: int = 1
    timeout: float = 30.0
    type: ClassVar[str] = "sftp"

    def destination(self) -> SftpDestination:
        return SftpDestination(self)


def parse_sftp(name: str, r: SectionReader, site: SiteConfig) -> SftpSettings:
    host = r.get("host", str).strip()
    if not host:
        raise r.error("host", "empty")
    key_file, password_file = r.path("key_file"), r.path("password_file")
    if (key_file is None) == (password_file is None):
        raise r.error("key_file", "give exactly one of key_file and password_file")
    known_hosts = r.path("known_hosts", ...)
    assert known_hosts is not None
    if not known_hosts.is_file():
        raise r.error("known_hosts", f"file not found: {known_hosts}")
    bandwidth = float(r.get("bandwidth_mb_s", (int, float), 0))
    if bandwidth < 0:
        raise r.error("bandwidth_mb_s", "must not be negative (0: no limit)")
    parallel = r.get("parallel", int, 1)
    if not 1 <= parallel <= 16:
        raise r.error("parallel", f"must be 1-16, got {parallel}")
    remote_dir = r.get("remote_dir", str, ".").strip() or "."
    return SftpSettings(
        name,
        host,
        r.port("port", 22),
        r.get("user", str),
        remote_dir,
        known_hosts,
        key_file,
        password_file,
        site.paths.packages(name),
        bandwidth,
        parallel,
        r.positive_number("timeout", 30.0),
    )


register_destination_type(SftpSettings.type, KEYS, parse_sftp)


class Throttle:
    """Sleeps so that no more than ``rate`` bytes a second pass (0: no limit)."""

    def __init__(self, rate: float) -> None:
        self.rate, self.start, self.sent = rate, time.monotonic(), 0

    def __call__(self, n: int) -> None:
        if not self.rate:
            return
        self.sent += n
        ahead = self.sent / self.rate - (time.monotonic() - self.start)
        if ahead > 0:
            time.sleep(ahead)


def _load_key(path: Path) -> paramiko.PKey:
    import paramiko

    text = read_secret_file(path, "read the SSH key").decode("utf-8", "replace")
    for kind in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return kind.from_private_key(io.StringIO(text))
        except (paramiko.SSHException, ValueError):
            continue
    raise SendError(f"{path}: not a private key paramiko can read (ed25519, ECDSA or RSA)")


class SftpDestination(PackageDestination):
    type = SftpSettings.type

    def __init__(self, settings: SftpSettings) -> None:
        super().__init__(settings.name, settings.outbox)
        self.s = settings
        self.parallel = settings.parallel

    def describe(self) -> str:
        return f"sftp {self.s.user}@{self.s.host}:{self.s.port}, folder {self.s.remote_dir}"

    # -- connection ----------------------------------------------------------------------------

    def _host_label(self) -> str:
        return self.s.host if self.s.port == 22 else f"[{self.s.host}]:{self.s.port}"

    def _known_keys(self) -> dict[str, Any]:
        import paramiko

        try:
            known = paramiko.HostKeys(str(self.s.known_hosts))
        except (OSError, paramiko.SSHException) as exc:
            raise SendError(f"known_hosts {self.s.known_hosts}: {one_line(exc)}") from None
        entry = known.lookup(self._host_label())
        if not entry:
            raise SendError(
                f"sftp {self.name}: host key of {self._host_label()} is unknown (not in "
                f"{self.s.known_hosts}); refused. Check its fingerprint with the site, then add "
                f"it: ssh-keyscan -p {self.s.port} {self.s.host} >> {self.s.known_hosts}"
            )
        return dict(entry)

    def connect(self) -> tuple[Any, Any]:
        """(transport, sftp client) after the host key check and authentication."""
        import paramiko

        known = self._known_keys()
        where = f"sftp {self.name} ({self._host_label()})"
        try:
            sock = socket.create_connection((self.s.host, self.s.port), self.s.timeout)
        except OSError as exc:
            raise SendError(f"{where}: cannot connect: {exc.strerror or exc}") from None
        transport = paramiko.Transport(
            sock, default_window_size=WINDOW, default_max_packet_size=1 << 18
        )
        try:
            options = transport.get_security_options()
            options.key_types = [k for k in options.key_types if k in known] or list(known)
            fast = [c for c in FAST_CIPHERS if c in options.ciphers]
            options.ciphers = fast + [c for c in options.ciphers if c not in fast]
            transport.start_client(timeout=self.s.timeout)
            key = transport.get_remote_server_key()
            if known.get(key.get_name()) != key:
                raise SendError(
                    f"{where}: the server's host key ({key.get_name()} "
                    f"{key.fingerprint}) does not match {self.s.known_hosts}; refused "
                    "(a changed key: ask the site whether it was replaced)"
                )
            if self.s.key_file is not None:
                transport.auth_publickey(self.s.user, _load_key(self.s.key_file))
            else:
                assert self.s.password_file is not None
                password = read_secret_line(self.s.password_file, "read the SFTP password")
                transport.auth_password(self.s.user, password)
            client = paramiko.SFTPClient.from_transport(transport)
            assert client is not None
            client.get_channel().settimeout(self.s.timeout)
            return transport, client
        except paramiko.AuthenticationException:
            transport.close()
            raise SendError(f"{where}: login as {self.s.user!r} refused") from None
        except (OSError, EOFError, paramiko.SSHException) as exc:
            transport.close()
            raise SendError(f"{where}: {one_line(exc) or type(exc).__name__}") from None
        except BaseException:
            transport.close()
            raise

    def check(self) -> str:
        transport, client = self.connect()
        try:
            self._make_remote_dir(client)
            return f"{self.describe()}: host key matches, logged in, folder writable"
        finally:
            transport.close()

    # -- delivery ------------------------------------------------------------------------------

    def deliver(self, package: Package, md5: str, progress: Progress) -> str:
        import paramiko

        transport, client = self.connect()
        try:
            self._make_remote_dir(client)
            done = []
            for local in package.upload_files():
                digest = md5 if local == package.archive else file_digests(local, "md5")["md5"]
                done.append(self._put(client, local, digest, progress))
            return "; ".join(done)
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise SendError(
                f"sftp {self.name}: transfer broken off: {one_line(exc) or type(exc).__name__}"
            ) from None
        finally:
            transport.close()

    def _make_remote_dir(self, client: Any) -> None:
        path = ""
        for part in self.s.remote_dir.strip("/").split("/"):
            if part in ("", "."):
                continue
            path = posixpath.join(path, part) if path else part
            if self.s.remote_dir.startswith("/") and not path.startswith("/"):
                path = "/" + path
            try:
                client.stat(path)
            except FileNotFoundError:
                client.mkdir(path)

    def _remote(self, name: str) -> str:
        return posixpath.join(self.s.remote_dir, name)

    def _size(self, client: Any, path: str) -> int | None:
        try:
            st = client.stat(path)
        except FileNotFoundError:
            return None
        return st.st_size if stat.S_ISREG(st.st_mode or 0) else None

    def _remote_md5(self, client: Any, path: str) -> str:
        # readv in batches: paramiko's prefetch of a whole file slows down quadratically
        h = hashlib.md5()
        size = client.stat(path).st_size or 0
        with client.open(path, "rb") as fh:
            fh.MAX_REQUEST_SIZE = REQUEST
            for start in range(0, size, REQUEST * READ_BATCH):
                end = min(size, start + REQUEST * READ_BATCH)
                for data in fh.readv(
                    [(o, min(REQUEST, end - o)) for o in range(start, end, REQUEST)]
                ):
                    h.update(data)
        return h.hexdigest()

    def _put(self, client: Any, local: Path, md5: str, progress: Progress) -> str:
        size = local.stat().st_size
        final, part = self._remote(local.name), self._remote(f".{local.name}.part")
        if self._size(client, final) == size and self._remote_md5(client, final) == md5:
            return f"{local.name} already there whole"  # delivered before a crash: not again
        offset = self._size(client, part) or 0
        if offset > size:
            offset = 0
        for resumed in (offset, 0) if offset else (0,):
            start = time.monotonic()
            self._upload(client, local, part, resumed)
            uploaded = time.monotonic()
            if self._size(client, part) == size and self._remote_md5(client, part) == md5:
                client.posix_rename(part, final)
                what = f"resumed at {resumed} bytes" if resumed else "sent"
                progress(
                    f"{local.name}: {what}, {size} bytes verified (upload "
                    f"{uploaded - start:.2f} s, read-back {time.monotonic() - uploaded:.2f} s)"
                )
                return f"{local.name} {what}"
            progress(f"{local.name}: remote copy does not match (size or MD5); sending anew")
        client.remove(part)
        raise SendError(
            f"sftp {self.name}: {local.name}: the remote copy does not match after a whole "
            "upload (size or MD5); removed, tried again next time"
        )

    def _upload(self, client: Any, local: Path, part: str, offset: int) -> None:
        throttle = Throttle(self.s.bandwidth_mb_s * 1e6)
        with local.open("rb") as src, client.open(part, "r+b" if offset else "wb") as dst:
            dst.MAX_REQUEST_SIZE = REQUEST
            dst.set_pipelined(True)
            if offset:
                src.seek(offset)
                dst.seek(offset)
                dst.truncate(offset)
            for chunk in iter_chunks(src, REQUEST * 4):
                dst.write(chunk)
                throttle(len(chunk))
