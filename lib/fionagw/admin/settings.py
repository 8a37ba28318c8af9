"""Editing the site's configuration from the Settings page, without HTTP.

A change is a set of form fields (dotted keys of config.json: ``DICOMPORT``,
``receiver.allowed_ips``, ``sending.max_attempts`` ...). It is validated by the code
``fiona check-config`` runs (``load_config`` on the candidate file, and the port check when the
receiver's address changes); any error comes back by field and nothing is written. A valid
change keeps the previous file as ``config.json.<UTC timestamp>``, replaces config.json
atomically, records the changed keys (old and new values; settings hold no patient data) in
the audit trail, and remembers which supervised services must restart to apply it
(``.pids/restart-needed<SITE>.json``) until they are restarted through :func:`request_restart`,
which writes the request file ``fiona run`` polls (``.pids/restart-request<SITE>.json``).

With a SITES entry selected the change goes into that entry; otherwise into the top level.
Secrets go to the secrets file (0600) through :func:`set_secret` and are never read back.
"""

from __future__ import annotations

import json
import os
import re
import stat
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fionagw.admin.form_values import number, whole_number
from fionagw.config import ConfigError, SiteConfig, check_port_free, load_config, read_json
from fionagw.ops.atomic import copy_file_atomic, write_bytes_atomic
from fionagw.ops.perms import FILE_MODE, KEY_DIR_MODE, SECRET_MODE, make_dirs

from . import audit

RECEIVER, CLASSIFIER, WEB = "storectl", "processSingleFile", "web"  # fiona run's child names
RUN = "fionaRun"  # fiona run's own services (metrics endpoint, heartbeat POST): not a child
SERVICE_LABELS = {RECEIVER: "the DICOM receiver", CLASSIFIER: "processSingleFile", WEB: "the web pages",
                  RUN: "fiona run itself (metrics, heartbeat POST)"}  # fmt: skip
RESTARTABLE = (RECEIVER, CLASSIFIER, WEB)  # what the page can have fiona run restart
GENERAL = "_form"  # the error key of a problem that is not one field's


@dataclass(frozen=True)
class Field:
    key: str  # dotted: a FIONA key (upper case) or section.key
    label: str
    kind: str  # int, number, text, bool, list, path, choice
    restart: tuple[str, ...] = ()  # the services that read it only at start
    help: str = ""
    choices: tuple[str, ...] = ()

    @property
    def section(self) -> str:
        return self.key.split(".", 1)[0] if "." in self.key else ""

    @property
    def name(self) -> str:
        return self.key.split(".", 1)[-1]


