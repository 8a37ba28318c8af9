"""Secrets out of what the Settings page shows: masked by key name and by value.

A value is masked when its key names a secret (token, password, key, ...), when it equals or
contains any string from the tracker's secrets file, or when it is the password part of a URL.
The mask never tells the length of what it hides.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from fionagw.config import SecretsError, SiteConfig, parse_secrets

MASK = "••••••••"
_SECRET_KEY = re.compile(
    r"token|secret|passw|pwd|credential|api_?key|private|(^|_)key$|salt|hmac", re.IGNORECASE
)
_PATH_KEY = re.compile(r"(_file|_path|_dir|_bundle)$", re.IGNORECASE)
_URL_PASSWORD = re.compile(
    r"(?P<head>[a-z][a-z0-9+.-]*://[^/\s:@]+:)(?P<pw>[^@/\s]+)(?=@)", re.IGNORECASE
)
MIN_SECRET_LEN = 6


def secret_values(cfg: SiteConfig) -> tuple[set[str], str]:
    """Every string in the tracker's secrets file, and a problem reading it ("" if none)."""
    path = cfg.tracker.secrets_file
    if path is None:
        return set(), ""
    # no mode check: the values are only looked for, to hide them (the tracker checks the mode)
    try:
        data = parse_secrets(path, path.read_bytes())
    except FileNotFoundError:
        return set(), f"{path}: file not found"
    except OSError as exc:
        return set(), f"{path}: cannot read: {exc.strerror}"
    except SecretsError as exc:
        return set(), f"{path}: cannot read: {exc.problem}"
    found: set[str] = set()

    def walk(v: Any) -> None:
        if isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)
        elif isinstance(v, str) and len(v) >= MIN_SECRET_LEN:
            found.add(v)

    walk(data)
    return found, ""


def is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.search(key)) and not _PATH_KEY.search(key)


def mask_value(value: str, secrets: set[str]) -> str:
    if any(s in value for s in secrets):
        return MASK
    return _URL_PASSWORD.sub(lambda m: m.group("head") + MASK, value)


def masked(data: Any, secrets: set[str], key: str = "") -> Any:
    """A copy of ``data`` (JSON-like, dataclasses and paths allowed) with secrets masked."""
    if dataclasses.is_dataclass(data) and not isinstance(data, type):
        data = {f.name: getattr(data, f.name) for f in dataclasses.fields(data)}
    if isinstance(data, dict):
        return {k: masked(v, secrets, str(k)) for k, v in data.items()}
    if isinstance(data, list | tuple | set | frozenset):
        return [masked(v, secrets, key) for v in data]
    if data is None or isinstance(data, bool | int | float):
        return MASK if key and is_secret_key(key) and data not in (None, "", 0, False) else data
    text = str(data)
    if key and is_secret_key(key) and text:
        return MASK
    return mask_value(text, secrets)


def effective_settings(cfg: SiteConfig) -> dict[str, Any]:
    """The settings the programs use, defaults filled in (unmasked: pass through :func:`masked`)."""
    return {
        "config_file": str(cfg.config_file),
        "site": cfg.site or "(default)",
        "DATADIR": str(cfg.datadir),
        "DICOMIP": cfg.dicom_ip,
        "DICOMPORT": cfg.dicom_port,
        "DICOMAETITLE": cfg.aetitle,
        "PROCESSING_USER": cfg.processing_user,
        "CLASSIFY_RULES": str(cfg.classify_rules),
        "FIFO": str(cfg.paths.fifo),
        "receiver": cfg.receiver,
        "logging": cfg.logging,
        "arrival": cfg.arrival,
        "tracker": cfg.tracker,
        "retention": cfg.retention,
        "heartbeat": cfg.heartbeat,
        "web": cfg.web,
    }
