"""The protocol-neutral part of sending: what a destination is and what a send returns.

A destination type (dicom, folder; later sftp, https) has two halves: its settings, parsed and
validated by load_config through :func:`fionagw.config.register_destination_type` (a light
module: every program loads the config), and a :class:`Destination` subclass that does the
sending, built from the settings by their ``destination()`` when something is sent.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from fionagw.config import SendingSettings, SiteConfig

if TYPE_CHECKING:
    from fionagw.send.verify import Verification


def one_line(text: object, limit: int = 200) -> str:
    """``text`` as one line of at most ``limit`` characters (peers' messages can be long)."""
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 3] + "..."


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

    def __init__(self, name: str) -> None:
        self.name = name

    @abstractmethod
    def send_study(self, files: Sequence[Path], context: SendContext) -> SendResult:
        """Deliver ``files`` (one study). Never raises for a delivery problem: see SendResult."""

    def verify(self, study_uid: str, expected: Mapping[str, Sequence[str]]) -> Verification | None:
        """What the destination really holds of a sent study (``study_uid`` de-identified;
        ``expected``: series UID -> SOP Instance UIDs sent); None when this destination
        cannot be asked (a folder, or verification switched off)."""
        return None

    @abstractmethod
    def check(self) -> str:
        """Prove the destination is usable now: a one-line description, or SendError."""

    @abstractmethod
    def describe(self) -> str:
        """One line for status pages: type and address, no secrets."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}: {self.describe()}>"


def load_destinations(cfg: SiteConfig) -> dict[str, Destination]:
    """The working destinations of the site by name (their settings: ``cfg.destinations``)."""
    return {name: settings.destination() for name, settings in cfg.destinations.items()}


def load_sending(cfg: SiteConfig) -> SendingSettings:
    """config.json ``sending`` (``cfg.sending``): the retry policy of anonymizeAndSend."""
    return cfg.sending