_DAEMONS = (RECEIVER, CLASSIFIER, WEB)
SECTIONS: tuple[tuple[str, tuple[Field, ...]], ...] = (
    (
        "Receiver",
        (
            Field("DICOMAETITLE", "AE title", "text", (RECEIVER,), "1-16 characters, no \\"),
            Field("DICOMIP", "Listen address", "text", (RECEIVER,), "0.0.0.0: every interface"),
            Field("DICOMPORT", "Port", "int", (RECEIVER,), "1-65535"),
            Field("receiver.allowed_calling_aetitles", "Allowed calling AE titles", "list",
                  (RECEIVER,), "one a line or comma-separated; empty: any"),
            Field("receiver.allowed_ips", "Allowed addresses", "list", (RECEIVER,),
                  "addresses or networks (10.1.0.0/16); empty: any"),
            Field("receiver.tls_cert", "TLS certificate", "path", (RECEIVER,), "with the key"),
            Field("receiver.tls_key", "TLS key", "path", (RECEIVER,)),
            Field("receiver.tls_ca", "TLS client CA", "path", (RECEIVER,)),
            Field("receiver.max_associations", "Associations at once", "int", (RECEIVER,)),
            Field("receiver.network_timeout", "Network timeout (s)", "int", (RECEIVER,)),
        ),
    ),
    (
        "Arrival",
        (
            Field("arrival.quiet_seconds", "Quiet seconds", "int", (), "a series is complete after"),
            Field("arrival.quarantine", "Quarantine copies", "bool"),
            Field("arrival.incoming_days", "Days on the incoming list", "int"),
            Field("arrival.settle_seconds", "Settle seconds", "int"),
        ),
    ),
    (
        "Retention",
        (
            Field("retention.target_free_percent", "Target free %", "number"),
            Field("retention.min_age_hours", "Minimum age (h)", "number"),
            Field("retention.log_days", "Log days", "number"),
            Field("retention.tracker_days", "Tracker days (0: keep)", "number"),
        ),
    ),
    (
        "Sending",
        (
            Field("sending.max_attempts", "Attempts", "int"),
            Field("sending.retry_base_seconds", "First backoff (s)", "number", (), "doubles each time"),
            Field("sending.retry_max_seconds", "Longest backoff (s)", "number"),
        ),
    ),
    (
        "Logging",
        (
            Field("logging.level", "Level", "choice", _DAEMONS, "",
                  ("DEBUG", "INFO", "WARNING", "ERROR")),
            Field("logging.max_bytes", "Rotate at (bytes)", "int", _DAEMONS),
            Field("logging.backups", "Rotated files kept", "int", _DAEMONS),
        ),
    ),
    (
        "Web",
        (Field("web.session_minutes", "Session length (minutes)", "int", (WEB,), "1-1440"),),
    ),
    (
        "Metrics and heartbeat",
        (
            Field("metrics.enabled", "Serve Prometheus metrics", "bool", (RUN,)),
            Field("metrics.port", "Metrics port", "int", (RUN,)),
            Field("heartbeat.post_url", "Heartbeat POST address", "text", (RUN,), "https://...; empty: none"),
            Field("heartbeat.post_interval_seconds", "Heartbeat POST every (s)", "int", (RUN,)),
            Field("heartbeat.job_limit_s", "Kill a cron job after (s)", "int"),
        ),
    ),
    (
        # the scheduler is cron/fiona.crontab (run by cron or fiona run); its jobs read these
        # at each run, so nothing restarts. Per-job limits (heartbeat.job_limits) and the
        # workflow containers' limits stay in the file.
        "Scheduler",
        (
            Field("heartbeat.grace_seconds", "Grace before SIGKILL (s)", "number", (),
                  "a hung job or receiver gets SIGTERM, then this long"),
            Field("heartbeat.restart", "Restart a hung receiver at once", "bool"),
            Field("heartbeat.quiet_seconds", "Receiver alive without C-ECHO if active within (s)", "int"),
            Field("heartbeat.echo_timeout_s", "Receiver C-ECHO timeout (s)", "number"),
            Field("workflows.max_concurrent", "Workflow jobs at once", "int", (), "1-64"),
            Field("workflows.runtime", "Workflow container runtime", "choice", (), "",
                  ("auto", "podman", "docker")),
        ),
    ),
)  # fmt: skip
FIELDS: dict[str, Field] = {f.key: f for _, fields in SECTIONS for f in fields}


@dataclass
class Outcome:
    errors: dict[str, str] = field(default_factory=dict)  # field key (or GENERAL) -> problem
    changed: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # key -> (old, new)
    restart: list[str] = field(default_factory=list)  # services to restart to apply it
    backup: Path | None = None

    @property
    def ok(self) -> bool:
        return not self.errors


# -- reading ---------------------------------------------------------------------------------


def _level(data: dict[str, Any], site: str) -> dict[str, Any]:
    """The mapping the page edits: the SITES entry of ``site``, else the top level."""
    if site:
        sites = data.setdefault("SITES", {})
        if not isinstance(sites, dict):
            raise ConfigError("config.json", "SITES", "must be an object")
        return sites.setdefault(site, {})
    return data


def _get(level: Mapping[str, Any], key: str) -> Any:
    f = FIELDS[key]
    if f.section:
        section = level.get(f.section)
        return section.get(f.name) if isinstance(section, dict) else None
    return level.get(key)


