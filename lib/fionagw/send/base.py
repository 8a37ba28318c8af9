"""The protocol-neutral part of sending: what a destination is, what a send returns, and how
config.json's ``destinations`` and ``sending`` sections are read.

A destination type (dicom, folder; later sftp, https) is a Destination subclass with a
``type`` name and a ``from_config`` constructor, made known with :func:`register`. Everything
a type needs from the configuration comes through a ``_Reader`` prefixed with
``destinations.<name>.``, so every config problem is one line naming the key.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, TypeVar

from fionagw.config import ConfigError, SiteConfig, _Reader

DEFAULT_DESTINATION = "research-folder"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class SendError(Exception):
    """A destination cannot be used; str() is one line without PHI."""


@dataclass(frozen=True)
class SendContext:
    """Where a de-identified study belongs; ``study_uid`` is the de-identified UID."""

    project: str
    participant: str
    event: str
    study_uid: str


@dataclass
class SendResult:
    """Outcome of one send_study. ``sent`` counts the instances the destination confirmed
    (warnings included); ``failed`` lists the instances it refused, each with a one-line
    reason; ``error`` is set when the send as a whole could not finish (peer down,
    connection lost too often): the instances neither sent nor failed were not delivered,
    and the whole study should be sent again later (sends are idempotent)."""

    sent: int = 0
    warnings: list[str] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.failed and not self.error

    def summary(self) -> str:
        """One line for logs and the tracker."""
        parts = [f"{self.sent} sent"]
        if self.warnings:
            parts.append(f"{len(self.warnings)} with warnings")
        if self.failed:
            parts.append(
                f"{len(self.failed)} failed (first: {self.failed[0][0].name}: {self.failed[0][1]})"
            )
        if self.error:
            parts.append(f"error: {self.error}")
        return "; ".join(parts)


class Destination(ABC):
    """A place a de-identified study is delivered to."""

    type: ClassVar[str]
    keys: ClassVar[frozenset[str]]  # config keys the type understands (besides "type")

    def __init__(self, name: str) -> None:
        self.name = name

    @classmethod
    @abstractmethod
    def from_config(cls, name: str, r: _Reader, cfg: SiteConfig) -> Destination:
        """Build from ``destinations.<name>``; raise ConfigError naming the key."""

    @abstractmethod
    def send_study(self, files: Sequence[Path], context: SendContext) -> SendResult:
        """Deliver ``files`` (one study). Never raises for a delivery problem: see SendResult."""

    @abstractmethod
    def check(self) -> str:
        """Prove the destination is usable now: a one-line description, or SendError."""

    @abstractmethod
    def describe(self) -> str:
        """One line for status pages: type and address, no secrets."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}: {self.describe()}>"


_TYPES: dict[str, type[Destination]] = {}
D = TypeVar("D", bound=type[Destination])


def register(cls: D) -> D:
    """Class decorator: make a destination type available under ``cls.type``."""
    _TYPES[cls.type] = cls
    return cls


def destination_types() -> list[str]:
    return sorted(_TYPES)


@dataclass(frozen=True)
class SendingSettings:
    """Retry policy for a transfer whose send failed (the caller keeps the request queued)."""

    max_attempts: int = 5
    retry_base_seconds: float = 60.0
    retry_max_seconds: float = 3600.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based): doubling, capped."""
        return min(self.retry_base_seconds * 2 ** max(attempt - 1, 0), self.retry_max_seconds)


def _builtin_folder(cfg: SiteConfig) -> dict[str, Destination]:
    folder = _TYPES["folder"]
    r = _Reader(
        cfg.config_file,
        {"type": "folder", "path": str(cfg.paths.outbox)},
        f"destinations.{DEFAULT_DESTINATION}.",
    )
    return {DEFAULT_DESTINATION: folder.from_config(DEFAULT_DESTINATION, r, cfg)}


def load_destinations(cfg: SiteConfig) -> dict[str, Destination]:
    """The destinations of config.json by name. Without a ``destinations`` key there is one,
    ``research-folder``: a folder DATADIR/outbox, so a new gateway works out of the box."""
    top = _Reader(cfg.config_file, cfg.raw)
    if cfg.raw.get("destinations") is None:
        return _builtin_folder(cfg)
    section = top.get("destinations", dict)
    result: dict[str, Destination] = {}
    for name, spec in section.items():
        key = f"destinations.{name}"
        if not _NAME.match(name):
            raise ConfigError(
                cfg.config_file, key, "a destination name has 1-64 letters, digits, '.', '_' or '-'"
            )
        if not isinstance(spec, dict):
            raise ConfigError(cfg.config_file, key, 'expected an object with a "type"')
        r = _Reader(cfg.config_file, spec, key + ".")
        kind = r.get("type", str)
        cls = _TYPES.get(kind)
        if cls is None:
            raise ConfigError(
                cfg.config_file,
                key + ".type",
                f"unknown type {kind!r} (known: {', '.join(destination_types())})",
            )
        unknown = sorted(set(spec) - cls.keys - {"type"})
        if unknown:
            raise ConfigError(
                cfg.config_file,
                f"{key}.{unknown[0]}",
                f"unknown key for a {kind} destination (known: {', '.join(sorted(cls.keys))})",
            )
        result[name] = cls.from_config(name, r, cfg)
    return result


def load_sending(cfg: SiteConfig) -> SendingSettings:
    """config.json ``sending``: the retry policy of anonymizeAndSend and sendFiles."""
    r = _Reader(cfg.config_file, cfg.raw).section("sending")
    unknown = sorted(set(r.data) - {"max_attempts", "retry_base_seconds", "retry_max_seconds"})
    if unknown:
        raise ConfigError(
            cfg.config_file,
            f"sending.{unknown[0]}",
            "unknown key (known: max_attempts, retry_base_seconds, retry_max_seconds)",
        )
    d = SendingSettings()
    s = SendingSettings(
        max_attempts=r.get("max_attempts", int, d.max_attempts),
        retry_base_seconds=float(r.get("retry_base_seconds", (int, float), d.retry_base_seconds)),
        retry_max_seconds=float(r.get("retry_max_seconds", (int, float), d.retry_max_seconds)),
    )
    if s.max_attempts < 1:
        raise ConfigError(
            cfg.config_file, "sending.max_attempts", f"must be at least 1, got {s.max_attempts}"
        )
    if s.retry_base_seconds <= 0:
        raise ConfigError(cfg.config_file, "sending.retry_base_seconds", "must be positive")
    if s.retry_max_seconds < s.retry_base_seconds:
        raise ConfigError(
            cfg.config_file,
            "sending.retry_max_seconds",
            f"must not be less than retry_base_seconds ({s.retry_base_seconds:g})",
        )
    return s


def positive_number(r: _Reader, key: str, default: float) -> float:
    """A number > 0 from ``r`` (timeouts and the like)."""
    value = float(r.get(key, (int, float), default))
    if value <= 0:
        raise r._fail(key, f"must be positive, got {value:g}")
    return value
