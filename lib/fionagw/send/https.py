"""The ``https`` destination: packages uploaded to a web endpoint, resumably (requests).

    "cloud": {"type": "https", "url": "https://upload.example.org/fiona",
              "token_file": "/etc/fiona/cloud.token",
              "ca_file": "/etc/fiona/cloud-ca.pem", "chunk_mb": 64,
              "max_package_gb": 5, "parallel": 1, "timeout": 60}

Authentication: ``token_file`` (a bearer token on its first line) or ``cert_file`` and
``key_file`` (a client certificate), secret files of mode 0600. TLS is always verified, against
the system's CAs or ``ca_file``.

The resumable protocol (the receiver implements it; docs/architecture.md), for each file NAME
of a package, relative to ``url``:

``HEAD files/NAME``
    200 with ``Content-Length`` and ``X-Checksum-SHA256`` when NAME is delivered, else 404;
``HEAD uploads/NAME``
    200 with ``Upload-Offset``: the bytes of the unfinished upload the server holds (404: none);
``PATCH uploads/NAME`` with ``Upload-Offset: N`` and bytes N.. of the file
    appends them: 204 with the new ``Upload-Offset``; 409 with the server's offset if N is not it;
``POST uploads/NAME/complete`` with ``{"size": S, "sha256": H}``
    the server hashes what it holds: 201 and NAME is in place (replacing any older copy
    atomically) if size and SHA-256 match; 422 with what it computed otherwise (the upload is
    dropped);
``DELETE uploads/NAME``
    drops an unfinished upload.

One PATCH carries at most ``chunk_mb``; a broken connection costs at most that, and the client
asks for the offset and goes on (``reconnects`` times in a row without progress, then the
attempt fails and sendFiles retries later, from where the server stopped).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

from fionagw.config import SectionReader, SiteConfig, register_destination_type
from fionagw.config.secrets import read_secret_file, read_secret_line
from fionagw.send.base import SendError, one_line
from fionagw.send.package import Package, PackageDestination, Progress, file_digests

log = logging.getLogger("fionagw.send.https")

KEYS = (
    "url",
    "token_file",
    "cert_file",
    "key_file",
    "ca_file",
    "chunk_mb",
    "max_package_gb",
    "parallel",
    "timeout",
    "reconnects",
)
BLOCK = 1 << 20  # what the HTTP layer reads from the file at a time


@dataclass(frozen=True)
class HttpsSettings:
    name: str
    url: str
    outbox: Path
    token_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    ca_file: Path | None = None
    chunk_bytes: int = 64 << 20
    max_package_bytes: int = 5 * 10**9
    parallel: int = 1
    timeout: float = 60.0
    reconnects: int = 3
    type: ClassVar[str] = "https"

    def destination(self) -> HttpsDestination:
        return HttpsDestination(self)


def parse_https(name: str, r: SectionReader, site: SiteConfig) -> HttpsSettings:
    url = r.get("url", str).strip().rstrip("/")
    if not url.startswith("https://"):
        raise r.error("url", "must start with https:// (TLS is required)")
    token, cert, key, ca = (
        r.path("token_file"),
        r.path("cert_file"),
        r.path("key_file"),
        r.path("ca_file"),
    )
    if bool(cert) != bool(key):
        raise r.error("cert_file" if key else "key_file", "cert_file and key_file go together")
    if not token and not cert:
        raise r.error("token_file", "give token_file, or cert_file and key_file")
    for k, p in (("cert_file", cert), ("ca_file", ca)):
        if p is not None and not p.is_file():
            raise r.error(k, f"file not found: {p}")
    parallel = r.get("parallel", int, 1)
    if not 1 <= parallel <= 16:
        raise r.error("parallel", f"must be 1-16, got {parallel}")
    reconnects = r.get("reconnects", int, 3)
    if reconnects < 0:
        raise r.error("reconnects", "must not be negative")
    return HttpsSettings(
        name,
        url,
        site.paths.packages(name),
        token,
        cert,
        key,
        ca,
        int(r.positive_number("chunk_mb", 64) * (1 << 20)),
        int(r.positive_number("max_package_gb", 5) * 10**9),
        parallel,
        r.positive_number("timeout", 60.0),
        reconnects,
    )


register_destination_type(HttpsSettings.type, KEYS, parse_https)


class _Slice:
    """``length`` bytes of an open file from its current position, as a request body (a
    ``len`` so the request has a Content-Length; no ``tell``/``fileno``, which would make the
    HTTP layer send the whole file)."""

    def __init__(self, fh: BinaryIO, length: int) -> None:
        self.fh, self.left = fh, length

    def __len__(self) -> int:
        return self.left

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        data = self.fh.read(n) if n else b""
        self.left -= len(data)
        return data


def _certificate_refused(exc: BaseException) -> bool:
    """Did the TLS handshake fail on the receiver's certificate (not on a dropped connection)?
    requests wraps the ssl error in urllib3's errors: look through the chain."""
    import ssl

    todo, seen = [exc], set()
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, ssl.SSLCertVerificationError):
            return True
        todo += [a for a in e.args if isinstance(a, BaseException)]
        todo += [
            v
            for v in (getattr(e, "reason", None), e.__cause__, e.__context__)
            if isinstance(v, BaseException)
        ]
    return False


