"""In-process transport: a ``requests`` adapter that hands each request to the double's app.

Mount it on any Session (our client's, or PyCap's module-level ``redcap.request._session``)
so unmodified client code talks to the double without a socket. Injected connection drops
and timeouts come out as ``requests.ConnectionError`` / ``requests.ReadTimeout``.
"""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers
from werkzeug.test import EnvironBuilder, run_wsgi_app

from .app import SimulatedDrop, SimulatedTimeout

TEST_URL = "https://redcap.test/api/"


class DoubleAdapter(BaseAdapter):
    """Routes requests to a WSGI app; remembers the ``verify`` value of every request."""

    def __init__(self, app: Any) -> None:
        super().__init__()
        self.app = app
        self.verify_seen: list[Any] = []

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        self.verify_seen.append(verify)
        url = urlsplit(request.url or "")
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        elif not isinstance(body, bytes):  # a file-like / generator body
            body = b"".join(body) if not hasattr(body, "read") else body.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() != "content-length"}
        builder = EnvironBuilder(
            path=url.path or "/",
            query_string=url.query,
            method=request.method,
            headers=headers,
            data=body,
            base_url=f"{url.scheme}://{url.netloc}",
        )
        environ = builder.get_environ()
        builder.close()
        read_timeout = timeout[1] if isinstance(timeout, tuple) else timeout
        environ["redcap_double.inprocess"] = True
        environ["redcap_double.timeout"] = read_timeout
        try:
            app_iter, status, resp_headers = run_wsgi_app(self.app, environ, buffered=True)
        except SimulatedDrop:
            raise requests.ConnectionError(
                "('Connection aborted.', RemoteDisconnected('Remote end closed connection without response'))",
                request=request,
            ) from None
        except SimulatedTimeout:
            raise requests.ReadTimeout(
                f"Read timed out. (read timeout={read_timeout})", request=request
            ) from None
        try:
            content = b"".join(app_iter)
        finally:
            if hasattr(app_iter, "close"):
                app_iter.close()
        resp = requests.Response()
        resp.status_code = int(status.split(" ", 1)[0])
        resp.reason = status.split(" ", 1)[1] if " " in status else ""
        resp.headers = CaseInsensitiveDict(resp_headers.items())
        resp.encoding = get_encoding_from_headers(resp.headers)
        resp._content = content
        resp._content_consumed = True
        resp.raw = io.BytesIO(content)
        resp.url = request.url or ""
        resp.request = request
        resp.connection = self
        return resp

    def close(self) -> None:
        pass


def mount(session: requests.Session, app: Any, url: str = TEST_URL) -> DoubleAdapter:
    """Route ``url`` (and everything below it) of ``session`` to ``app``."""
    adapter = DoubleAdapter(app)
    session.mount(url, adapter)
    return adapter


def unmount(session: requests.Session, url: str = TEST_URL) -> None:
    session.adapters.pop(url, None)
