"""Where the gateway queries and retrieves from (clinical PACS, scanners) and its MPPS receiver.

FIONA's keys name one scanner and a list of others; named PACS entries are ours:

    "SCANNERIP": "10.0.0.5", "SCANNERPORT": 104, "SCANNERAETITLE": "MRC35", "SCANNERTYPE": "SIEMENS",
    "OTHERSCANNER": [{"SCANNERIP": "10.0.0.6", "SCANNERPORT": 104, "SCANNERAETITLE": "MRC36"}],
    "MPPSPORT": 4007, "MPPSMODE": "mppson",
    "pacs": {"default": "clinical", "move_destination": "FIONA", "max_attempts": 5,
             "wait_seconds": 120, "from_mpps": false,
             "sources": {"clinical": {"host": "pacs.example.org", "port": 104,
                                      "called_aetitle": "PACS", "calling_aetitle": "FIONA",
                                      "timeout": 30, "retrieve": "move", "tls": {...}}}}

The scanner is source ``scanner``, OTHERSCANNER entries ``scanner2``, ``scanner3``, ...
``default`` is the source used when none is named (else the first named entry, else
``scanner``). ``move_destination`` is the AE title the PACS sends C-MOVE results to: our own
receiver (DICOMAETITLE by default), which the PACS must know as a modality. ``retrieve`` is
``move`` (C-MOVE, the usual) or ``get`` (C-GET on the same association, for a PACS that
cannot reach our receiver). ``from_mpps``: a COMPLETED MPPS lists its studies in
active-scans/, so moveFromScanner pulls what the scanner did not send. Read on demand by the programs that use it (load_pacs), so a
site without these keys loads as before.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fionagw.config.errors import ConfigWarning
from fionagw.config.reader import SectionReader

if TYPE_CHECKING:
    from fionagw.config.site import SiteConfig
    from fionagw.send.dicom import DicomDestination
    from fionagw.send.dicom_settings import TlsSettings

SOURCE_KEYS = ("host", "port", "called_aetitle", "calling_aetitle", "timeout", "retrieve", "tls")
PACS_KEYS = ("default", "move_destination", "max_attempts", "wait_seconds", "sources", "from_mpps")
RETRIEVE_MODES = ("move", "get")
SCANNER_TYPES = ("SIEMENS", "GE", "PHILIPS")
SCANNER_KEYS = ("SCANNERIP", "SCANNERPORT", "SCANNERAETITLE")


@dataclass(frozen=True)
class PacsSource:
    name: str
    host: str
    port: int
    called_aetitle: str
    calling_aetitle: str
    timeout: float = 30.0
    retrieve: str = "move"
    tls: TlsSettings | None = None
    scanner_type: str = ""

    @property
    def where(self) -> str:
        return f"{self.name} ({self.called_aetitle}@{self.host}:{self.port})"

    def association_peer(self) -> DicomDestination:
        """The send code's DICOM peer: one place for associating (TLS, timeouts, diagnosis)."""
        from fionagw.send.dicom import DicomDestination

        return DicomDestination(
            self.name,
            self.host,
            self.port,
            self.called_aetitle,
            self.calling_aetitle,
            tls=self.tls,
            timeout=self.timeout,
            reconnects=0,
            verify=False,
            query_port=self.port,
            query_aetitle=self.called_aetitle,
        )


@dataclass(frozen=True)
class MppsSettings:
    port: int = 0  # 0: no MPPSPORT, no receiver
    enabled: bool = False  # MPPSMODE mppson


@dataclass(frozen=True)
class PacsSettings:
    sources: dict[str, PacsSource] = field(default_factory=dict)
    default: str = ""
    move_destination: str = ""
    max_attempts: int = 5  # moveFromScanner runs before a study goes to failed-scans/
    wait_seconds: float = 120.0  # how long a retrieve waits for the moved images to be filed
    mpps: MppsSettings = field(default_factory=MppsSettings)
    from_mpps: bool = False  # a COMPLETED MPPS lists its studies in active-scans/ (FIONA/ABCD)
    # an incomplete FIONA scanner entry (many FIONA configs carry a leftover SCANNERIP):
    # skipped, and check-config says so
    warnings: tuple[ConfigWarning, ...] = ()

    def source(self, name: str = "") -> PacsSource:
        """The named source (or the default); KeyError with the known names."""
        name = name or self.default
        if not self.sources:
            raise KeyError("no PACS source configured (SCANNERIP or pacs.sources in config.json)")
        if name not in self.sources:
            known = ", ".join(sorted(self.sources)) or "none configured"
            raise KeyError(f"no PACS source {name!r} (known: {known})")
        return self.sources[name]


