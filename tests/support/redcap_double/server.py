"""The double as a real HTTP server on loopback (werkzeug, one thread per request)."""

from __future__ import annotations

import logging
import threading
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

from .app import RedcapDouble


class RunningServer:
    """A started server: ``url`` is the API URL (``http://127.0.0.1:<port>/api/``)."""

    def __init__(self, server: BaseWSGIServer, double: RedcapDouble) -> None:
        self._server = server
        self.double = double
        self.host, self.port = server.server_address[:2]
        self.url = f"http://{self.host}:{self.port}/api/"
        self._thread = threading.Thread(
            target=server.serve_forever, name=f"redcap-double:{self.port}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def serve(
    double: RedcapDouble | None = None, port: int = 0, host: str = "127.0.0.1", quiet: bool = True
) -> RunningServer:
    """Start ``double`` (a fresh one by default) on ``host:port`` (0 = any free port) in a thread."""
    double = double or RedcapDouble()
    if quiet:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server(host, port, double.app, threaded=True)
    return RunningServer(server, double)