class HttpsDestination(PackageDestination):
    type = HttpsSettings.type

    def __init__(self, settings: HttpsSettings) -> None:
        super().__init__(settings.name, settings.outbox, settings.max_package_bytes)
        self.s = settings
        self.parallel = settings.parallel

    def describe(self) -> str:
        return f"https {self.s.url}"

    def _session(self) -> Any:
        import requests

        session = requests.Session()
        if self.s.token_file is not None:
            token = read_secret_line(self.s.token_file, "read the upload token")
            session.headers["Authorization"] = f"Bearer {token}"
        if self.s.cert_file is not None and self.s.key_file is not None:
            read_secret_file(self.s.key_file, "read the client key")  # the mode check
            session.cert = (str(self.s.cert_file), str(self.s.key_file))
        return session

    def _call(self, session: Any, method: str, path: str, **kw: Any) -> Any:
        import requests

        # verify per request: requests lets $REQUESTS_CA_BUNDLE override a session's verify
        verify = str(self.s.ca_file) if self.s.ca_file else True
        try:
            return session.request(
                method, f"{self.s.url}/{path}", timeout=self.s.timeout, verify=verify, **kw
            )
        except requests.exceptions.SSLError as exc:
            if _certificate_refused(exc):
                raise SendError(f"https {self.name}: TLS refused: {one_line(exc, 160)}") from None
            raise  # a TLS connection cut in the middle: a ConnectionError, resumed by the caller

    def check(self) -> str:
        import requests

        with self._session() as session:
            try:
                r = self._call(session, "HEAD", "files/.fiona-check")
            except requests.RequestException as exc:
                raise SendError(f"https {self.name}: {one_line(exc)}") from None
            if r.status_code in (401, 403):
                raise SendError(f"https {self.name}: authentication refused (HTTP {r.status_code})")
        return f"{self.describe()}: TLS verified, authenticated"

    def deliver(self, package: Package, md5: str, progress: Progress) -> str:
        import requests

        done = []
        with self._session() as session:
            for local in package.upload_files():
                try:
                    done.append(self._put(session, local, progress))
                except requests.RequestException as exc:
                    raise SendError(f"https {self.name}: {local.name}: {one_line(exc)}") from None
        return "; ".join(done)

    def put_file(self, local: Path, progress: Progress) -> str:
        """Upload one file that is not a package (a workflow's features.json) the same way:
        resumable, verified by the server's checksum, renamed into place."""
        import requests

        with self._session() as session:
            try:
                return self._put(session, local, progress)
            except requests.RequestException as exc:
                raise SendError(f"https {self.name}: {local.name}: {one_line(exc)}") from None

    def _status(self, r: Any, what: str) -> SendError:
        if r.status_code in (401, 403):
            return SendError(f"https {self.name}: authentication refused (HTTP {r.status_code})")
        return SendError(f"https {self.name}: {what}: HTTP {r.status_code} {one_line(r.text, 120)}")

    def _offset(self, session: Any, name: str) -> int:
        r = self._call(session, "HEAD", f"uploads/{name}")
        if r.status_code == 404:
            return 0
        if r.status_code != 200:
            raise self._status(r, f"{name}: upload offset")
        return int(r.headers.get("Upload-Offset", 0))

    def _put(self, session: Any, local: Path, progress: Progress) -> str:
        size = local.stat().st_size
        sha256 = file_digests(local, "sha256")["sha256"]
        name = local.name
        r = self._call(session, "HEAD", f"files/{name}")
        if (
            r.status_code == 200
            and int(r.headers.get("Content-Length", -1)) == size
            and r.headers.get("X-Checksum-SHA256", "").lower() == sha256
        ):
            return f"{name} already there whole"  # delivered before a crash: not again
        if r.status_code in (401, 403):
            raise self._status(r, name)
        offset = self._offset(session, name)
        if offset > size:
            self._call(session, "DELETE", f"uploads/{name}")
            offset = 0
        first = offset
        for restart in (False, True):
            self._upload(session, local, size, offset, progress)
            r = self._call(
                session, "POST", f"uploads/{name}/complete", json={"size": size, "sha256": sha256}
            )
            if r.status_code in (200, 201):
                what = f"resumed at {first} bytes" if first else "sent"
                progress(f"{name}: {what}, {size} bytes, server checksum matches")
                return f"{name} {what}"
            if r.status_code != 422 or restart:
                raise self._status(r, f"{name}: completing the upload")
            progress(f"{name}: the server's checksum differs; sending anew")
            offset = first = 0  # 422: the server dropped what it held
        raise AssertionError("unreachable")

    def _upload(
        self, session: Any, local: Path, size: int, offset: int, progress: Progress
    ) -> None:
        import requests

        failures = 0
        with local.open("rb") as fh:
            while offset < size:
                length = min(self.s.chunk_bytes, size - offset)
                fh.seek(offset)
                try:
                    r = self._call(
                        session,
                        "PATCH",
                        f"uploads/{local.name}",
                        data=_Slice(fh, length),
                        headers={
                            "Upload-Offset": str(offset),
                            "Content-Type": "application/offset+octet-stream",
                            "Content-Length": str(length),
                        },
                    )
                except (requests.ConnectionError, requests.Timeout) as exc:
                    failures += 1
                    if failures > self.s.reconnects:
                        raise SendError(
                            f"https {self.name}: {local.name}: connection lost {failures} times "
                            f"at {offset} of {size} bytes: {one_line(exc, 120)}"
                        ) from None
                    progress(f"{local.name}: connection lost at {offset} bytes; resuming")
                    time.sleep(min(2**failures * 0.5, 10))
                    offset = self._offset(session, local.name)
                    continue
                if r.status_code == 409:
                    offset = int(r.headers.get("Upload-Offset", 0))
                    continue
                if r.status_code not in (200, 204):
                    raise self._status(r, f"{local.name}: upload")
                new = int(r.headers.get("Upload-Offset", offset + length))
                if new > offset:
                    failures = 0
                offset = new