def _scanner(r: SectionReader, name: str, site: SiteConfig, scanner_type: str) -> PacsSource:
    return PacsSource(
        name,
        r.host("SCANNERIP"),
        r.port("SCANNERPORT"),
        r.aetitle("SCANNERAETITLE"),
        site.aetitle,
        scanner_type=scanner_type,
    )


def _named(name: str, r: SectionReader, site: SiteConfig) -> PacsSource:
    from fionagw.send.dicom_settings import _tls_settings  # the destinations' TLS, one parser

    r.reject_unknown(SOURCE_KEYS)
    host = r.get("host", str).strip()
    if not host:
        raise r.error("host", "empty")
    retrieve = r.get("retrieve", str, "move")
    if retrieve not in RETRIEVE_MODES:
        raise r.error("retrieve", f"must be one of {', '.join(RETRIEVE_MODES)}, got {retrieve!r}")
    return PacsSource(
        name,
        host,
        r.port("port"),
        r.aetitle("called_aetitle"),
        r.aetitle("calling_aetitle", site.aetitle),
        timeout=r.positive_number("timeout", 30.0),
        retrieve=retrieve,
        tls=_tls_settings(r, host),
    )


def load_pacs(site: SiteConfig) -> PacsSettings:
    """The site's PACS sources and MPPS settings from its config.json (ConfigError if wrong)."""
    r = SectionReader(site.config_file, dict(site.source))
    sources: dict[str, PacsSource] = {}
    scanner_type = str(r.data.get("SCANNERTYPE") or "").upper()
    if scanner_type and scanner_type not in SCANNER_TYPES:
        raise r.error("SCANNERTYPE", f"must be one of {', '.join(SCANNER_TYPES)}")
    warnings: list[ConfigWarning] = []

    def scanner(reader: SectionReader, name: str, kind: str) -> None:
        lacking = [k for k in SCANNER_KEYS if reader.data.get(k) in (None, "")]
        if len(lacking) == len(SCANNER_KEYS):
            return
        if lacking:
            warnings.append(
                ConfigWarning(
                    reader.file,
                    reader.prefix + "SCANNERIP",
                    f"scanner not used as a PACS source: {', '.join(lacking)} not set",
                )
            )
            return
        sources[name] = _scanner(reader, name, site, kind)

    scanner(r, "scanner", scanner_type)
    others = r.get("OTHERSCANNER", list, [])
    for n, entry in enumerate(others):
        if not isinstance(entry, dict):
            raise r.error(f"OTHERSCANNER[{n}]", "expected an object")
        scanner(SectionReader(r.file, entry, f"OTHERSCANNER[{n}]."), f"scanner{n + 2}", "")
    p = r.section("pacs")
    p.reject_unknown(PACS_KEYS)
    named = p.section("sources")
    first_named = ""
    for name in named.data:
        if name in sources:
            raise named.error(name, "the name is taken by a FIONA scanner key")
        sources[name] = _named(name, named.section(name), site)
        first_named = first_named or name
    default = p.get("default", str, "") or first_named or ("scanner" if sources else "")
    if default and default not in sources:
        raise p.error("default", f"no such source {default!r}")
    max_attempts = p.get("max_attempts", int, 5)
    if max_attempts < 1:
        raise p.error("max_attempts", f"must be at least 1, got {max_attempts}")
    mode = str(r.data.get("MPPSMODE") or "mppsoff").lower()
    if mode not in ("mppson", "mppsoff"):
        raise r.error("MPPSMODE", f"must be mppson or mppsoff, got {mode!r}")
    mpps_port = r.port("MPPSPORT") if r.data.get("MPPSPORT") not in (None, "") else 0
    return PacsSettings(
        sources,
        default,
        p.aetitle("move_destination", site.aetitle),
        max_attempts,
        p.positive_number("wait_seconds", 120.0),
        MppsSettings(mpps_port, mode == "mppson" and bool(mpps_port)),
        p.get("from_mpps", bool, False),
        tuple(warnings),
    )


def mpps_enabled(site: SiteConfig, settings: PacsSettings) -> bool:
    """MPPSMODE mppson with an MPPSPORT, and the enabled file's 2nd character not '0'."""
    if not settings.mpps.enabled:
        return False
    try:
        return site.paths.enabled_file.read_text()[1:2] != "0"
    except (FileNotFoundError, NotADirectoryError):
        return True


def describe(settings: PacsSettings) -> list[str]:
    """One line per source, for check-config and `fiona pacs sources`."""
    lines: list[Any] = []
    for s in settings.sources.values():
        mark = " (default)" if s.name == settings.default else ""
        lines.append(f"{s.where} retrieve by C-{s.retrieve.upper()}{mark}")
    return lines
