"""The remote site of the https tests: a small HTTPS server speaking the resumable upload
protocol of fionagw.send.https (HEAD files/NAME, HEAD/PATCH/DELETE uploads/NAME,
POST uploads/NAME/complete), with a bearer token and a self-signed certificate.

Run as a process (so a test can kill it as a crash would)::

    python https_receiver.py --root DIR --cert C --key K --port P (--token T | --client-ca CA)
                             [--drop-after N] [--crash-after N]

Files: DIR/uploads/NAME (unfinished; every received byte is appended and flushed, so a
dropped connection keeps what arrived) and DIR/files/NAME (completed, with DIR/files/.NAME.sha256).
``--drop-after N``: once, after N bytes received in total, close the connection in the middle
of a PATCH (the server stays up). ``--crash-after N``: exit at once after N bytes (a crash).

``--client-ca``: clients must show a certificate it signs (and then need no token).
``support.tls.self_signed`` makes its certificate (for localhost, 127.0.0.1);
``Receiver`` starts and stops the process for a test.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import socket
import ssl
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

PREFIX = "/fiona/"
BLOCK = 1 << 20


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(BLOCK):
            h.update(chunk)
    return h.hexdigest()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        sys.stderr.write("receiver: " + (format % args) + "\n")

    def _reply(self, code: int, headers: dict[str, str] | None = None, body: bytes = b"") -> None:
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _route(self) -> tuple[str, str, str] | None:
        """(kind, name, action) of the path, after the token check; None: answered."""
        if self.server.token and self.headers.get("Authorization") != f"Bearer {self.server.token}":
            self._reply(401, body=b"token required")
            return None
        if not self.path.startswith(PREFIX):
            self._reply(404)
            return None
        parts = self.path[len(PREFIX) :].split("/")
        if len(parts) not in (2, 3) or parts[0] not in ("files", "uploads"):
            self._reply(404)
            return None
        name = parts[1]
        if not name or name.startswith(".") or "\\" in name:
            self._reply(400, body=b"bad name")
            return None
        return parts[0], name, parts[2] if len(parts) == 3 else ""

    def _part(self, name: str) -> Path:
        return self.server.root / "uploads" / name

    def do_HEAD(self) -> None:  # noqa: N802
        route = self._route()
        if route is None:
            return
        kind, name, _ = route
        if kind == "files":
            final = self.server.root / "files" / name
            if not final.exists():
                return self._reply(404, {"Content-Length": "0"})
            digest = (final.parent / f".{name}.sha256").read_text().strip()
            size = str(final.stat().st_size)
            return self._reply(200, {"Content-Length": size, "X-Checksum-SHA256": digest})
        part = self._part(name)
        if not part.exists():
            return self._reply(404, {"Content-Length": "0"})
        offset = str(part.stat().st_size)
        self._reply(200, {"Upload-Offset": offset, "Content-Length": "0"})

    def do_DELETE(self) -> None:  # noqa: N802
        route = self._route()
        if route is None:
            return
        self._part(route[1]).unlink(missing_ok=True)
        self._reply(204)

    def do_PATCH(self) -> None:  # noqa: N802
        route = self._route()
        if route is None:
            return
        part = self._part(route[1])
        have = part.stat().st_size if part.exists() else 0
        length = int(self.headers.get("Content-Length", 0))
        if int(self.headers.get("Upload-Offset", -1)) != have:
            self.rfile.read(length)
            return self._reply(409, {"Upload-Offset": str(have)})
        with part.open("ab") as fh:
            left = length
            while left:
                data = self.rfile.read(min(BLOCK, left))
                if not data:  # the client went away: keep what arrived
                    return
                fh.write(data)
                left -= len(data)
                self.server.received += len(data)
                if self.server.crash_after and self.server.received >= self.server.crash_after:
                    fh.flush()
                    os._exit(3)
                if self.server.drop_after and self.server.received >= self.server.drop_after:
                    self.server.drop_after = 0  # once
                    fh.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
        self._reply(204, {"Upload-Offset": str(have + length)})

    def do_POST(self) -> None:  # noqa: N802
        route = self._route()
        if route is None:
            return
        _, name, action = route
        if action != "complete":
            return self._reply(404)
        claim = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        part = self._part(name)
        if not part.exists():
            return self._reply(404, body=b"no upload")
        got = {"size": part.stat().st_size, "sha256": _sha256(part)}
        if got != {"size": claim.get("size"), "sha256": claim.get("sha256")}:
            part.unlink()
            return self._reply(422, body=json.dumps(got).encode())
        files = self.server.root / "files"
        (files / f".{name}.sha256").write_text(got["sha256"])
        os.replace(part, files / name)
        self._reply(201, body=json.dumps(got).encode())


class Server(ThreadingHTTPServer):
    daemon_threads = True
    root: Path
    token: str
    drop_after: int = 0
    crash_after: int = 0
    received: int = 0


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--root", type=Path, required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--token", default="")
    p.add_argument("--client-ca", default="")
    p.add_argument("--drop-after", type=int, default=0)
    p.add_argument("--crash-after", type=int, default=0)
    a = p.parse_args()
    for sub in ("uploads", "files"):
        (a.root / sub).mkdir(parents=True, exist_ok=True)
    server = Server(("127.0.0.1", a.port), Handler)
    server.root, server.token = a.root, a.token
    server.drop_after, server.crash_after = a.drop_after, a.crash_after
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    if a.client_ca:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(a.client_ca)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


class Receiver:
    """The receiver process for a test: ``start(**options)``, ``stop()``, ``files``, ``url``."""

    def __init__(self, folder: Path, port: int, token: str = "test-token-0123456789") -> None:
        self.folder, self.port, self.token = folder, port, token
        from support.tls import self_signed  # here: the server half runs as a plain script

        self.cert, self.key = self_signed(folder / "tls", "receiver")
        self.root = folder / "site"
        self.files, self.uploads = self.root / "files", self.root / "uploads"
        self.url = f"https://127.0.0.1:{port}/fiona"
        self.log = folder / "receiver.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(
        self, drop_after: int = 0, crash_after: int = 0, client_ca: Path | None = None
    ) -> None:
        cmd = [sys.executable, __file__, "--root", str(self.root), "--cert", str(self.cert)]
        cmd += ["--key", str(self.key), "--port", str(self.port)]
        cmd += ["--client-ca", str(client_ca)] if client_ca else ["--token", self.token]
        cmd += ["--drop-after", str(drop_after), "--crash-after", str(crash_after)]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()[-2000:]
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("receiver did not listen within 10 s")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


if __name__ == "__main__":
    main()
