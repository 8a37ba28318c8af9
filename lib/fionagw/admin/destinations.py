"""Adding and editing destinations (config.json ``destinations``) from the Destinations page.

A destination's form is its type's (FORMS: host, port, called AE, verify for dicom; path for
folder; host, port, user, remote folder, known_hosts, key file, bandwidth for sftp; URL, CA
file, chunk size for https ...), one field per key the type really reads
(fionagw.config.destinations, registered by fionagw.send.*), each read as its kind (a whole
number, a number, true/false, a path, text; JSON for an object such as dicom's ``tls`` and
for keys of types without a form); an empty field leaves the key out (its default). The candidate
config.json is validated by ``load_config`` as `fiona check-config` does; errors come back by
field, nothing is written unless all is valid, and the previous file is kept
(``config.json.<UTC time>``). The jobs read destinations at each run, so nothing restarts. The
test of a destination runs its check() against the file as saved (not the web server's copy
loaded at its start).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fionagw.admin.form_values import number, whole_number
from fionagw.config import ConfigError, SiteConfig, load_config, read_json
from fionagw.config.destinations import destination_type_keys, destination_types

from . import audit
from .settings import GENERAL, _level, validate_config, write_with_backup

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass
class DestinationOutcome:
    errors: dict[str, str] = field(default_factory=dict)
    changed: list[str] = field(default_factory=list)
    created: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True)
class FormField:
    key: str
    label: str
    kind: str = "text"  # text, path, int, number, bool, json
    help: str = ""


# The form of each built-in type: its keys as fionagw.send.* reads them, the main ones first.
# A key a type knows but that is not listed here (a plugin type's, a new key) still gets a
# generic field (see form_fields), so no key is ever unreachable from the page.
_F = FormField
FORMS: dict[str, tuple[FormField, ...]] = {
    "dicom": (
        _F("host", "Host"), _F("port", "Port", "int", "1-65535"),
        _F("called_aetitle", "Called AE title"),
        _F("calling_aetitle", "Calling AE title", help="default: this gateway's AE title"),
        _F("verify", "Verify with C-FIND after sending", "bool"),
        _F("timeout", "Timeout (s)", "number"), _F("reconnects", "Reconnects", "int"),
        _F("associations", "Associations at once", "int", "1-16"),
        _F("max_pdu", "Max PDU (bytes)", "int"),
        _F("query_port", "Query port", "int", "default: the storage port"),
        _F("query_aetitle", "Query AE title", help="default: the called AE title"),
        _F("tls", "TLS", "json", '{"cert": ..., "key": ..., "ca": ..., "check_hostname": true}'),
    ),
    "folder": (_F("path", "Folder", "path", "relative: to the config file's folder"),),
    "sftp": (
        _F("host", "Host"), _F("port", "Port", "int", "default 22"), _F("user", "User"),
        _F("remote_dir", "Remote folder", help="default: the login folder"),
        _F("known_hosts", "known_hosts file", "path"),
        _F("key_file", "Private key file", "path"),
        _F("password_file", "Password file", "path", "instead of a key; read at each use"),
        _F("bandwidth_mb_s", "Bandwidth (MB/s)", "number", "0: unlimited"),
        _F("parallel", "Parallel transfers", "int"), _F("timeout", "Timeout (s)", "number"),
    ),
    "https": (
        _F("url", "URL", help="https://..."), _F("ca_file", "CA file", "path"),
        _F("token_file", "Token file", "path", "bearer token; read at each use"),
        _F("cert_file", "Client certificate", "path"), _F("key_file", "Client key", "path"),
        _F("chunk_mb", "Chunk size (MB)", "number", "default 64"),
        _F("max_package_gb", "Largest package (GB)", "number", "default 5"),
        _F("parallel", "Parallel uploads", "int"), _F("timeout", "Timeout (s)", "number"),
        _F("reconnects", "Reconnects", "int"),
    ),
}  # fmt: skip


def form_fields(kind: str) -> tuple[FormField, ...]:
    """The form of a destination type: only keys the type really reads, in FORMS' order,
    then any other key it knows as a generic field (JSON or text)."""
    keys = destination_type_keys(kind)
    listed = [f for f in FORMS.get(kind, ()) if f.key in keys]
    known = {f.key for f in listed}
    return tuple(listed) + tuple(FormField(k, k, "json") for k in keys if k not in known)


def _typed(f: FormField, text: str) -> Any:
    """A field's JSON value (None: leave the key out); ValueError naming the problem."""
    text = text.strip()
    if not text:
        return None
    if f.kind in ("text", "path"):
        return text
    if f.kind == "int":
        return whole_number(text)
    if f.kind == "number":
        return number(text)
    if f.kind == "bool":
        if text not in ("true", "false"):
            raise ValueError("true or false")
        return text == "true"
    return _value(text)


