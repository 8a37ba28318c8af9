"""The ``dicom`` destination's section of config.json, parsed at load (without pynetdicom).

    "research-pacs": {"type": "dicom", "host": "pacs.example.org", "port": 104,
                      "called_aetitle": "RESEARCH", "calling_aetitle": "FIONA",
                      "timeout": 30, "reconnects": 3,
                      "tls": {"cert": "client.pem", "key": "client.key", "ca": "ca.pem",
                              "check_hostname": true}}

``calling_aetitle`` defaults to the gateway's DICOMAETITLE; ``tls`` is optional. The sending
itself (pynetdicom, slow to import) is in dicom.py, imported only when something is sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from fionagw.config import SectionReader, SiteConfig, register_destination_type
from fionagw.send.base import one_line

if TYPE_CHECKING:
    import ssl

    from fionagw.send.dicom import DicomDestination

KEYS = ("host", "port", "called_aetitle", "calling_aetitle", "tls", "timeout", "reconnects")
TLS_KEYS = ("cert", "key", "ca", "check_hostname")


@dataclass(frozen=True)
class TlsSettings:
    # verifies the peer's certificate (and its name, unless check_hostname is off)
    context: ssl.SSLContext
    server_name: str  # the host as configured: SNI and the name checked


@dataclass(frozen=True)
class DicomSettings:
    name: str
    host: str
    port: int
    called_aetitle: str
    calling_aetitle: str
    tls: TlsSettings | None = None
    timeout: float = 30.0
    reconnects: int = 3
    type: ClassVar[str] = "dicom"

    def destination(self) -> DicomDestination:
        from fionagw.send.dicom import DicomDestination

        return DicomDestination(
            self.name,
            self.host,
            self.port,
            self.called_aetitle,
            self.calling_aetitle,
            tls=self.tls,
            timeout=self.timeout,
            reconnects=self.reconnects,
        )


def parse_dicom(name: str, r: SectionReader, site: SiteConfig) -> DicomSettings:
    host = r.get("host", str).strip()
    if not host:
        raise r.error("host", "empty")
    port = r.port("port")
    reconnects = r.get("reconnects", int, 3)
    if reconnects < 0:
        raise r.error("reconnects", f"must not be negative, got {reconnects}")
    return DicomSettings(
        name,
        host,
        port,
        r.aetitle("called_aetitle"),
        r.aetitle("calling_aetitle", site.aetitle),
        tls=_tls_settings(r, host),
        timeout=r.positive_number("timeout", 30.0),
        reconnects=reconnects,
    )


def _tls_settings(r: SectionReader, host: str) -> TlsSettings | None:
    if r.data.get("tls") is None:
        return None
    import ssl  # only for sites with TLS peers: every program loads the config

    t = r.section("tls")
    t.reject_unknown(TLS_KEYS)
    cert, key, ca = t.path("cert"), t.path("key"), t.path("ca")
    check_hostname = t.get("check_hostname", bool, True)
    if bool(cert) != bool(key):
        raise t.error("cert" if key else "key", "cert and key must be given together")
    for name, p in (("cert", cert), ("key", key), ("ca", ca)):
        if p is not None and not p.is_file():
            raise t.error(name, f"file not found: {p}")
    try:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca) if ca else None)
    except (ssl.SSLError, OSError) as exc:
        raise t.error("ca", f"cannot load CA certificates: {one_line(exc)}") from None
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = check_hostname
    if cert and key:
        try:
            ctx.load_cert_chain(str(cert), str(key))
        except (ssl.SSLError, OSError) as exc:
            raise t.error("cert", f"cannot load the certificate and key: {one_line(exc)}") from None
    return TlsSettings(ctx, host)


register_destination_type(DicomSettings.type, KEYS, parse_dicom)
