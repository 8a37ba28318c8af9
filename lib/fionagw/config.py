"""Load and validate config.json (FIONA keys plus ours) for one site.

FIONA keys are upper case (DATADIR, DICOMIP, DICOMPORT, DICOMAETITLE, PROCESSING_USER,
SITES); keys we add are lower-case sections ("receiver", "logging", ...). A site from
SITES overrides the top-level keys it names. Every problem raises ConfigError, whose
text is one line naming the file, the key and what is wrong.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fionagw.paths import CONFIG_DIR, SitePaths

DEFAULT_CONFIG = CONFIG_DIR / "config.json"


class ConfigError(Exception):
    """A configuration problem: str() is one line 'file: key: problem'."""

    def __init__(self, file: Path | str, key: str, problem: str) -> None:
        self.file, self.key, self.problem = str(file), key, problem
        super().__init__(f"{file}: {key}: {problem}" if key else f"{file}: {problem}")


@dataclass(frozen=True)
class ReceiverSettings:
    allowed_calling_aetitles: tuple[str, ...] = ()
    allowed_ips: tuple[str, ...] = ()  # addresses or networks ("10.0.0.0/8")
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_ca: Path | None = None  # when set, the SCP requires client certificates
    max_pdu: int = 0  # 0 = unlimited: fewer, larger PDUs from the sender
    network_timeout: int = 60


@dataclass(frozen=True)
class LoggingSettings:
    level: str = "INFO"
    max_bytes: int = 10 * 1024 * 1024
    backups: int = 5


@dataclass(frozen=True)
class ArrivalSettings:
    quiet_seconds: int = 16  # a job file untouched this long means the series/study is complete
    quarantine: bool = True  # write quarantine/<Study>_<Series>.tgz/.md5sum/.json
    incoming_days: int = 7  # how long a study stays on the incoming list (Assign page)
    settle_seconds: int = (
        60  # populateIncoming: a series JSON unchanged this long is complete (FIONA: 60)
    )


@dataclass(frozen=True)
class TrackerSettings:
    backend: str = "local"  # "local" (SQLite under DATADIR) or "redcap"
    redcap_url: str = ""  # e.g. https://redcap.example.org/api/
    secrets_file: Path | None = None  # JSON {"tokens": {"Incoming": "...", ...}}, mode 0600
    verify_tls: bool = True
    ca_bundle: Path | None = None
    timeout_s: float = 30.0
    retries: int = 4
    chunk_size: int = 50
    projects_file: Path | None = None  # projects.yml for the local backend


@dataclass(frozen=True)
class RetentionSettings:
    target_free_percent: float = 20.0  # clearOldFiles deletes oldest studies while less is free
    min_age_hours: float = 24.0  # never delete a study received more recently than this
    log_days: float = 90.0  # DATADIR/logs files (rotated ones too) older than this are deleted
    # 0: the free space of DATADIR's filesystem (statvfs). > 0: DATADIR has this many bytes to
    # itself (a quota on a shared disk); free = capacity - bytes under DATADIR.
    capacity_bytes: int = 0
    # Tracker studies (with series and transfers) older than this many days whose transfers are
    # all done are deleted (clearOldFiles, once a day). 0: keep forever.
    tracker_days: float = 0.0


@dataclass(frozen=True)
class HeartbeatSettings:
    quiet_seconds: int = 16  # receiver log or archive changed this recently: alive, no C-ECHO
    echo_timeout_s: float = 20.0  # FIONA: timeout 20 echoscu
    grace_seconds: float = 5.0  # SIGTERM, this long, then SIGKILL (FIONA: 5 s)
    restart: bool = True  # start the receiver again at once after killing it
    job_limit_s: int = 3600  # a cron job holding its lock longer than this is killed
    job_limits: dict[str, int] = field(default_factory=dict)  # per job, e.g. {"sendFiles": 7200}
    # Optional POST of a health report (JSON) to a central endpoint; "" switches it off.
    post_url: str = ""
    post_interval_seconds: int = 300
    post_token_file: Path | None = None  # first line: bearer token (file mode 0600)
    post_ca_bundle: Path | None = (
        None  # CA file for the endpoint's TLS certificate (default: system CAs)
    )
    post_timeout_s: float = 10.0
    post_system: bool = True  # CPU load, memory, disk
    post_services: bool = True  # daemons up/down, cron job outcomes
    post_queues: bool = True  # queue depths

    def limit_for(self, job: str) -> int:
        return self.job_limits.get(job, self.job_limit_s)


@dataclass(frozen=True)
class MetricsSettings:
    """The Prometheus endpoint that `fiona run` serves (also printed by `fiona metrics`)."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 9108


