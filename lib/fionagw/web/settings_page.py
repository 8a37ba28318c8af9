"""What the Settings page shows and does, without HTTP: the effective configuration and
config.json with secrets masked, the destinations, and one destination's check (C-ECHO, folder
write, SFTP login, HTTPS reachability) with its outcome masked too."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from fionagw.config import ConfigError, SiteConfig

from .masking import effective_settings, masked, secret_values

LOGGER = logging.getLogger(__name__)


@dataclass
class SettingsView:
    effective: str  # JSON text of the effective settings, masked
    raw: str  # JSON text of config.json as loaded, masked
    secrets_problem: str  # why the secrets file cannot be read ("" if it can)
    destinations: list[dict[str, str]]  # name, type, describe (masked)
    dest_error: str  # why the destinations cannot be loaded ("" if they can)


@dataclass
class CheckResult:
    ok: bool
    text: str  # what the check said, masked
    seconds: float


def _load_destinations(cfg: SiteConfig) -> dict[str, Any]:
    # imported when used: fionagw.send loads the client libraries of every destination type
    from fionagw.send import load_destinations

    return load_destinations(cfg)


def _destinations(cfg: SiteConfig) -> tuple[dict[str, Any], str]:
    try:
        return _load_destinations(cfg), ""
    except ConfigError as exc:
        return {}, str(exc)


def _describe(dest: Any) -> str:
    try:
        return dest.describe()
    except Exception as exc:  # noqa: BLE001 - a broken destination must not break the page
        return f"(cannot describe: {exc})"


def _json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False)


def settings_view(cfg: SiteConfig) -> SettingsView:
    secrets, secrets_problem = secret_values(cfg)
    destinations, dest_error = _destinations(cfg)
    rows = [
        {"name": n, "type": getattr(d, "type", ""), "describe": masked(_describe(d), secrets)}
        for n, d in sorted(destinations.items())
    ]
    return SettingsView(
        effective=_json(masked(effective_settings(cfg), secrets)),
        raw=_json(masked(cfg.source, secrets)),
        secrets_problem=secrets_problem,
        destinations=rows,
        dest_error=dest_error,
    )


def check_destination(cfg: SiteConfig, name: str) -> CheckResult | None:
    """Run the check of destination ``name``; None if there is no such destination.
    ConfigError when the destinations cannot be loaded."""
    dest = _load_destinations(cfg).get(name)
    if dest is None:
        return None
    secrets, _ = secret_values(cfg)
    started = time.monotonic()
    try:
        text = dest.check()
        ok = True
    except Exception as exc:  # noqa: BLE001 - SendError and any failure of a peer's client library
        text, ok = f"{type(exc).__name__}: {exc}" if not str(exc) else str(exc), False
    result = CheckResult(ok, masked(text, secrets), time.monotonic() - started)
    LOGGER.info(
        "destination checked",
        extra={
            "destination": name,
            "ok": ok,
            "seconds": round(result.seconds, 3),
            "result": result.text,
        },
    )
    return result
