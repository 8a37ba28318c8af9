"""The "web" section of config.json: where and how `fiona web` serves the pages.

    "web": {"enabled": true, "host": "127.0.0.1", "port": 8080, "tls_cert": "", "tls_key": "",
            "session_minutes": 60, "max_upload_mb": 2048}

LDAP login is not built yet: a "web.ldap" key is refused with a clear error rather than ignored.

Every bad value raises ConfigError (one line: file, key, problem).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path

from fionagw.config import ConfigError, SiteConfig, _Reader


@dataclass(frozen=True)
class WebSettings:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 8080
    tls_cert: Path | None = None
    tls_key: Path | None = None
    session_minutes: int = 60  # idle time after which a session ends
    max_upload_mb: int = 2048

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}/"


def web_settings(cfg: SiteConfig) -> WebSettings:
    """Parse and validate ``cfg.raw["web"]`` (all keys optional)."""
    file = cfg.config_file
    r = _Reader(file, cfg.raw).section("web")
    host = r.get("host", str, WebSettings.host)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        try:
            socket.getaddrinfo(host, None)
        except OSError:
            raise ConfigError(
                file, "web.host", f"not an IP address or resolvable host name: {host!r}"
            ) from None
    port = r.get("port", int, WebSettings.port, what="an integer port 1-65535")
    if not 1 <= port <= 65535:
        raise ConfigError(file, "web.port", f"port must be 1-65535, got {port}")
    cert, key = r.path("tls_cert"), r.path("tls_key")
    if bool(cert) != bool(key):
        raise ConfigError(file, "web.tls_cert", "tls_cert and tls_key must be given together")
    for name, p in (("tls_cert", cert), ("tls_key", key)):
        if p is not None and not p.is_file():
            raise ConfigError(file, f"web.{name}", f"file not found: {p}")
    minutes = r.get("session_minutes", int, WebSettings.session_minutes)
    if not 1 <= minutes <= 24 * 60:
        raise ConfigError(file, "web.session_minutes", f"expected 1-1440 minutes, got {minutes}")
    upload = r.get("max_upload_mb", int, WebSettings.max_upload_mb)
    if upload < 1:
        raise ConfigError(file, "web.max_upload_mb", f"expected at least 1, got {upload}")
    if r.data.get("ldap"):
        raise ConfigError(
            file, "web.ldap", "LDAP login is not supported yet: use local accounts (fiona user add)"
        )
    unknown = sorted(
        set(r.data)
        - {
            "enabled",
            "host",
            "port",
            "tls_cert",
            "tls_key",
            "session_minutes",
            "max_upload_mb",
            "ldap",
        }
    )
    if unknown:
        raise ConfigError(
            file,
            f"web.{unknown[0]}",
            "unknown key (known: enabled, host, port, tls_cert, "
            "tls_key, session_minutes, max_upload_mb)",
        )
    return WebSettings(
        enabled=r.get("enabled", bool, True),
        host=host,
        port=port,
        tls_cert=cert,
        tls_key=key,
        session_minutes=minutes,
        max_upload_mb=upload,
    )
