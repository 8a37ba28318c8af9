"""Load and validate config.json (FIONA keys plus ours) for one site.

FIONA keys are upper case (DATADIR, DICOMIP, DICOMPORT, DICOMAETITLE, PROCESSING_USER,
SITES); keys we add are lower-case sections ("receiver", "logging", "web", "destinations",
...; see sections.py and destinations.py). A site from SITES overrides the top-level keys it
names. With the local tracker, projects.yml is validated here too (the tracker reads it again
when it runs, so an edit needs no restart). Every problem raises ConfigError, whose text is
one line naming the file, the key and what is wrong.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fionagw.config.destinations import DestinationSettings, parse_destinations
from fionagw.config.errors import ConfigError, ConfigWarning
from fionagw.config.notifications import NotificationSettings, parse_notifications
from fionagw.config.qc import QcSettings, parse_qc
from fionagw.config.reader import SectionReader, read_json
from fionagw.config.sections import (
    ArrivalSettings,
    HeartbeatSettings,
    LoggingSettings,
    MetricsSettings,
    ReceiverSettings,
    RetentionSettings,
    SendingSettings,
    TrackerSettings,
    WebSettings,
    parse_arrival,
    parse_heartbeat,
    parse_logging,
    parse_metrics,
    parse_receiver,
    parse_retention,
    parse_sending,
    parse_tracker,
    parse_web,
)
from fionagw.config.workflows import WorkflowsSettings, parse_workflows
from fionagw.ops.perms import group_id
from fionagw.paths import CONFIG_DIR, SitePaths

DEFAULT_CONFIG = CONFIG_DIR / "config.json"

# The keys a config.json may have; any other is warned about (not fatal: a FIONA config may
# carry keys of programs we do not have). Our sections' keys are their dataclasses' fields.
OUR_KEYS = (
    "DATADIR",
    "DICOMIP",
    "DICOMPORT",
    "DICOMAETITLE",
    "PROCESSING_USER",
    "CLASSIFY_RULES",
    "FIFO",
    "DATADIR_GROUP",
    "destinations",
    "workflows",
    "Streams",
    "notifications",
    "pacs",  # query/retrieve sources (config/pacs.py, read by the programs that use them)
    "exports",  # Exports (export/settings.py, read by the programs that use it)
)
# FIONA's keys that we do not use (scanner, MPPS, upload, PHP web and REDCap settings)
FIONA_ONLY_KEYS = (
    "SCANNERIP",
    "SCANNERPORT",
    "SCANNERAETITLE",
    "SCANNERTYPE",
    "OTHERSCANNER",
    "MPPSPORT",
    "MPPSMODE",
    "SERVERUSER",
    "DAICSERVER",
    "PFILEDIR",
    "LOCALTIMEZONE",
    "CONNECTION",
    "PROJECTTOKEN",
    "SUBJECTID",
    "HIDEPATTERN",
    "WEBPROXY",
    "WEBPROXYPORT",
    "Authentication",
)
SECTIONS: dict[str, type] = {
    "receiver": ReceiverSettings,
    "logging": LoggingSettings,
    "arrival": ArrivalSettings,
    "tracker": TrackerSettings,
    "retention": RetentionSettings,
    "heartbeat": HeartbeatSettings,
    "metrics": MetricsSettings,
    "web": WebSettings,
    "sending": SendingSettings,
    "qc": QcSettings,
}
SITE_KEYS = (*OUR_KEYS, *FIONA_ONLY_KEYS, *SECTIONS)  # what a SITES entry may set
TOP_KEYS = (*SITE_KEYS, "SITES")


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
    web: WebSettings = field(default_factory=WebSettings)
    sending: SendingSettings = field(default_factory=SendingSettings)
    destinations: Mapping[str, DestinationSettings] = field(default_factory=dict)
    qc: QcSettings = field(default_factory=QcSettings)  # QC rules of REDCap projects by name
    workflows: WorkflowsSettings = field(default_factory=WorkflowsSettings)
    notifications: NotificationSettings = field(default_factory=NotificationSettings)
    # The config object as read (the site's SITES entry merged in), only to show the file on
    # the Settings page (masked). Programs use the typed sections above.
    source: Mapping[str, Any] = field(repr=False, default_factory=dict)
    # What is wrong but does not stop a program (unknown keys): check-config prints them,
    # daemons and `fiona run` log them once at start.
    warnings: tuple[ConfigWarning, ...] = ()

    def log_warnings(self, log: logging.Logger) -> None:
        """Log what check-config warns about: once, when a long-running program starts (the
        daemons, `fiona run`, `fiona web`; cron jobs start every minute and leave it to them)."""
        for warning in self.warnings:
            log.warning(
                "config warning",
                extra={"file": warning.file, "key": warning.key, "problem": warning.problem},
            )

    @property
    def label(self) -> str:
        """Suffix FIONA appends to pid and log names for a site ("" for the default)."""
        return self.site


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """--config, else $FIONA_CONFIG, else the checkout's config/config.json."""
    return Path(explicit or os.environ.get("FIONA_CONFIG") or DEFAULT_CONFIG).resolve()


