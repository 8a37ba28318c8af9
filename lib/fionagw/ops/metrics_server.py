"""GET /metrics: the Prometheus endpoint of `fiona run`, a small threaded HTTP server."""

from __future__ import annotations

import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from fionagw.config import SiteConfig
from fionagw.ops.ports import bind_address
from fionagw.ops.prometheus import CONTENT_TYPE, render
from fionagw.ops.status import DiskStatus, collect_status, disk_status

LOGGER = logging.getLogger(__name__)


class MetricsServer:
    """GET /metrics on metrics.host:metrics.port, a small threaded HTTP server in `fiona run`."""

    def __init__(self, cfg: SiteConfig) -> None:
        self.cfg = cfg
        self.httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._disk: tuple[float, DiskStatus] | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        host = self.cfg.metrics.host
        host = f"[{host}]" if ":" in host else host
        port = self.httpd.server_address[1] if self.httpd else self.cfg.metrics.port
        return f"http://{host}:{port}/metrics"

    def bind(self) -> None:
        """Open the port now (so a port in use fails `fiona run` at start, not later)."""
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                if self.path.split("?", 1)[0] != "/metrics":
                    self._send(
                        404,
                        "text/plain; charset=utf-8",
                        b"not found: the metrics are at /metrics\n",
                    )
                    return
                try:
                    body = server.text().encode("utf-8")
                except Exception as exc:  # noqa: BLE001 - a scrape must get an answer, not a hang
                    LOGGER.exception("metrics collection failed")
                    self._send(
                        500,
                        "text/plain; charset=utf-8",
                        f"metrics collection failed: {exc}\n".encode(),
                    )
                    return
                self._send(200, CONTENT_TYPE, body)

            def _send(self, code: int, ctype: str, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence per-request lines
                pass

        family, address = bind_address(self.cfg.metrics.host, self.cfg.metrics.port)

        class Server(ThreadingHTTPServer):
            address_family = family
            daemon_threads = True

        self.httpd = Server(address, Handler)

    def text(self) -> str:
        with self._lock:
            status = collect_status(self.cfg, du=False)
            if status.disk is not None and status.disk.source == "capacity":
                # capacity mode measures by walking DATADIR: once a minute is plenty
                now = time.monotonic()
                if self._disk is None or now - self._disk[0] > 60:
                    self._disk = (now, disk_status(self.cfg))
                status.disk = self._disk[1]
            return render(self.cfg, status)

    def start(self) -> None:
        if self.httpd is None:
            self.bind()
        assert self.httpd is not None
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, name="metrics", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
