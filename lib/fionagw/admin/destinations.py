"""Adding and editing destinations (config.json ``destinations``) from the Destinations page.

A destination's form has one field per key its type knows (fionagw.config.destinations); a
field's text is read as JSON when it is JSON (numbers, true/false, an object such as ``tls``)
and as a string otherwise; an empty field leaves the key out (its default). The candidate
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
    for key in destination_type_keys(kind):
        value = _value(form.get(key, ""))
        if value is not None:
            spec[key] = value
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