def _effective(cfg: SiteConfig, key: str) -> Any:
    """The value in force (defaults filled in), for the field's placeholder."""
    f = FIELDS[key]
    top = {"DICOMAETITLE": cfg.aetitle, "DICOMIP": cfg.dicom_ip, "DICOMPORT": cfg.dicom_port}
    if not f.section:
        return top.get(key)
    return getattr(getattr(cfg, f.section, None), f.name, None)


def _as_text(value: Any, kind: str) -> str:
    if value is None:
        return ""
    if kind == "list":
        return "\n".join(str(v) for v in value) if isinstance(value, list | tuple) else str(value)
    if kind == "bool":
        return "true" if value else "false"
    return str(value)


def form_values(cfg: SiteConfig) -> dict[str, dict[str, str]]:
    """Every field's current text (as written in config.json, "" when not set) and the
    effective value (its placeholder)."""
    level = _level(read_json(cfg.config_file), cfg.site)
    return {
        key: {
            "value": _as_text(_get(level, key), f.kind),
            "effective": _as_text(_effective(cfg, key), f.kind),
        }
        for key, f in FIELDS.items()
    }


# -- parsing and validating --------------------------------------------------------------------


def _parse(f: Field, text: str) -> Any:
    """The JSON value of a field's text; None: remove the key (the default applies).
    ValueError with the problem for a value of the wrong type."""
    text = text.strip()
    if f.kind == "bool":
        return text == "true" if text in ("true", "false") else None
    if f.kind == "list":
        return [p.strip() for p in re.split(r"[,\n]", text) if p.strip()] or None
    if not text:
        return None
    if f.kind == "int":
        return whole_number(text)
    if f.kind == "number":
        return number(text)
    if f.kind == "choice":
        # the choices' own case (log levels upper, runtimes lower), whatever was typed
        for choice in f.choices:
            if text.lower() == choice.lower():
                return choice
        raise ValueError(f"one of {', '.join(f.choices)}")
    return text


def _set(level: dict[str, Any], f: Field, value: Any) -> None:
    if f.section:
        section = level.get(f.section)
        if not isinstance(section, dict):
            section = level[f.section] = {}
        if value is None:
            section.pop(f.name, None)
            if not section:
                level.pop(f.section)
        else:
            section[f.name] = value
    elif value is None:
        level.pop(f.key, None)
    else:
        level[f.key] = value


def _field_of(error: ConfigError) -> str:
    """The form field a ConfigError's key names (``receiver.allowed_ips``, ``SITES.X.DICOMPORT``)."""
    key = error.key
    for candidate in (key, re.sub(r"^SITES\.[^.]+\.", "", key)):
        if candidate in FIELDS:
            return candidate
        base = candidate.split("[", 1)[0]
        if base in FIELDS:
            return base
    return GENERAL


def validate_config(
    cfg: SiteConfig, data: dict[str, Any], changed: Mapping[str, Any]
) -> dict[str, str]:
    """`fiona check-config`'s checks of the candidate: load it (every section), and the port
    when the receiver's address changes. {} when valid."""
    folder = cfg.config_file.parent
    fd, tmp = tempfile.mkstemp(prefix=".config-check-", suffix=".json", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out)
        try:
            candidate = load_config(Path(tmp), cfg.site or None)
        except ConfigError as exc:
            where = _field_of(exc)
            if where == GENERAL and exc.key:
                return {where: f"{exc.key}: {exc.problem}"}
            return {where: exc.problem}
    finally:
        os.unlink(tmp)
    if {"DICOMPORT", "DICOMIP"} & set(changed):
        try:
            check_port_free(candidate)
        except ConfigError as exc:
            return {"DICOMPORT": exc.problem}
    return {}


