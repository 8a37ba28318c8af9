"""The Tracker interface: what the cron jobs and web pages need from REDCap or its local stand-in.

Two backends implement it: ``local`` (SQLite under DATADIR, the embedded default) and
``redcap`` (FIONA's REDCap projects over the API). Both hold the same records (see
records.py), so a site can move from one to the other.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable

from fionagw.tracking.projects import Project
from fionagw.tracking.records import (
    CouplingEntry,
    IncomingStudy,
    RoutingRule,
    Series,
    Study,
    Transfer,
)


class TrackerError(Exception):
    """A tracker operation failed; str() is one line that names the store and never holds PHI."""


class Tracker(ABC):
    name = "tracker"

    # -- Incoming ----------------------------------------------------------------------

    @abstractmethod
    def get_studies(self, uids: Iterable[str]) -> dict[str, IncomingStudy]:
        """The studies among ``uids`` that the tracker has, with series and transfers."""

    @abstractmethod
    def save_study(self, study: Study, new_series: list[Series]) -> list[Series]:
        """Create/update the study record and add series not yet recorded (by UID).

        Returns the series that were added, with their repeat instance numbers.
        """

    @abstractmethod
    def request_transfer(self, study_uid: str, project: str, name: str, event: str = "",
                         requested_date: str = "") -> Transfer | None:
        """Add a transfer request; None when an identical (project, name, event) exists."""

    @abstractmethod
    def transfers(self, study_uid: str | None = None, project: str | None = None) -> list[Transfer]:
        """Transfer requests, oldest first, optionally of one study or one project."""

    @abstractmethod
    def update_transfer(self, transfer: Transfer) -> None:
        """Write the result fields of a request (transfer_date, errors, mapped UID, ...)."""

    # -- configuration projects ----------------------------------------------------------

    @abstractmethod
    def projects(self) -> dict[str, Project]:
        """Research projects by name (DataTransferProjects)."""

    @abstractmethod
    def routing_rules(self) -> list[RoutingRule]:
        """Active and inactive routing rules (Routing)."""

    @abstractmethod
    def coupling_entries(self, valid_days: int = 14) -> list[CouplingEntry]:
        """Coupling-list entries made in the last ``valid_days`` days (CouplingList)."""

    @abstractmethod
    def add_coupling_entries(self, entries: list[CouplingEntry]) -> int:
        """Store all entries or none; return how many were stored."""

    @abstractmethod
    def autoid_lookup(self, project: str, key: str) -> str | None:
        """The participant ID AutoID gave this (hashed) patient in ``project``, if any."""

    @abstractmethod
    def autoid_values(self, project: str) -> set[str]:
        """Every participant ID AutoID has handed out in ``project``."""

    @abstractmethod
    def autoid_store(self, project: str, key: str, value: str) -> str:
        """Record key -> value; if another process stored a value first, return that one."""

    def close(self) -> None:  # noqa: B027 - optional for backends
        """Release connections."""
