"""Receivers for the notification channels: a webhook and a FHIR endpoint (http.server on
loopback) and an SMTP server (aiosmtpd with STARTTLS and AUTH). Each keeps every payload it
got, raw, so the tests can search them for identifying values."""

from __future__ import annotations

import hashlib
import hmac
import json
import ssl
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from support.site import free_port
from support.tls import self_signed


class _Server(ThreadingHTTPServer):
    daemon_threads = True


class HttpReceiver:
    """A webhook (any path) or FHIR base URL (POST <base>/DiagnosticReport)."""

    def __init__(self, secret: str = "", fail_first: bool = False, fhir: bool = False) -> None:
        self.secret, self.fail_first, self.fhir = secret, fail_first, fhir
        self.bodies: list[bytes] = []  # every body received, answered 500 or not
        self.accepted: Counter[str] = Counter()  # idempotency key -> 2xx answers
        self.bad_signatures = 0
        self.resources: list[Any] = []  # FHIR: the parsed DiagnosticReports
        self.conditions: list[str] = []
        self._tried: set[str] = set()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms stall

            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, code: int, body: bytes = b"{}") -> None:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_PUT(self) -> None:
                self.do_POST()

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                code = receiver.handle(self.path, dict(self.headers), body)
                self._answer(code)

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> int:
        with self._lock:
            self.bodies.append(body)
            if self.fhir:
                from fhir.resources.diagnosticreport import DiagnosticReport

                if not path.endswith("/DiagnosticReport"):
                    return 404
                self.resources.append(DiagnosticReport.model_validate_json(body))
                self.conditions.append(headers.get("If-None-Exist", ""))
                return 201
            key = headers.get("Idempotency-Key", "")
            want = "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(headers.get("X-Fiona-Signature", ""), want):
                self.bad_signatures += 1
                return 401
            if self.fail_first and key not in self._tried:
                self._tried.add(key)
                return 500
            self.accepted[key] += 1
            return 200

    def events(self) -> list[dict[str, Any]]:
        """The accepted webhook payloads, parsed (one per key)."""
        seen: dict[str, dict[str, Any]] = {}
        for b in self.bodies:
            doc = json.loads(b)
            if doc.get("id") in self.accepted:
                seen[doc["id"]] = doc
        return list(seen.values())

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class SmtpServer:
    """aiosmtpd on loopback: STARTTLS required, AUTH LOGIN/PLAIN with one user."""

    directory: Path
    user: str = "fiona"
    password: str = "s3cret-mail"
    implicit_tls: bool = False  # TLS from the first byte (port 465 style) instead of STARTTLS
    messages: list[bytes] = field(default_factory=list)

    def start(self) -> SmtpServer:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        self.port = free_port()
        cert, key = self_signed(self.directory, "smtp")
        self.ca_file = cert
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        server = self

        class Handler:
            async def handle_DATA(self, srv: Any, session: Any, envelope: Any) -> str:
                server.messages.append(envelope.original_content or envelope.content)
                return "250 OK"

        def authenticator(srv: Any, session: Any, envelope: Any, mechanism: str, auth: Any) -> Any:
            ok = auth.login.decode() == self.user and auth.password.decode() == self.password
            return AuthResult(success=ok)

        tls: dict[str, Any] = (
            # aiosmtpd does not count implicit TLS as TLS for AUTH: it is TLS all the same
            {"ssl_context": context, "auth_require_tls": False}
            if self.implicit_tls
            else {"tls_context": context, "require_starttls": True, "auth_require_tls": True}
        )
        self.controller = Controller(
            Handler(),
            hostname="127.0.0.1",
            port=self.port,
            authenticator=authenticator,
            **tls,
        )
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()