def apply_change(cfg: SiteConfig, form: Mapping[str, str], actor: str) -> Outcome:
    """Validate the submitted fields and, when every one is valid, write config.json.
    Fields not in ``form`` are left alone; an empty field removes its key (default)."""
    outcome = Outcome()
    data = read_json(cfg.config_file)
    if not isinstance(data, dict):
        raise ConfigError(cfg.config_file, "", "must hold a JSON object")
    level = _level(data, cfg.site)
    for key, f in FIELDS.items():
        if key not in form and f.kind != "bool":
            continue
        if f.kind == "bool" and key not in form and f"{key}.present" not in form:
            continue  # a checkbox that was not on the form (absent means unchecked otherwise)
        text = form.get(key, "false" if f.kind == "bool" else "")
        try:
            new = _parse(f, text)
        except ValueError as exc:
            outcome.errors[key] = str(exc)
            continue
        old = _get(level, key)
        if f.kind == "bool" and old is None and new == _effective(cfg, key):
            continue  # an untouched checkbox showing the default: not a change
        if new != old:
            outcome.changed[key] = (old, new)
            _set(level, f, new)
    if outcome.errors or not outcome.changed:
        return outcome
    outcome.errors = validate_config(cfg, data, outcome.changed)
    if outcome.errors:
        return outcome
    outcome.backup = _write_config(cfg.config_file, data)
    outcome.restart = sorted({s for k in outcome.changed for s in FIELDS[k].restart})
    audit.record(
        cfg,
        "settings-change",
        cfg.config_file.name,
        "configuration changed",
        who=actor,
        changed={k: {"old": o, "new": n} for k, (o, n) in outcome.changed.items()},
        backup=outcome.backup.name,
    )
    _mark_restart_needed(cfg, outcome.restart)
    return outcome


def _write_config(path: Path, data: dict[str, Any]) -> Path:
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    return write_with_backup(path, text.encode("utf-8"))


