"""The Tracker interface: what the cron jobs and web pages need from REDCap or its local stand-in.

Two backends implement it: ``local`` (SQLite under DATADIR, the embedded default) and
``redcap`` (FIONA's REDCap projects over the API). Both hold the same records (see
records.py), so a site can move from one to the other.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable

from fionagw.config.projects import Project
from fionagw.tracking.records import (
    CouplingEntry,
    ImagingRecord,
    IncomingStudy,
    PacsCheck,
    RoutingRule,
    Series,
    Study,
    Transfer,
    WorkflowOutput,
)


class TrackerError(Exception):
    """A tracker operation failed; str() is one line that names the store and never holds PHI."""


def transfer_done(t: Transfer) -> bool:
    """Sent without error (FIONA: transfers_complete 2 and a transfer_date)."""
    from fionagw.tracking.records import COMPLETE_OK, ERROR_ANONYMIZATION, ERROR_SEND

    return (
        t.transfers_complete == COMPLETE_OK
        and bool(t.transfer_date)
        and not t.transfer_error & {ERROR_ANONYMIZATION, ERROR_SEND}
    )


def last_activity(st: IncomingStudy) -> float | None:
    """Epoch seconds of the newest date on a study (arrival, requests, transfers); None if none parses."""
    import time

    from fionagw.tracking.records import DATE_FORMAT

    stamps = []
    for text in (
        st.study.study_arrival_date,
        *(t.transfer_requested_date for t in st.transfers),
        *(t.transfer_date for t in st.transfers),
    ):
        try:
            stamps.append(time.mktime(time.strptime(text.strip()[:16], DATE_FORMAT)))
        except (ValueError, AttributeError):
            continue
    return max(stamps) if stamps else None


def prunable(st: IncomingStudy, horizon: float) -> bool:
    """Tracker retention's rule: nothing happened since ``horizon`` and every transfer is done
    (a pending or failed request keeps the study; so does a study of unknown age)."""
    last = last_activity(st)
    return last is not None and last < horizon and all(transfer_done(t) for t in st.transfers)


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
    def request_transfer(
        self, study_uid: str, project: str, name: str, event: str = "", requested_date: str = ""
    ) -> Transfer | None:
        """Add a transfer request; None when an identical (project, name, event) exists."""

    @abstractmethod
    def transfers(self, study_uid: str | None = None, project: str | None = None) -> list[Transfer]:
        """Transfer requests, oldest first, optionally of one study or one project."""

    @abstractmethod
    def update_transfer(self, transfer: Transfer) -> None:
        """Write the result fields of a request (transfer_date, errors, mapped UID, ...)."""

    @abstractmethod
    def record_imaging(self, project: Project, participant: str, record: ImagingRecord) -> None:
        """Mirror a sent study into the project's imaging records (same mapped UID: updated)."""

    @abstractmethod
    def imaging(self, project: str, participant: str | None = None) -> list[ImagingRecord]:
        """The imaging records of a project (optionally one participant)."""

    @abstractmethod
    def record_pacs_check(self, check: PacsCheck) -> None:
        """Store what the research PACS holds of a transfer (WhatIsInIDS7; replaces the
        transfer's previous check)."""

    @abstractmethod
    def pacs_checks(self, study_uid: str | None = None) -> list[PacsCheck]:
        """The PACS checks of one study's transfers, or of all."""

    # -- Workflows ---------------------------------------------------------------------

    @abstractmethod
    def record_workflow_output(self, output: WorkflowOutput) -> None:
        """Store a job's output.json (a job run again replaces its record)."""

    @abstractmethod
    def workflow_outputs(self, study_uid: str | None = None) -> list[WorkflowOutput]:
        """The stored outputs, of one study or all, oldest first."""

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

    def prune_studies(self, horizon: float, *, dry_run: bool = False) -> list[str]:
        """Delete studies (with their series and transfers) that are :func:`prunable` at
        ``horizon`` (epoch seconds); return their UIDs. Backends without it refuse."""
        raise TrackerError(f"{self.name}: deleting old studies is not supported")

    def close(self) -> None:  # noqa: B027 - optional for backends
        """Release connections."""
