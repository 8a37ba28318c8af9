"""The ``dicom`` destination's section of config.json, parsed at load (without pynetdicom).

    "research-pacs": {"type": "dicom", "host": "pacs.example.org", "port": 104,
                      "called_aetitle": "RESEARCH", "calling_aetitle": "FIONA",
                      "timeout": 30, "reconnects": 3,
                      "tls": {"cert": "client.pem", "key": "client.key", "ca": "ca.pem",
                              "check_hostname": true},
                      "verify": true, "query_port": 104, "query_aetitle": "RESEARCH",
                      "associations": 1, "max_pdu": 1048576}

``calling_aetitle`` defaults to the gateway's DICOMAETITLE; ``tls`` is optional. ``verify``
(default on) asks the PACS by C-FIND after each send which instances it holds; the query goes
to ``query_aetitle``@``query_port`` (default: the storage AE and port; FIONA's IDS7 had a
separate query AE). ``associations`` > 1 sends a large study over that many associations at
once; ``max_pdu`` is the largest P-DATA PDU we send (the peer's own maximum still applies).
The sending itself (pynetdicom, slow to import) is in dicom.py, imported only when something
is sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from fionagw.config import SectionReader, SiteConfig, register_destination_type
from fionagw.send.base import one_line

if TYPE_CHECKING:
    import ssl

    from fionagw.send.dicom import DicomDestination

KEYS = (
    "host",
    "port",
    "called_aetitle",
    "calling_aetitle",
    "tls",
    "timeout",
    "reconnects",
    "verify",
    "query_port",
    "query_aetitle",
    "associations",
    "max_pdu",
)
MAX_ASSOCIATIONS = 16
DEFAULT_MAX_PDU = 1024 * 1024  # dcmtk's storescu offers 16 KiB; larger PDUs mean fewer headers
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
    verify: bool = True
    query_port: int = 0  # 0: the storage port
    query_aetitle: str = ""  # "": the called AE title
    associations: int = 1
    max_pdu: int = DEFAULT_MAX_PDU
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
            verify=self.verify,
            query_port=self.query_port or self.port,
            query_aetitle=self.query_aetitle or self.called_aetitle,
            associations=self.associations,
            max_pdu=self.max_pdu,
        )


def parse_dicom(name: str, r: SectionReader, site: SiteConfig) -> DicomSettings:
    host = r.get("host", str).strip()
    if not host:
        raise r.error("host", "empty")
    port = r.port("port")
    reconnects = r.get("reconnects", int, 3)
    if reconnects < 0:
        raise r.error("reconnects", f"must not be negative, got {reconnects}")
    associations = r.get("associations", int, 1)
    if not 1 <= associations <= MAX_ASSOCIATIONS:
        raise r.error("associations", f"must be 1-{MAX_ASSOCIATIONS}, got {associations}")
    max_pdu = r.get("max_pdu", int, DEFAULT_MAX_PDU)
    if not 4096 <= max_pdu <= 64 * 1024 * 1024:
        raise r.error("max_pdu", f"must be 4096 to 67108864 bytes, got {max_pdu}")
    return DicomSettings(
        name,
        host,
        port,
        r.aetitle("called_aetitle"),
        r.aetitle("calling_aetitle", site.aetitle),
        tls=_tls_settings(r, host),
        timeout=r.positive_number("timeout", 30.0),
        reconnects=reconnects,
        verify=r.get("verify", bool, True),
        query_port=r.port("query_port") if r.data.get("query_port") is not None else 0,
        query_aetitle=r.aetitle("query_aetitle", "") if r.data.get("query_aetitle") else "",
        associations=associations,
        max_pdu=max_pdu,
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