def write_with_backup(path: Path, content: bytes) -> Path:
    """Keep the current file as ``<name>.<UTC timestamp>``, then replace it atomically (its
    mode kept; a new file gets 0640). Returns the backup's path (where it would be, if the
    file is new)."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    backup = path.with_name(f"{path.name}.{stamp}")
    n = 1
    while backup.exists():  # two changes in one second
        backup, n = path.with_name(f"{path.name}.{stamp}-{n}"), n + 1
    if path.exists():
        mode = stat.S_IMODE(path.stat().st_mode)
        copy_file_atomic(path, backup, mode=mode)
    else:
        mode = FILE_MODE
    write_bytes_atomic(path, content, mode=mode)
    return backup


# -- restarts ---------------------------------------------------------------------------------


def restart_needed_file(cfg: SiteConfig) -> Path:
    return cfg.paths.state_file("restart-needed")


def restart_request_file(cfg: SiteConfig) -> Path:
    """The file `fiona run` polls: a JSON list of the children to restart."""
    return cfg.paths.state_file("restart-request")


# the daemons' pid files (written at each start), to see a restart made outside the page
_PIDFILE_COMPONENT = {RECEIVER: "storescpd", CLASSIFIER: "processSingleFile"}


def _started_since(cfg: SiteConfig, name: str, since: float) -> bool:
    component = _PIDFILE_COMPONENT.get(name)
    if component is None:
        return False
    try:
        return cfg.paths.pidfile(component).stat().st_mtime > since
    except OSError:
        return False


def restart_needed(cfg: SiteConfig) -> list[str]:
    """The services a saved change waits for: until they are restarted from the page, or (the
    daemons) started anew some other way (`fiona restart`, systemd) since the change."""
    path = restart_needed_file(cfg)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        marked = path.stat().st_mtime
    except (OSError, ValueError):
        return []
    names = doc.get("services") if isinstance(doc, dict) else None
    if not isinstance(names, list):
        return []
    run_pid = _run_pid(cfg)
    return [
        n
        for n in names
        if n in SERVICE_LABELS
        and not _started_since(cfg, n, marked)
        and not (n == RUN and run_pid != doc.get("run_pid"))  # fiona run started anew
    ]


def _run_pid(cfg: SiteConfig) -> int | None:
    from fionagw.ops.status import read_run_state

    state = read_run_state(cfg)
    return int(state["pid"]) if state else None


def _write_needed(cfg: SiteConfig, names: list[str]) -> None:
    path = restart_needed_file(cfg)
    if not names:
        path.unlink(missing_ok=True)
        return
    make_dirs(path.parent)
    doc = {"services": sorted(names), "run_pid": _run_pid(cfg)}
    write_bytes_atomic(path, json.dumps(doc).encode("utf-8"))


def _mark_restart_needed(cfg: SiteConfig, names: list[str]) -> None:
    if names:
        _write_needed(cfg, sorted(set(restart_needed(cfg)) | set(names)))


def supervised(cfg: SiteConfig) -> bool:
    """Does `fiona run` serve this site (so that it can restart the services)?"""
    from fionagw.ops.status import read_run_state

    return read_run_state(cfg) is not None


def request_restart(cfg: SiteConfig, names: list[str], actor: str) -> str:
    """Ask `fiona run` to restart ``names`` now; the one-line outcome for the page.
    Without `fiona run` nothing is written and the outcome says what to run instead."""
    names = [n for n in names if n in RESTARTABLE]
    if not names:
        return "Nothing the page can restart: restart fiona run itself (systemctl restart)."
    if not supervised(cfg):
        return (
            "fiona run does not serve this site: restart the services yourself "
            "(fiona restart, or systemctl restart for systemd units)."
        )
    path = restart_request_file(cfg)
    make_dirs(path.parent)
    write_bytes_atomic(path, json.dumps(names).encode("utf-8"))
    _write_needed(cfg, [n for n in restart_needed(cfg) if n not in names])
    audit.record(cfg, "restart", ",".join(names), "services restart requested", who=actor)
    return f"Restart requested: {', '.join(SERVICE_LABELS[n] for n in names)}."


# -- secrets ----------------------------------------------------------------------------------

SECRET_KINDS = {
    "tokens": "REDCap API token (32 hexadecimal characters)",
    "deid_keys": "de-identification key of a project (at least 32 hex digits, or text)",
}
_TOKEN = re.compile(r"^[0-9A-Fa-f]{32}$")
_SECRET_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def set_secret(cfg: SiteConfig, kind: str, name: str, value: str, actor: str) -> None:
    """Set or rotate one secret in the secrets file (created 0600 when missing); the value is
    never recorded. ValueError naming the problem for a bad kind, name or value."""
    path = cfg.tracker.secrets_file
    if path is None:
        raise ValueError("no secrets file is configured (tracker.secrets_file)")
    if kind not in SECRET_KINDS:
        raise ValueError(f"unknown kind of secret {kind!r}")
    if not _SECRET_NAME.match(name):
        raise ValueError("name: 1-64 letters, digits, '.', '_' or '-'")
    value = value.strip()
    if kind == "tokens" and not _TOKEN.match(value):
        raise ValueError("a REDCap API token is 32 hexadecimal characters")
    if kind == "deid_keys" and len(value) < 16:
        raise ValueError("a de-identification key needs at least 16 characters")
    from fionagw.config import load_secrets

    try:
        doc = load_secrets(path)
    except ConfigError as exc:
        if path.exists():
            raise ValueError(str(exc)) from None
        doc = {}
    section = doc.get(kind)
    if not isinstance(section, dict):
        section = doc[kind] = {}
    rotated = name in section
    section[name] = value
    if not path.parent.exists():
        make_dirs(path.parent, KEY_DIR_MODE)
    write_bytes_atomic(path, (json.dumps(doc, indent=2) + "\n").encode("utf-8"), mode=SECRET_MODE)
    audit.record(
        cfg,
        "secret-rotate" if rotated else "secret-set",
        f"{kind}.{name}",
        "secret rotated" if rotated else "secret set",
        who=actor,
    )


def secret_names(cfg: SiteConfig) -> dict[str, list[str]]:
    """The names (never the values) of the secrets set, by kind."""
    path = cfg.tracker.secrets_file
    if path is None or not path.exists():
        return {k: [] for k in SECRET_KINDS}
    from fionagw.config import load_secrets

    try:
        doc = load_secrets(path)
    except ConfigError:
        return {k: [] for k in SECRET_KINDS}
    return {
        k: sorted(doc.get(k) or {}) if isinstance(doc.get(k), dict) else [] for k in SECRET_KINDS
    }
