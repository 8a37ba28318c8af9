"""Security headers on every response: a Content-Security-Policy without inline code, no
framing, no referrer, HSTS under TLS, and no caching of pages (CSS and JavaScript may be)."""

from __future__ import annotations

from flask import Flask, Response

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
CACHEABLE = ("text/css", "application/javascript", "text/javascript")


def install_headers(app: Flask, *, tls: bool) -> None:
    @app.after_request
    def _headers(resp: Response) -> Response:
        h = resp.headers
        h.setdefault("Content-Security-Policy", CSP)
        h["X-Frame-Options"] = "DENY"
        h["X-Content-Type-Options"] = "nosniff"
        h["Referrer-Policy"] = "no-referrer"
        h["Cross-Origin-Opener-Policy"] = "same-origin"
        if tls:
            h["Strict-Transport-Security"] = "max-age=31536000"
        if not (resp.mimetype or "").startswith(CACHEABLE):
            h.setdefault("Cache-Control", "no-store")
        return resp
