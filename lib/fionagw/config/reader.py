"""Typed access to a parsed configuration mapping (a config.json section, a projects.yml entry).

Every bad value raises ConfigError (or the subclass the reader was given) naming the file and
the dotted key, so an operator reads one line: ``file: key: problem``.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import os
import socket
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from fionagw.config.errors import ConfigError, ConfigWarning

_KIND_NAMES = {
    str: "a string",
    int: "an integer",
    dict: "an object",
    list: "a list",
    bool: "true or false",
}
PORT = "an integer port 1-65535"


def kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(_KIND_NAMES.get(k, k.__name__) for k in kinds)


def did_you_mean(key: str, known: Collection[str]) -> str:
    """`` (did you mean DICOMPORT?)`` for the known key closest to a misspelled one, or ""."""
    by_lower = {k.lower(): k for k in known}
    close = difflib.get_close_matches(key.lower(), list(by_lower), n=1, cutoff=0.6)
    return f" (did you mean {by_lower[close[0]]}?)" if close else ""


def read_json(path: Path) -> Any:
    """The parsed JSON of ``path``; ConfigError with the line and column of a syntax error."""
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


class SectionReader:
    """Typed getters over one mapping whose keys are named ``prefix + key`` in errors.

    Relative paths are resolved against the folder of ``file``. ``error`` is the ConfigError
    subclass raised (projects.yml raises ProjectsError). ``warnings`` collects what does not
    stop a program (unknown keys); the readers of sections share their parent's list.
    """

    def __init__(
        self,
        file: Path,
        data: Mapping[str, Any],
        prefix: str = "",
        error: type[ConfigError] = ConfigError,
        warnings: list[ConfigWarning] | None = None,
    ) -> None:
        self.file, self.data, self.prefix, self._error = file, data, prefix, error
        self.warnings: list[ConfigWarning] = [] if warnings is None else warnings

    def error(self, key: str, problem: str) -> ConfigError:
        """The error to raise for ``key`` of this section."""
        return self._error(self.file, self.prefix + key, problem)

    def get(
        self, key: str, kind: type | tuple[type, ...], default: Any = ..., what: str = ""
    ) -> Any:
        """The value of ``key`` if it is a ``kind``; ``default`` when absent or null (no
        default: the key is required)."""
        if key not in self.data or self.data[key] is None:
            if default is ...:
                raise self.error(key, "missing (required)")
            return default
        value = self.data[key]
        if kind is int and isinstance(value, str) and value.strip().isdigit():
            value = int(value)  # FIONA configs often quote ports
        if isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
            got = json.dumps(value, default=str)
            raise self.error(key, f"expected {what or kind_name(kind)}, got {got}")
        return value

    def section(self, key: str) -> SectionReader:
        """The reader of the object under ``key`` (empty when absent)."""
        return SectionReader(
            self.file, self.get(key, dict, {}), f"{self.prefix}{key}.", self._error, self.warnings
        )

    def path(self, key: str, default: Any = None) -> Path | None:
        value = self.get(key, str, default)
        if value in (None, ""):
            return None
        p = Path(os.path.expanduser(value))
        return p if p.is_absolute() else (self.file.parent / p).resolve()

    def str_list(self, key: str) -> tuple[str, ...]:
        value = self.get(key, list, [])
        if not all(isinstance(v, str) for v in value):
            raise self.error(key, "expected a list of strings")
        return tuple(value)

    def port(self, key: str, default: Any = ...) -> int:
        port = self.get(key, int, default, what=PORT)
        if not 1 <= port <= 65535:
            raise self.error(key, f"port must be 1-65535, got {port}")
        return port

    def host(self, key: str, default: Any = ...) -> str:
        """An IP address or a host name that resolves now."""
        host = self.get(key, str, default)
        try:
            ipaddress.ip_address(host)
        except ValueError:
            try:
                socket.getaddrinfo(host, None)
            except OSError:
                raise self.error(
                    key, f"not an IP address or resolvable host name: {host!r}"
                ) from None
        return host

    def aetitle(self, key: str, default: Any = ...) -> str:
        """A DICOM AE title, without its padding."""
        value = self.get(key, str, default).strip()
        if not 1 <= len(value) <= 16 or "\\" in value:
            raise self.error(
                key, f"an AE title has 1-16 characters and no backslash, got {value!r}"
            )
        return value

    def positive_number(self, key: str, default: float) -> float:
        """A number > 0 (timeouts and the like)."""
        value = float(self.get(key, (int, float), default))
        if value <= 0:
            raise self.error(key, f"must be positive, got {value:g}")
        return value

    def reject_unknown(
        self, known: Sequence[str], *, what: str = "", ignored: Collection[str] = ()
    ) -> None:
        """A typo must not be ignored silently: refuse the first key not in ``known``."""
        unknown = sorted(set(self.data) - set(known) - set(ignored))
        if unknown:
            of = f" for {what}" if what else ""
            hint = did_you_mean(unknown[0], known)
            raise self.error(unknown[0], f"unknown key{of}{hint} (known: {', '.join(known)})")

    def warn_unknown(self, known: Collection[str]) -> None:
        """Keys not in ``known`` are ignored with a warning naming the closest known key (a
        typo such as DICOMPORTT must not pass unnoticed). Keys starting with ``_`` are
        comments."""
        for key in sorted(k for k in self.data if k not in known and not str(k).startswith("_")):
            self.warnings.append(
                ConfigWarning(
                    self.file, self.prefix + key, f"unknown key, ignored{did_you_mean(key, known)}"
                )
            )
