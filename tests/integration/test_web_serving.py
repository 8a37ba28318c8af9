"""`fiona web` serving: TLS with a configured certificate, one-line errors for a bad web
configuration or a port in use, and a disabled web that does not serve."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from support.site import ROOT, free_port
from support.tls import self_signed
from support.web import ADMIN, ADMIN_PASSWORD, csrf_from, serve_site, stop_web, web_config

# -- the real server: `fiona web` (gunicorn), with TLS -------------------------------------------


@pytest.mark.slow
def test_tls_serving_with_a_configured_certificate(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path, "web")
    site = serve_site(web_config(tmp_path, web={"tls_cert": str(cert), "tls_key": str(key)}))
    try:
        assert site.url.startswith("https://127.0.0.1:")
        s = requests.Session()
        s.verify = str(cert)  # the certificate is checked, not ignored
        s.trust_env = False  # (REQUESTS_CA_BUNDLE would override s.verify)
        r = s.get(site.url + "login", timeout=10)
        assert r.status_code == 200 and "Log in" in r.text
        assert r.headers["Strict-Transport-Security"] == "max-age=31536000"
        assert "Secure" in r.headers["Set-Cookie"] and "HttpOnly" in r.headers["Set-Cookie"]
        r = s.post(
            site.url + "login",
            data={"username": ADMIN, "password": ADMIN_PASSWORD, "csrf_token": csrf_from(r.text)},
            timeout=10,
        )
        assert r.status_code == 200 and r.url.startswith(site.url) and "/login" not in r.url, r.url
        assert s.get(site.url + "status/", timeout=10).status_code == 200
        # plain HTTP on the TLS port gets no page
        with pytest.raises(requests.RequestException):
            requests.get(
                site.url.replace("https://", "http://") + "login", timeout=5
            ).raise_for_status()
    finally:
        stop_web(site.proc)
    assert site.proc.returncode == 0 and not site.cfg.paths.pidfile("web").exists()


def _fiona_web(config: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fionagw.cli.fiona_web", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(ROOT / "lib")},
    )


@pytest.mark.parametrize(
    ("web", "message"),
    [
        ({"port": "eighty"}, 'web.port: expected an integer port 1-65535, got "eighty"'),
        (
            {"tls_cert": "/nonexistent/web.crt", "tls_key": "/nonexistent/web.key"},
            "web.tls_cert: file not found: /nonexistent/web.crt",
        ),
        (
            {"tls_cert": "/etc/hostname"},
            "web.tls_cert: tls_cert and tls_key must be given together",
        ),
        ({"session_minutes": 0}, "web.session_minutes: expected 1-1440 minutes, got 0"),
    ],
)
def test_bad_web_config_is_one_line(tmp_path: Path, web: dict, message: str) -> None:
    config = web_config(tmp_path, web=web)
    r = _fiona_web(config)
    assert r.returncode == 2
    assert r.stderr.strip() == f"fiona web: config error: {config}: {message}", r.stderr


def test_port_in_use_is_one_line(tmp_path: Path) -> None:
    port = free_port()
    config = web_config(tmp_path, web={"port": port})
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
        s.listen()
        r = _fiona_web(config)
    assert r.returncode == 2
    assert re.fullmatch(
        rf"fiona web: config error: {re.escape(str(config))}: web\.port: 127\.0\.0\.1:{port} "
        r"is not available: .+",
        r.stderr.strip(),
    ), r.stderr


def test_disabled_web_does_not_serve(tmp_path: Path) -> None:
    config = web_config(tmp_path, web={"enabled": False})
    r = _fiona_web(config)
    assert (
        r.returncode == 0
        and r.stderr.strip() == f"fiona web: web.enabled is false in {config}: not serving"
    )


@pytest.mark.slow
def test_no_server_product_in_the_headers(tmp_path: Path) -> None:
    """gunicorn's ``Server: gunicorn`` names the product to a prober: the header is neutral, on
    pages, on redirects of the app and on gunicorn's own answer to a malformed request."""
    site = serve_site(web_config(tmp_path))
    try:
        for path, status in (("login", 200), ("status/", 302)):
            r = requests.get(site.url + path, timeout=10, allow_redirects=False)
            assert r.status_code == status
            assert r.headers.get("Server", "") == "fiona", r.headers
        host, port = site.url.split("//")[1].rstrip("/").rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(b"GET /login HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
            answer = sock.recv(4096).decode("latin-1")
        assert answer.startswith("HTTP/1.1 400"), answer
        assert "gunicorn" not in answer.lower(), answer
    finally:
        stop_web(site.proc)