@dataclass(frozen=True)
class SiteConfig:
    config_file: Path
    site: str  # "" for the top-level (default) site
    datadir: Path
    dicom_ip: str
    dicom_port: int
    aetitle: str
    processing_user: str
    classify_rules: Path
    receiver: ReceiverSettings
    logging: LoggingSettings
    arrival: ArrivalSettings
    tracker: TrackerSettings
    paths: SitePaths
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    heartbeat: HeartbeatSettings = field(default_factory=HeartbeatSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    @property
    def label(self) -> str:
        """Suffix FIONA appends to pid and log names for a site ("" for the default)."""
        return self.site


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """--config, else $FIONA_CONFIG, else the checkout's config/config.json."""
    return Path(explicit or os.environ.get("FIONA_CONFIG") or DEFAULT_CONFIG).resolve()


def read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, "", "file not found") from None
    except OSError as exc:
        raise ConfigError(path, "", f"cannot read: {exc.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            path, "", f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None


class _Reader:
    """Typed access to one config mapping, raising ConfigError with the dotted key."""

    def __init__(self, file: Path, data: dict[str, Any], prefix: str = "") -> None:
        self.file, self.data, self.prefix = file, data, prefix

    def _fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(self.file, self.prefix + key, problem)

    def get(
        self, key: str, kind: type | tuple[type, ...], default: Any = ..., what: str = ""
    ) -> Any:
        if key not in self.data or self.data[key] is None:
            if default is ...:
                raise self._fail(key, "missing (required)")
            return default
        value = self.data[key]
        if kind is int and isinstance(value, str) and value.strip().isdigit():
            value = int(value)  # FIONA configs often quote ports
        if isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
            raise self._fail(key, f"expected {what or _kind_name(kind)}, got {json.dumps(value)}")
        return value

    def section(self, key: str) -> _Reader:
        value = self.get(key, dict, {})
        return _Reader(self.file, value, f"{self.prefix}{key}.")

    def path(self, key: str, default: Any = None) -> Path | None:
        value = self.get(key, str, default)
        if value in (None, ""):
            return None
        p = Path(os.path.expanduser(value))
        return p if p.is_absolute() else (self.file.parent / p).resolve()

    def str_list(self, key: str) -> tuple[str, ...]:
        value = self.get(key, list, [])
        if not all(isinstance(v, str) for v in value):
            raise self._fail(key, "expected a list of strings")
        return tuple(value)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {
        str: "a string",
        int: "an integer",
        dict: "an object",
        list: "a list",
        bool: "true or false",
    }
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def load_config(path: str | os.PathLike[str] | None = None, site: str | None = None) -> SiteConfig:
    """Load config.json, merge the SITES entry for ``site``, validate, return the result."""
    file = config_path(path)
    data = read_json(file)
    if not isinstance(data, dict):
        raise ConfigError(file, "", "top level must be a JSON object")
    sites = _Reader(file, data).get("SITES", dict, {})
    merged = dict(data)
    prefix = ""
    if site:
        if site not in sites:
            known = ", ".join(sorted(sites)) or "none defined"
            raise ConfigError(file, f"SITES.{site}", f"no such site (known: {known})")
        if not isinstance(sites[site], dict):
            raise ConfigError(file, f"SITES.{site}", "expected an object")
        merged.update(sites[site])
    r = _Reader(file, merged, prefix)

    datadir = r.path("DATADIR", ...)
    assert datadir is not None
    dicom_ip = r.get("DICOMIP", str)
    try:
        ipaddress.ip_address(dicom_ip)
    except ValueError:
        try:
            socket.getaddrinfo(dicom_ip, None)
        except OSError:
            raise ConfigError(
                file, "DICOMIP", f"not an IP address or resolvable host name: {dicom_ip!r}"
            ) from None
    port = r.get("DICOMPORT", int, what="an integer port 1-65535")
    if not 1 <= port <= 65535:
        raise ConfigError(file, "DICOMPORT", f"port must be 1-65535, got {port}")
    aet = r.get("DICOMAETITLE", str)
    if not 1 <= len(aet.strip()) <= 16 or "\\" in aet:
        raise ConfigError(
            file, "DICOMAETITLE", f"an AE title has 1-16 characters and no backslash, got {aet!r}"
        )

    rec = r.section("receiver")
    receiver = ReceiverSettings(
        allowed_calling_aetitles=rec.str_list("allowed_calling_aetitles"),
        allowed_ips=rec.str_list("allowed_ips"),
        tls_cert=rec.path("tls_cert"),
        tls_key=rec.path("tls_key"),
        tls_ca=rec.path("tls_ca"),
        max_pdu=rec.get("max_pdu", int, 0),
        network_timeout=rec.get("network_timeout", int, 60),
    )
    for net in receiver.allowed_ips:
        try:
            ipaddress.ip_network(net, strict=False)
        except ValueError:
            raise ConfigError(
                file, "receiver.allowed_ips", f"not an address or network: {net!r}"
            ) from None
    if bool(receiver.tls_cert) != bool(receiver.tls_key):
        raise ConfigError(file, "receiver.tls_cert", "tls_cert and tls_key must be given together")
    for key in ("tls_cert", "tls_key", "tls_ca"):
        p = getattr(receiver, key)
        if p is not None and not p.is_file():
            raise ConfigError(file, f"receiver.{key}", f"file not found: {p}")

    log = r.section("logging")
    level = log.get("level", str, "INFO").upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(
            file, "logging.level", f"expected DEBUG, INFO, WARNING or ERROR, got {level!r}"
        )
    logging_settings = LoggingSettings(
        level=level,
        max_bytes=log.get("max_bytes", int, LoggingSettings.max_bytes),
        backups=log.get("backups", int, LoggingSettings.backups),
    )

    arr = r.section("arrival")
    arrival = ArrivalSettings(
        quiet_seconds=arr.get("quiet_seconds", int, ArrivalSettings.quiet_seconds),
        quarantine=arr.get("quarantine", bool, ArrivalSettings.quarantine),
        incoming_days=arr.get("incoming_days", int, ArrivalSettings.incoming_days),
        settle_seconds=arr.get("settle_seconds", int, ArrivalSettings.settle_seconds),
    )
    if arrival.quiet_seconds < 1:
        raise ConfigError(
            file, "arrival.quiet_seconds", f"must be at least 1, got {arrival.quiet_seconds}"
        )

    tr = r.section("tracker")
    backend = tr.get("backend", str, "local")
    if backend not in ("local", "redcap"):
        raise ConfigError(file, "tracker.backend", f'expected "local" or "redcap", got {backend!r}')
    tracker = TrackerSettings(
        backend=backend,
        redcap_url=tr.get("redcap_url", str, ""),
        secrets_file=tr.path("secrets_file"),
        verify_tls=tr.get("verify_tls", bool, True),
        ca_bundle=tr.path("ca_bundle"),
        timeout_s=float(tr.get("timeout_s", (int, float), 30.0)),
        retries=tr.get("retries", int, 4),
        chunk_size=tr.get("chunk_size", int, 50),
        projects_file=tr.path("projects_file", "projects.yml"),
    )
    if backend == "redcap":
        if not tracker.redcap_url.startswith(("https://", "http://")):
            raise ConfigError(
                file, "tracker.redcap_url", "the REDCap API address (https://.../api/) is required"
            )
        if tracker.secrets_file is None:
            raise ConfigError(
                file, "tracker.secrets_file", "required for the redcap backend (the API tokens)"
            )

    ret = r.section("retention")
    retention = RetentionSettings(
        target_free_percent=float(
            ret.get("target_free_percent", (int, float), RetentionSettings.target_free_percent)
        ),
        min_age_hours=float(
            ret.get("min_age_hours", (int, float), RetentionSettings.min_age_hours)
        ),
        log_days=float(ret.get("log_days", (int, float), RetentionSettings.log_days)),
        capacity_bytes=ret.get("capacity_bytes", int, 0),
        tracker_days=float(ret.get("tracker_days", (int, float), 0)),
    )
    if not 0 <= retention.target_free_percent < 100:
        raise ConfigError(
            file,
            "retention.target_free_percent",
            f"expected a percentage 0-99, got {retention.target_free_percent}",
        )
    for key in ("min_age_hours", "log_days", "capacity_bytes", "tracker_days"):
        if getattr(retention, key) < 0:
            raise ConfigError(file, f"retention.{key}", "must not be negative")

    hb = r.section("heartbeat")
    limits = hb.get("job_limits", dict, {})
    for job, seconds in limits.items():
        if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 1:
            raise ConfigError(
                file,
                f"heartbeat.job_limits.{job}",
                f"expected seconds (an integer >= 1), got {seconds!r}",
            )
    heartbeat = HeartbeatSettings(
        quiet_seconds=hb.get("quiet_seconds", int, HeartbeatSettings.quiet_seconds),
        echo_timeout_s=float(
            hb.get("echo_timeout_s", (int, float), HeartbeatSettings.echo_timeout_s)
        ),
        grace_seconds=float(hb.get("grace_seconds", (int, float), HeartbeatSettings.grace_seconds)),
        restart=hb.get("restart", bool, True),
        job_limit_s=hb.get("job_limit_s", int, HeartbeatSettings.job_limit_s),
        job_limits=dict(limits),
        post_url=hb.get("post_url", str, ""),
        post_interval_seconds=hb.get(
            "post_interval_seconds", int, HeartbeatSettings.post_interval_seconds
        ),
        post_token_file=hb.path("post_token_file"),
        post_ca_bundle=hb.path("post_ca_bundle"),
        post_timeout_s=float(
            hb.get("post_timeout_s", (int, float), HeartbeatSettings.post_timeout_s)
        ),
        post_system=hb.get("post_system", bool, True),
        post_services=hb.get("post_services", bool, True),
        post_queues=hb.get("post_queues", bool, True),
    )
    if heartbeat.post_url and not heartbeat.post_url.startswith(("https://", "http://")):
        raise ConfigError(
            file, "heartbeat.post_url", f"expected an https:// address, got {heartbeat.post_url!r}"
        )
    for key in (
        "echo_timeout_s",
        "grace_seconds",
        "job_limit_s",
        "post_interval_seconds",
        "post_timeout_s",
    ):
        if getattr(heartbeat, key) <= 0:
            raise ConfigError(file, f"heartbeat.{key}", "must be positive")

    met = r.section("metrics")
    metrics = MetricsSettings(
        enabled=met.get("enabled", bool, True),
        host=met.get("host", str, MetricsSettings.host),
        port=met.get("port", int, MetricsSettings.port, what="an integer port 1-65535"),
    )
    if not 1 <= metrics.port <= 65535:
        raise ConfigError(file, "metrics.port", f"port must be 1-65535, got {metrics.port}")

    rules = r.path("CLASSIFY_RULES", "classifyRules.json")
    assert rules is not None
    if not rules.is_file():
        raise ConfigError(file, "CLASSIFY_RULES", f"file not found: {rules}")

    fifo = r.path("FIFO")
    return SiteConfig(
        config_file=file,
        site=site or "",
        datadir=datadir,
        dicom_ip=dicom_ip,
        dicom_port=port,
        aetitle=aet.strip(),
        processing_user=r.get("PROCESSING_USER", str, ""),
        classify_rules=rules,
        receiver=receiver,
        logging=logging_settings,
        arrival=arrival,
        tracker=tracker,
        paths=SitePaths(datadir, site or "", fifo),
        retention=retention,
        heartbeat=heartbeat,
        metrics=metrics,
        raw=merged,
    )


def check_datadir(cfg: SiteConfig) -> None:
    """Create the DATADIR layout and prove it is writable."""
    try:
        cfg.paths.create()
        probe = cfg.paths.temp / f".write-probe-{os.getpid()}"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(
            cfg.config_file,
            "DATADIR",
            f"not writable: {exc.filename or cfg.datadir}: {exc.strerror}",
        ) from None


def check_port_free(cfg: SiteConfig) -> None:
    """Fail when another program already listens on DICOMIP:DICOMPORT."""
    from fionagw.ops.ports import port_available

    problem = port_available(cfg.dicom_ip, cfg.dicom_port)
    if problem is not None:
        raise ConfigError(
            cfg.config_file,
            "DICOMPORT",
            f"{cfg.dicom_ip}:{cfg.dicom_port} is not available: {problem}",
        )


def check_user(cfg: SiteConfig) -> None:
    """FIONA's scripts refuse to run as anyone but the processing user."""
    if not cfg.processing_user:
        return
    import pwd

    me = pwd.getpwuid(os.geteuid()).pw_name
    if me != cfg.processing_user:
        raise ConfigError(
            cfg.config_file, "PROCESSING_USER", f"must run as {cfg.processing_user!r}, not {me!r}"
        )


def receiver_enabled(cfg: SiteConfig) -> bool:
    """FIONA's enabled file: a first character '0' switches the receiver off."""
    try:
        return not cfg.paths.enabled_file.read_text()[:1] == "0"
    except FileNotFoundError:
        return True