def _site_data(
    file: Path, site: str | None, warnings: list[ConfigWarning]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The top-level object with the SITES entry of ``site`` merged over it, and that entry;
    unknown keys of both go to ``warnings``."""
    data = read_json(file)
    if not isinstance(data, dict):
        raise ConfigError(file, "", "top level must be a JSON object")
    top = SectionReader(file, data, warnings=warnings)
    top.warn_unknown(TOP_KEYS)
    sites = top.get("SITES", dict, {})
    merged = dict(data)
    entry: dict[str, Any] = {}
    if site:
        if site not in sites:
            known = ", ".join(sorted(sites)) or "none defined"
            raise ConfigError(file, f"SITES.{site}", f"no such site (known: {known})")
        if not isinstance(sites[site], dict):
            raise ConfigError(file, f"SITES.{site}", "expected an object")
        entry = sites[site]
        SectionReader(file, entry, f"SITES.{site}.", warnings=warnings).warn_unknown(SITE_KEYS)
        merged.update(entry)
    return merged, entry


def _field_names(settings: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(settings))


def load_config(path: str | os.PathLike[str] | None = None, site: str | None = None) -> SiteConfig:
    """Load config.json, merge the SITES entry for ``site``, validate, return the result."""
    file = config_path(path)
    warnings: list[ConfigWarning] = []
    merged, entry = _site_data(file, site, warnings)
    r = SectionReader(file, merged, warnings=warnings)

    def section(key: str) -> SectionReader:
        """A section's reader, named as where it was written (SITES.<site>.key when the site
        entry sets it); its unknown keys are warned about."""
        where = f"SITES.{site}." if key in entry else ""
        sec = SectionReader(file, r.get(key, dict, {}), f"{where}{key}.", warnings=warnings)
        if SECTIONS[key] not in (
            WebSettings,
            SendingSettings,
            QcSettings,
        ):  # these refuse unknown keys
            sec.warn_unknown(_field_names(SECTIONS[key]))
        return sec

    datadir = r.path("DATADIR", ...)
    assert datadir is not None
    dicom_ip = r.host("DICOMIP")
    port = r.port("DICOMPORT")
    aet = r.aetitle("DICOMAETITLE")
    receiver = parse_receiver(section("receiver"))
    logging_settings = parse_logging(section("logging"))
    arrival = parse_arrival(section("arrival"))
    tracker = parse_tracker(section("tracker"))
    retention = parse_retention(section("retention"))
    heartbeat = parse_heartbeat(section("heartbeat"))
    metrics = parse_metrics(section("metrics"))
    rules = r.path("CLASSIFY_RULES", "classifyRules.json")
    assert rules is not None
    if not rules.is_file():
        raise r.error("CLASSIFY_RULES", f"file not found: {rules}")
    web = parse_web(section("web"))
    sending = parse_sending(section("sending"))
    qc = parse_qc(section("qc"))

    cfg = SiteConfig(
        config_file=file,
        site=site or "",
        datadir=datadir,
        dicom_ip=dicom_ip,
        dicom_port=port,
        aetitle=aet,
        processing_user=r.get("PROCESSING_USER", str, ""),
        classify_rules=rules,
        receiver=receiver,
        logging=logging_settings,
        arrival=arrival,
        tracker=tracker,
        paths=SitePaths(datadir, site or "", r.path("FIFO"), _datadir_group(r)),
        retention=retention,
        heartbeat=heartbeat,
        metrics=metrics,
        web=web,
        sending=sending,
        qc=qc,
        source=merged,
    )
    # destination types may use the site's other settings (the AE title, the outbox)
    cfg = dataclasses.replace(cfg, destinations=parse_destinations(r, cfg))
    cfg = dataclasses.replace(cfg, workflows=parse_workflows(r, cfg.destinations))
    cfg = dataclasses.replace(cfg, notifications=parse_notifications(r, cfg.destinations))
    _check_projects(cfg, warnings)
    return dataclasses.replace(cfg, warnings=tuple(dict.fromkeys(warnings)))


def _datadir_group(r: SectionReader) -> str:
    """DATADIR_GROUP: an existing group, or "" (the owner's primary group, nothing shared)."""
    name = r.get("DATADIR_GROUP", str, "")
    if name:
        try:
            group_id(name)
        except KeyError:
            raise r.error("DATADIR_GROUP", f"no such group: {name!r}") from None
    return name


def _check_projects(cfg: SiteConfig, warnings: list[ConfigWarning]) -> None:
    """The local tracker's projects.yml: valid, and naming only configured destinations."""
    if cfg.tracker.backend != "local" or cfg.tracker.projects_file is None:
        return  # the redcap tracker's projects live in REDCap, read when it runs
    from fionagw.config.projects import ProjectsError, load_projects  # PyYAML: only when used

    projects, _ = load_projects(cfg.tracker.projects_file, warnings)
    for project in projects.values():
        if project.destination and project.destination not in cfg.destinations:
            raise ProjectsError(
                cfg.tracker.projects_file,
                f"projects.{project.name}.destination",
                f"unknown destination {project.destination!r} (config.json destinations: "
                f"{', '.join(sorted(cfg.destinations)) or 'none'})",
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
    from fionagw.ops.ports import port_available  # ops imports config: not at module level

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
    except (FileNotFoundError, NotADirectoryError):  # DATADIR under a file: check_datadir says so
        return True
