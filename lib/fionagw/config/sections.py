"""The lower-case sections of config.json (ours; FIONA's keys are upper case), typed.

Each section is a frozen dataclass with its defaults, and a ``parse_<section>(r)`` that reads it
from the section's reader and raises ConfigError naming the key of a bad value. Every key of
every section is optional.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from fionagw.config.reader import SectionReader


@dataclass(frozen=True)
class ReceiverSettings:
    allowed_calling_aetitles: tuple[str, ...] = ()
    allowed_ips: tuple[str, ...] = ()  # addresses or networks ("10.0.0.0/8")
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_ca: Path | None = None  # when set, the SCP requires client certificates
    max_pdu: int = 0  # 0 = unlimited: fewer, larger PDUs from the sender
    network_timeout: int = 60
    # Connections that have not yet sent their A-ASSOCIATE-RQ cannot lock senders out:
    handshake_timeout: float = 5.0  # seconds from accept to a complete A-ASSOCIATE-RQ
    max_unassociated: int = 32  # such connections in all (the oldest is closed for a new one)
    max_unassociated_per_ip: int = 4  # such connections from one address
    max_associations: int = 32  # associations at once; more are rejected (local limit)
    idle_displace_seconds: float = 10.0  # when full, one silent this long makes room
    # "flush": Success only for bytes flushed to disk (one flush per image); "os": no flush,
    # for storage that keeps acknowledged writes itself (battery-backed cache, ZFS sync=always)
    durability: str = "flush"


DURABILITY_MODES = ("flush", "os")


def parse_receiver(r: SectionReader) -> ReceiverSettings:
    receiver = ReceiverSettings(
        allowed_calling_aetitles=r.str_list("allowed_calling_aetitles"),
        allowed_ips=r.str_list("allowed_ips"),
        tls_cert=r.path("tls_cert"),
        tls_key=r.path("tls_key"),
        tls_ca=r.path("tls_ca"),
        max_pdu=r.get("max_pdu", int, 0),
        network_timeout=r.get("network_timeout", int, 60),
        handshake_timeout=float(r.get("handshake_timeout", (int, float), 5.0)),
        max_unassociated=r.get("max_unassociated", int, 32),
        max_unassociated_per_ip=r.get("max_unassociated_per_ip", int, 4),
        max_associations=r.get("max_associations", int, 32),
        idle_displace_seconds=float(r.get("idle_displace_seconds", (int, float), 10.0)),
        durability=r.get("durability", str, "flush"),
    )
    if receiver.durability not in DURABILITY_MODES:
        raise r.error("durability", f"must be one of {', '.join(DURABILITY_MODES)}")
    for key in (
        "handshake_timeout",
        "max_unassociated",
        "max_unassociated_per_ip",
        "max_associations",
        "idle_displace_seconds",
    ):
        if getattr(receiver, key) <= 0:
            raise r.error(key, "must be greater than 0")
    for net in receiver.allowed_ips:
        try:
            ipaddress.ip_network(net, strict=False)
        except ValueError:
            raise r.error("allowed_ips", f"not an address or network: {net!r}") from None
    if bool(receiver.tls_cert) != bool(receiver.tls_key):
        raise r.error("tls_cert", "tls_cert and tls_key must be given together")
    for key in ("tls_cert", "tls_key", "tls_ca"):
        p = getattr(receiver, key)
        if p is not None and not p.is_file():
            raise r.error(key, f"file not found: {p}")
    return receiver


@dataclass(frozen=True)
class LoggingSettings:
    level: str = "INFO"
    max_bytes: int = 10 * 1024 * 1024
    backups: int = 5


def parse_logging(r: SectionReader) -> LoggingSettings:
    level = r.get("level", str, "INFO").upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise r.error("level", f"expected DEBUG, INFO, WARNING or ERROR, got {level!r}")
    return LoggingSettings(
        level=level,
        max_bytes=r.get("max_bytes", int, LoggingSettings.max_bytes),
        backups=r.get("backups", int, LoggingSettings.backups),
    )


@dataclass(frozen=True)
class ArrivalSettings:
    quiet_seconds: int = 16  # a job file untouched this long means the series/study is complete
    quarantine: bool = True  # write quarantine/<Study>_<Series>.tgz/.md5sum/.json
    incoming_days: int = 7  # how long a study stays on the incoming list (Assign page)
    settle_seconds: int = (
        60  # populateIncoming: a series JSON unchanged this long is complete (FIONA: 60)
    )


def parse_arrival(r: SectionReader) -> ArrivalSettings:
    d = ArrivalSettings
    arrival = ArrivalSettings(
        quiet_seconds=r.get("quiet_seconds", int, d.quiet_seconds),
        quarantine=r.get("quarantine", bool, d.quarantine),
        incoming_days=r.get("incoming_days", int, d.incoming_days),
        settle_seconds=r.get("settle_seconds", int, d.settle_seconds),
    )
    if arrival.quiet_seconds < 1:
        raise r.error("quiet_seconds", f"must be at least 1, got {arrival.quiet_seconds}")
    return arrival


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


def parse_tracker(r: SectionReader) -> TrackerSettings:
    backend = r.get("backend", str, "local")
    if backend not in ("local", "redcap"):
        raise r.error("backend", f'expected "local" or "redcap", got {backend!r}')
    tracker = TrackerSettings(
        backend=backend,
        redcap_url=r.get("redcap_url", str, ""),
        secrets_file=r.path("secrets_file"),
        verify_tls=r.get("verify_tls", bool, True),
        ca_bundle=r.path("ca_bundle"),
        timeout_s=float(r.get("timeout_s", (int, float), 30.0)),
        retries=r.get("retries", int, 4),
        chunk_size=r.get("chunk_size", int, 50),
        projects_file=r.path("projects_file", "projects.yml"),
    )
    if backend == "redcap":
        if not tracker.redcap_url.startswith(("https://", "http://")):
            raise r.error("redcap_url", "the REDCap API address (https://.../api/) is required")
        if tracker.secrets_file is None:
            raise r.error("secrets_file", "required for the redcap backend (the API tokens)")
    return tracker


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


def parse_retention(r: SectionReader) -> RetentionSettings:
    d = RetentionSettings
    number = (int, float)
    retention = RetentionSettings(
        target_free_percent=float(r.get("target_free_percent", number, d.target_free_percent)),
        min_age_hours=float(r.get("min_age_hours", number, d.min_age_hours)),
        log_days=float(r.get("log_days", number, d.log_days)),
        capacity_bytes=r.get("capacity_bytes", int, 0),
        tracker_days=float(r.get("tracker_days", number, 0)),
    )
    if not 0 <= retention.target_free_percent < 100:
        raise r.error(
            "target_free_percent",
            f"expected a percentage 0-99, got {retention.target_free_percent}",
        )
    for key in ("min_age_hours", "log_days", "capacity_bytes", "tracker_days"):
        if getattr(retention, key) < 0:
            raise r.error(key, "must not be negative")
    return retention


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


def parse_heartbeat(r: SectionReader) -> HeartbeatSettings:
    d = HeartbeatSettings
    number = (int, float)
    limits = r.get("job_limits", dict, {})
    for job, seconds in limits.items():
        if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 1:
            raise r.error(
                f"job_limits.{job}", f"expected seconds (an integer >= 1), got {seconds!r}"
            )
    heartbeat = HeartbeatSettings(
        quiet_seconds=r.get("quiet_seconds", int, d.quiet_seconds),
        echo_timeout_s=float(r.get("echo_timeout_s", number, d.echo_timeout_s)),
        grace_seconds=float(r.get("grace_seconds", number, d.grace_seconds)),
        restart=r.get("restart", bool, True),
        job_limit_s=r.get("job_limit_s", int, d.job_limit_s),
        job_limits=dict(limits),
        post_url=r.get("post_url", str, ""),
        post_interval_seconds=r.get("post_interval_seconds", int, d.post_interval_seconds),
        post_token_file=r.path("post_token_file"),
        post_ca_bundle=r.path("post_ca_bundle"),
        post_timeout_s=float(r.get("post_timeout_s", number, d.post_timeout_s)),
        post_system=r.get("post_system", bool, True),
        post_services=r.get("post_services", bool, True),
        post_queues=r.get("post_queues", bool, True),
    )
    if heartbeat.post_url and not heartbeat.post_url.startswith(("https://", "http://")):
        raise r.error("post_url", f"expected an https:// address, got {heartbeat.post_url!r}")
    for key in (
        "echo_timeout_s",
        "grace_seconds",
        "job_limit_s",
        "post_interval_seconds",
        "post_timeout_s",
    ):
        if getattr(heartbeat, key) <= 0:
            raise r.error(key, "must be positive")
    return heartbeat


@dataclass(frozen=True)
class MetricsSettings:
    """The Prometheus endpoint that `fiona run` serves (also printed by `fiona metrics`)."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 9108


