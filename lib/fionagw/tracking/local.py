"""The local tracker: the same records as FIONA's REDCap projects, in SQLite under DATADIR.

Projects and routing rules come from projects.yml (read on each call, so edits apply to
the next cron run); Incoming, CouplingList and AutoID live in the database. Each record
is stored as JSON under its REDCap field names; the columns SQLite must index or keep
unique are real columns. Every write is one transaction, and uniqueness constraints make
concurrent jobs safe: a second identical transfer request is simply not inserted.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any

from fionagw.config.projects import Project, load_projects
from fionagw.tracking.base import Tracker, TrackerError, prunable
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
    now_text,
    to_dict,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS studies (
    uid TEXT PRIMARY KEY, data TEXT NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS series (
    study_uid TEXT NOT NULL, instance INTEGER NOT NULL, series_uid TEXT NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (study_uid, instance), UNIQUE (study_uid, series_uid));
CREATE TABLE IF NOT EXISTS transfers (
    study_uid TEXT NOT NULL, instance INTEGER NOT NULL,
    project TEXT NOT NULL, name TEXT NOT NULL, event TEXT NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (study_uid, instance), UNIQUE (study_uid, project, name, event));
CREATE INDEX IF NOT EXISTS transfers_project ON transfers (project);
CREATE TABLE IF NOT EXISTS coupling (
    record_id TEXT PRIMARY KEY, data TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS imaging (
    project TEXT NOT NULL, participant TEXT NOT NULL, mapped_uid TEXT NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (project, participant, mapped_uid));
CREATE TABLE IF NOT EXISTS pacs_checks (
    record_id TEXT PRIMARY KEY, study_uid TEXT NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS pacs_checks_study ON pacs_checks (study_uid);
CREATE TABLE IF NOT EXISTS workflow_outputs (
    record_id TEXT PRIMARY KEY, study_uid TEXT NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS autoid (
    project TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (project, key), UNIQUE (project, value));
"""


def _from_dict(cls: type, data: dict[str, Any]) -> Any:
    names = {f.name for f in fields(cls)}
    values = {k: v for k, v in data.items() if k in names}
    if cls is Transfer:
        values["transfer_error"] = set(values.get("transfer_error") or ())
    return cls(**values)


