"""The request queue of anonymizeAndSend: FIONA's transfer request files and their retry state.

A request file ``DATADIR/transfer_requests/<name>.json`` (written by createTransferRequest /
resendProject, see routing/requests.py) stays in place until it is finished:

* done   -> ``transfers_done/<name>.json_ok_<YYYY-mm-dd_HH:MM>.log`` (FIONA's name);
* failed -> ``transfers_fail/<name>.json_fail.log`` + ``<name>.json_fail_messages.log`` holding
  ``{"request": ..., "error": ...}`` and the detail of failures.py; the request is held there
  until what it depends on changes or a data manager retries, cancels or reassigns it.

A send that failed for a reason that may pass (PACS down) keeps the request queued with its
attempts and next try time in ``transfer_requests/.state/<name>.json``, so the next cron runs
retry it with exponential backoff until ``sending.max_attempts``.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fionagw.ops.atomic import write_json_atomic
from fionagw.paths import SitePaths
from fionagw.transfers.failures import FailureRecord, remove_record, write_record

REQUIRED_KEYS = (
    "study_instance_uid",
    "transfer_project_name",
    "transfer_name",
    "redcap_repeat_instance",
)


class BadRequestFile(Exception):
    """A request file that cannot be read or lacks a key; str() names the file and the problem."""


@dataclass
class RetryState:
    attempts: int = 0
    next_try: float = 0.0
    last_error: str = ""


@dataclass
class Request:
    path: Path
    row: dict[str, Any]

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def study_uid(self) -> str:
        return str(self.row["study_instance_uid"])

    @property
    def project(self) -> str:
        return str(self.row["transfer_project_name"])

    @property
    def participant(self) -> str:
        return str(self.row["transfer_name"])

    @property
    def event(self) -> str:
        return str(self.row.get("transfer_event_name") or "")

    @property
    def instance(self) -> int:
        return int(self.row["redcap_repeat_instance"])


class RequestQueue:
    def __init__(self, paths: SitePaths) -> None:
        self.paths = paths
        self.dir = paths.transfer_requests
        self.done_dir = paths.transfers_done
        self.fail_dir = paths.transfers_fail
        self.state_dir = paths.request_state

    def pending(self) -> list[Path]:
        """Request files, oldest first (FIONA's sort put the newest first; fairness wins here)."""
        files = []
        for p in self.dir.glob("*.json"):
            try:
                files.append((p.stat().st_mtime, p.name, p))
            except FileNotFoundError:  # finished by a concurrent run between glob and stat
                continue
        return [p for _, _, p in sorted(files)]

    @staticmethod
    def read(path: Path) -> Request:
        try:
            row = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise BadRequestFile(f"{path.name}: unreadable request file: {exc}") from None
        if not isinstance(row, dict):
            raise BadRequestFile(f"{path.name}: expected a JSON object")
        missing = [k for k in REQUIRED_KEYS if row.get(k) in (None, "")]
        if missing:
            raise BadRequestFile(f"{path.name}: missing {', '.join(missing)}")
        try:
            int(row["redcap_repeat_instance"])
        except (TypeError, ValueError):
            raise BadRequestFile(f"{path.name}: redcap_repeat_instance is not a number") from None
        return Request(path, row)

    # -- retry state ---------------------------------------------------------------------------

    def _state_file(self, path: Path) -> Path:
        return self.state_dir / path.name

    def state(self, path: Path) -> RetryState:
        try:
            data = json.loads(self._state_file(path).read_text(encoding="utf-8"))
            return RetryState(
                **{k: data[k] for k in ("attempts", "next_try", "last_error") if k in data}
            )
        except (OSError, ValueError, TypeError):
            return RetryState()

    def defer(self, path: Path, state: RetryState) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self._state_file(path), asdict(state))

    # -- finishing -----------------------------------------------------------------------------

    def _clear_state(self, path: Path) -> None:
        try:
            self._state_file(path).unlink()
        except FileNotFoundError:
            pass

    def done(self, path: Path, when: float | None = None) -> Path:
        stamp = time.strftime("%Y-%m-%d_%H:%M", time.localtime(when))
        self.done_dir.mkdir(parents=True, exist_ok=True)
        target = self.done_dir / f"{path.name}_ok_{stamp}.log"
        os.replace(path, target)
        self._clear_state(path)
        remove_record(self.paths, path.name)  # an earlier failure of it is over
        return target

    def fail(self, path: Path, record: FailureRecord) -> Path:
        """Move the request into transfers_fail with its failure record."""
        target = write_record(self.paths, record, source=path)
        self._clear_state(path)
        return target

    def remove(self, name: str) -> bool:
        """Take request ``name`` out of the queue (with its retry state); True if it was queued."""
        path = self.dir / name
        self._clear_state(path)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True

    def make_due(self, name: str) -> None:
        """Forget the backoff of a queued request: the next run tries it."""
        self._clear_state(self.dir / name)