def parse_metrics(r: SectionReader) -> MetricsSettings:
    return MetricsSettings(
        enabled=r.get("enabled", bool, True),
        host=r.get("host", str, MetricsSettings.host),
        port=r.port("port", MetricsSettings.port),
    )


@dataclass(frozen=True)
class WebSettings:
    """Where and how `fiona web` serves the pages. LDAP login is not built yet: a "web.ldap"
    key is refused with a clear error rather than ignored."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 8080
    tls_cert: Path | None = None
    tls_key: Path | None = None
    session_minutes: int = 60  # idle time after which a session ends
    max_upload_mb: int = 2048
    group_drop_folder: Path | None = None  # the Groups page's bulk upload reads folders under it

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}/"


WEB_KEYS = ("enabled", "host", "port", "tls_cert", "tls_key", "session_minutes", "max_upload_mb")
WEB_KEYS += ("group_drop_folder",)


def parse_web(r: SectionReader) -> WebSettings:
    d = WebSettings
    host = r.host("host", d.host)
    port = r.port("port", d.port)
    cert, key = r.path("tls_cert"), r.path("tls_key")
    if bool(cert) != bool(key):
        raise r.error("tls_cert", "tls_cert and tls_key must be given together")
    for name, p in (("tls_cert", cert), ("tls_key", key)):
        if p is not None and not p.is_file():
            raise r.error(name, f"file not found: {p}")
    minutes = r.get("session_minutes", int, d.session_minutes)
    if not 1 <= minutes <= 24 * 60:
        raise r.error("session_minutes", f"expected 1-1440 minutes, got {minutes}")
    upload = r.get("max_upload_mb", int, d.max_upload_mb)
    if upload < 1:
        raise r.error("max_upload_mb", f"expected at least 1, got {upload}")
    if r.data.get("ldap"):
        raise r.error(
            "ldap", "LDAP login is not supported yet: use local accounts (fiona user add)"
        )
    r.reject_unknown(WEB_KEYS, ignored=("ldap",))
    return WebSettings(
        enabled=r.get("enabled", bool, True),
        host=host,
        port=port,
        tls_cert=cert,
        tls_key=key,
        session_minutes=minutes,
        max_upload_mb=upload,
        group_drop_folder=r.path("group_drop_folder"),
    )


@dataclass(frozen=True)
class SendingSettings:
    """Retry policy for a transfer whose send failed (the caller keeps the request queued)."""

    max_attempts: int = 5
    retry_base_seconds: float = 60.0
    retry_max_seconds: float = 3600.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based): doubling, capped."""
        return min(self.retry_base_seconds * 2 ** max(attempt - 1, 0), self.retry_max_seconds)


def parse_sending(r: SectionReader) -> SendingSettings:
    """The retry policy of anonymizeAndSend and sendFiles."""
    r.reject_unknown(("max_attempts", "retry_base_seconds", "retry_max_seconds"))
    d = SendingSettings
    s = SendingSettings(
        max_attempts=r.get("max_attempts", int, d.max_attempts),
        retry_base_seconds=float(r.get("retry_base_seconds", (int, float), d.retry_base_seconds)),
        retry_max_seconds=float(r.get("retry_max_seconds", (int, float), d.retry_max_seconds)),
    )
    if s.max_attempts < 1:
        raise r.error("max_attempts", f"must be at least 1, got {s.max_attempts}")
    if s.retry_base_seconds <= 0:
        raise r.error("retry_base_seconds", "must be positive")
    if s.retry_max_seconds < s.retry_base_seconds:
        raise r.error(
            "retry_max_seconds",
            f"must not be less than retry_base_seconds ({s.retry_base_seconds:g})",
        )
    return s