class LocalTracker(Tracker):
    name = "local tracker"

    def __init__(self, db: Path, projects_file: Path | None) -> None:
        self.db_path = db
        self.projects_file = projects_file
        db.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(db, timeout=30, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise TrackerError(f"local tracker {db}: {exc}") from None

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken up front so concurrent jobs serialize cleanly."""
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise TrackerError(f"local tracker {self.db_path}: {exc}") from None
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        else:
            self.db.execute("COMMIT")

    # -- Incoming ----------------------------------------------------------------------

    def get_studies(self, uids: Iterable[str]) -> dict[str, IncomingStudy]:
        found: dict[str, IncomingStudy] = {}
        wanted = list(dict.fromkeys(uids))
        for i in range(0, len(wanted), 500):
            chunk = wanted[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for uid, data in self.db.execute(
                f"SELECT uid, data FROM studies WHERE uid IN ({marks})", chunk
            ):
                found[uid] = IncomingStudy(_from_dict(Study, json.loads(data)))
            for uid, instance, data in self.db.execute(
                f"SELECT study_uid, instance, data FROM series WHERE study_uid IN ({marks}) ORDER BY instance",
                chunk,
            ):
                if uid in found:
                    s = _from_dict(Series, json.loads(data))
                    s.instance = instance
                    found[uid].series.append(s)
            for uid, data in self.db.execute(
                f"SELECT study_uid, data FROM transfers WHERE study_uid IN ({marks}) ORDER BY instance",
                chunk,
            ):
                if uid in found:
                    found[uid].transfers.append(_from_dict(Transfer, json.loads(data)))
        return found

    def save_study(self, study: Study, new_series: list[Series]) -> list[Series]:
        added: list[Series] = []
        with self._tx() as db:
            db.execute(
                "INSERT INTO studies (uid, data, updated) VALUES (?, ?, ?) "
                "ON CONFLICT (uid) DO UPDATE SET data = excluded.data, updated = excluded.updated",
                (study.study_instance_uid, json.dumps(to_dict(study)), time.time()),
            )
            (top,) = db.execute(
                "SELECT COALESCE(MAX(instance), 0) FROM series WHERE study_uid = ?",
                (study.study_instance_uid,),
            ).fetchone()
            for s in new_series:
                exists = db.execute(
                    "SELECT 1 FROM series WHERE study_uid = ? AND series_uid = ?",
                    (study.study_instance_uid, s.series_instance_uid),
                ).fetchone()
                if exists:
                    continue
                top += 1
                s.instance = top
                db.execute(
                    "INSERT INTO series (study_uid, instance, series_uid, data) VALUES (?, ?, ?, ?)",
                    (study.study_instance_uid, top, s.series_instance_uid, json.dumps(to_dict(s))),
                )
                added.append(s)
        return added

    def request_transfer(
        self, study_uid: str, project: str, name: str, event: str = "", requested_date: str = ""
    ) -> Transfer | None:
        with self._tx() as db:
            (top,) = db.execute(
                "SELECT COALESCE(MAX(instance), 0) FROM transfers WHERE study_uid = ?", (study_uid,)
            ).fetchone()
            t = Transfer(study_uid, top + 1, project, name, event, requested_date or now_text())
            cur = db.execute(
                "INSERT OR IGNORE INTO transfers (study_uid, instance, project, name, event, data) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (study_uid, t.instance, project, name, event, json.dumps(to_dict(t))),
            )
            return t if cur.rowcount == 1 else None

    def transfers(self, study_uid: str | None = None, project: str | None = None) -> list[Transfer]:
        query, args = "SELECT data FROM transfers WHERE 1=1", []
        if study_uid is not None:
            query += " AND study_uid = ?"
            args.append(study_uid)
        if project is not None:
            query += " AND project = ?"
            args.append(project)
        rows = self.db.execute(query + " ORDER BY rowid", args)
        return [_from_dict(Transfer, json.loads(data)) for (data,) in rows]

    def update_transfer(self, transfer: Transfer) -> None:
        with self._tx() as db:
            cur = db.execute(
                "UPDATE transfers SET data = ? WHERE study_uid = ? AND instance = ?",
                (json.dumps(to_dict(transfer)), transfer.study_instance_uid, transfer.instance),
            )
            if cur.rowcount != 1:
                raise TrackerError(
                    f"local tracker: no transfer request {transfer.instance} "
                    f"for study {transfer.study_instance_uid}"
                )

    def record_imaging(self, project: Project, participant: str, record: ImagingRecord) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO imaging VALUES (?, ?, ?, ?)",
                (
                    project.name,
                    participant,
                    record.img_study_instance_uid,
                    json.dumps(to_dict(record)),
                ),
            )

    def imaging(self, project: str, participant: str | None = None) -> list[ImagingRecord]:
        query, args = "SELECT data FROM imaging WHERE project = ?", [project]
        if participant is not None:
            query += " AND participant = ?"
            args.append(participant)
        return [
            _from_dict(ImagingRecord, json.loads(d))
            for (d,) in self.db.execute(query + " ORDER BY rowid", args)
        ]

    # -- WhatIsInIDS7 ------------------------------------------------------------------

    def record_pacs_check(self, check: PacsCheck) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO pacs_checks (record_id, study_uid, data) VALUES (?, ?, ?)",
                (check.record_id, check.study_instance_uid, json.dumps(to_dict(check))),
            )

    def pacs_checks(self, study_uid: str | None = None) -> list[PacsCheck]:
        query, args = "SELECT data FROM pacs_checks", []
        if study_uid is not None:
            query += " WHERE study_uid = ?"
            args.append(study_uid)
        return [
            _from_dict(PacsCheck, json.loads(d))
            for (d,) in self.db.execute(query + " ORDER BY rowid", args)
        ]

    # -- Workflows ---------------------------------------------------------------------

    def record_workflow_output(self, output: WorkflowOutput) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO workflow_outputs VALUES (?, ?, ?)",
                (output.record_id, output.workflow_study_instance_uid, json.dumps(to_dict(output))),
            )

    def workflow_outputs(self, study_uid: str | None = None) -> list[WorkflowOutput]:
        query, args = "SELECT data FROM workflow_outputs", []
        if study_uid is not None:
            query += " WHERE study_uid = ?"
            args.append(study_uid)
        return [
            _from_dict(WorkflowOutput, json.loads(d))
            for (d,) in self.db.execute(query + " ORDER BY rowid", args)
        ]

    # -- configuration projects ----------------------------------------------------------

    def projects(self) -> dict[str, Project]:
        return load_projects(self.projects_file)[0] if self.projects_file else {}

    def routing_rules(self) -> list[RoutingRule]:
        return load_projects(self.projects_file)[1] if self.projects_file else []

    def coupling_entries(self, valid_days: int = 14) -> list[CouplingEntry]:
        since = time.time() - valid_days * 86400
        rows = self.db.execute(
            "SELECT data FROM coupling WHERE created >= ? ORDER BY created", (since,)
        )
        return [_from_dict(CouplingEntry, json.loads(data)) for (data,) in rows]

    def add_coupling_entries(self, entries: list[CouplingEntry]) -> int:
        now = time.time()
        with self._tx() as db:
            for e in entries:
                if not e.record_id:
                    (n,) = db.execute("SELECT COUNT(*) FROM coupling").fetchone()
                    e.record_id = str(n + 1)
                    while db.execute(
                        "SELECT 1 FROM coupling WHERE record_id = ?", (e.record_id,)
                    ).fetchone():
                        e.record_id = str(int(e.record_id) + 1)
                e.cl_date = e.cl_date or now_text()
                db.execute(
                    "INSERT OR REPLACE INTO coupling (record_id, data, created) VALUES (?, ?, ?)",
                    (e.record_id, json.dumps(to_dict(e)), now),
                )
        return len(entries)

    def prune_studies(self, horizon: float, *, dry_run: bool = False) -> list[str]:
        uids = [uid for (uid,) in self.db.execute("SELECT uid FROM studies ORDER BY updated")]
        gone: list[str] = []
        for i in range(0, len(uids), 500):
            chunk = [
                uid
                for uid, st in self.get_studies(uids[i : i + 500]).items()
                if prunable(st, horizon)
            ]
            if dry_run or not chunk:
                gone.extend(chunk)
                continue
            with (
                self._tx() as db
            ):  # checked again inside the transaction: a request may just have come
                for uid in chunk:
                    fresh = self.get_studies([uid]).get(uid)
                    if fresh is None or not prunable(fresh, horizon):
                        continue
                    for table, column in (
                        ("pacs_checks", "study_uid"),
                        ("transfers", "study_uid"),
                        ("series", "study_uid"),
                        ("studies", "uid"),
                    ):
                        db.execute(f"DELETE FROM {table} WHERE {column} = ?", (uid,))
                    gone.append(uid)
        return gone

    def autoid_lookup(self, project: str, key: str) -> str | None:
        row = self.db.execute(
            "SELECT value FROM autoid WHERE project = ? AND key = ?", (project, key)
        ).fetchone()
        return row[0] if row else None

    def autoid_values(self, project: str) -> set[str]:
        return {
            v for (v,) in self.db.execute("SELECT value FROM autoid WHERE project = ?", (project,))
        }

    def autoid_store(self, project: str, key: str, value: str) -> str:
        with self._tx() as db:
            row = db.execute(
                "SELECT value FROM autoid WHERE project = ? AND key = ?", (project, key)
            ).fetchone()
            if row:
                return row[0]
            try:
                db.execute(
                    "INSERT INTO autoid (project, key, value) VALUES (?, ?, ?)",
                    (project, key, value),
                )
            except sqlite3.IntegrityError:
                raise TrackerError(
                    f"local tracker: AutoID value already used in project {project}"
                ) from None
            return value

    def close(self) -> None:
        self.db.close()