def types() -> dict[str, tuple[str, ...]]:
    """Every destination type and its keys."""
    return {t: destination_type_keys(t) for t in destination_types()}


def configured(cfg: SiteConfig) -> dict[str, dict[str, Any]]:
    """The destinations as config.json has them (at this site's level), by name."""
    level = _level(read_json(cfg.config_file), cfg.site)
    section = level.get("destinations")
    return dict(section) if isinstance(section, dict) else {}


def as_text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)


def _value(text: str) -> Any:
    text = text.strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def save_destination(
    cfg: SiteConfig, name: str, kind: str, form: Mapping[str, str], actor: str, new: bool
) -> DestinationOutcome:
    outcome = DestinationOutcome(created=new)
    data = read_json(cfg.config_file)
    if not isinstance(data, dict):
        raise ConfigError(cfg.config_file, "", "must hold a JSON object")
    level = _level(data, cfg.site)
    section = level.get("destinations")
    if section is None:
        section = {}
    elif not isinstance(section, dict):
        raise ConfigError(cfg.config_file, "destinations", "expected an object")
    if new:
        if not _NAME.match(name):
            outcome.errors["name"] = "1-64 letters, digits, '.', '_' or '-', from a letter or digit"
        elif name in section:
            outcome.errors["name"] = f"destination {name} exists"
        if kind not in types():
            outcome.errors["type"] = f"one of {', '.join(types())}"
        if outcome.errors:
            return outcome
        before: dict[str, Any] = {}
    elif name not in section:
        outcome.errors[GENERAL] = f"no destination {name!r} in {cfg.config_file.name}"
        return outcome
    else:
        before = section[name]
        kind = str(before.get("type", ""))
    spec: dict[str, Any] = {"type": kind}
    for f in form_fields(kind):
        try:
            value = _typed(f, str(form.get(f.key, "")))
        except ValueError as exc:
            outcome.errors[f.key] = str(exc)
            continue
        if value is not None:
            spec[f.key] = value
    if outcome.errors:
        return outcome
    outcome.changed = sorted(k for k in set(spec) | set(before) if spec.get(k) != before.get(k))
    if not outcome.changed:
        return outcome
    section[name] = spec
    level["destinations"] = section
    errors = validate_config(cfg, data, {})
    prefix = f"{GENERAL}"
    for where, problem in errors.items():
        m = re.match(rf"^(?:SITES\.[^.]+\.)?destinations\.{re.escape(name)}\.([A-Za-z_]+)", problem)
        key = m.group(1) if m and where == prefix else None
        if key and key in spec:
            outcome.errors[key] = problem.split(": ", 1)[-1]
        else:
            outcome.errors[where] = problem
    if outcome.errors:
        return outcome
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    backup = write_with_backup(cfg.config_file, text.encode("utf-8"))
    audit.record(
        cfg,
        "destination-add" if new else "destination-change",
        name,
        "destination added" if new else "destination changed",
        who=actor,
        type=kind,
        changed=outcome.changed,
        backup=backup.name,
    )
    return outcome


def fresh_config(cfg: SiteConfig) -> SiteConfig:
    """The site's configuration as the file has it now (the web server loaded its own at start)."""
    return load_config(cfg.config_file, cfg.site or None)
