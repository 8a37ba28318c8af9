"""The redcap tracker: FIONA's REDCap projects (Incoming, DataTransferProjects, Routing,
CouplingList, AutoID) through the API, so an existing FIONA REDCap keeps working.

Rows are FIONA's: flat export/import, repeating instruments `series` and `transfers` in
Incoming, checkbox `transfer_error___1..3` and `project_features___0..2`. REDCap has no
transactions, so uniqueness of a transfer request is checked against a fresh export
right before the import; the cron jobs that create requests run under a lock.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from fionagw.config import SiteConfig, TrackerSettings
from fionagw.config.projects import Project
from fionagw.tracking.base import Tracker, TrackerError, prunable
from fionagw.tracking.records import (
    DATE_FORMAT,
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
from fionagw.tracking.redcap_api import RedcapClient, RedcapError
from fionagw.tracking.secrets import load_tokens

PROJECTS = ("Incoming", "DataTransferProjects", "Routing", "CouplingList", "AutoID")
INVENTORY = "WhatIsInIDS7"  # optional: the PACS checks (verification, reconciliation)
WORKFLOWS = "Workflows"  # optional: the output.json of Workflows jobs (FIONA's Workflows token)
_STUDY_FIELDS = [k for k in Study.__dataclass_fields__]
_SERIES_FIELDS = [k for k in Series.__dataclass_fields__ if k != "instance"]
_TRANSFER_FIELDS = [
    k for k in Transfer.__dataclass_fields__ if k not in ("study_instance_uid", "instance")
]
ERROR_CODES = (1, 2, 3)
# rewrite_ex_tag choices of DataTransferProjects (config/redcap/DataTransferProjects.csv)
_EXCLUSION_TAGS = {"1": "0020,4000", "2": "0008,103E"}
IMAGING_EVENT = "event_1_arm_1"  # FIONA's per-project REDCap: imaging repeats in the first event


def _yes(value: Any) -> bool:
    return str(value).strip() in ("1", "yes", "Yes", "true")


class RedcapTracker(Tracker):
    name = "REDCap tracker"

    def __init__(
        self, clients: dict[str, RedcapClient], settings: TrackerSettings | None = None
    ) -> None:
        self.c = clients
        self.settings = settings  # for clients of per-project REDCaps (imaging mirror)
        self._choices: dict[str, dict[str, str]] = {}

    @classmethod
    def from_config(cls, cfg: SiteConfig) -> RedcapTracker:
        assert cfg.tracker.secrets_file is not None
        try:
            tokens = load_tokens(cfg.tracker.secrets_file)
        except Exception as exc:  # SecretsError: one line naming the file
            raise TrackerError(str(exc)) from None
        missing = [p for p in PROJECTS if p not in tokens]
        if missing:
            raise TrackerError(
                f"{cfg.tracker.secrets_file}: tokens: missing the token of REDCap "
                f"project(s) {', '.join(missing)}"
            )
        names = [*PROJECTS, *(p for p in (INVENTORY, WORKFLOWS) if p in tokens)]
        return cls(
            {p: RedcapClient.from_settings(cfg.tracker, tokens, p) for p in names}, cfg.tracker
        )

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except RedcapError as exc:
            raise TrackerError(str(exc)) from None

    # -- Incoming ----------------------------------------------------------------------

    def get_studies(self, uids: Iterable[str]) -> dict[str, IncomingStudy]:
        wanted = list(dict.fromkeys(uids))
        if not wanted:
            return {}
        rows = self._call(self.c["Incoming"].export_records, records=wanted)
        found: dict[str, IncomingStudy] = {}
        for row in rows:  # base rows first, so studies exist before their instances
            if not row.get("redcap_repeat_instrument"):
                uid = row["study_instance_uid"]
                found[uid] = IncomingStudy(Study(**{k: str(row.get(k, "")) for k in _STUDY_FIELDS}))
        for row in rows:
            form, uid = row.get("redcap_repeat_instrument"), row.get("study_instance_uid")
            if uid not in found or not form:
                continue
            instance = int(row.get("redcap_repeat_instance") or 0)
            if form == "series":
                s = Series(**{k: str(row.get(k, "")) for k in _SERIES_FIELDS})
                s.instance = instance
                found[uid].series.append(s)
            elif form == "transfers":
                found[uid].transfers.append(self._transfer(uid, instance, row))
        for st in found.values():
            st.series.sort(key=lambda s: s.instance)
            st.transfers.sort(key=lambda t: t.instance)
        return found

    @staticmethod
    def _transfer(uid: str, instance: int, row: dict[str, Any]) -> Transfer:
        values = {k: str(row.get(k, "")) for k in _TRANSFER_FIELDS if k != "transfer_error"}
        errors = {code for code in ERROR_CODES if _yes(row.get(f"transfer_error___{code}", "0"))}
        return Transfer(uid, instance, transfer_error=errors, **values)

    def save_study(self, study: Study, new_series: list[Series]) -> list[Series]:
        current = self.get_studies([study.study_instance_uid]).get(study.study_instance_uid)
        recorded = current.series_uids if current else set()
        top = max((s.instance for s in current.series), default=0) if current else 0
        rows: list[dict[str, Any]] = [
            {
                **to_dict(study),
                "redcap_repeat_instrument": "",
                "redcap_repeat_instance": "",
                "incoming_studies_complete": "2",
            }
        ]
        added = []
        for s in new_series:
            if s.series_instance_uid in recorded:
                continue
            top += 1
            s.instance = top
            row = {k: v for k, v in to_dict(s).items() if k != "instance"}
            rows.append(
                {
                    "study_instance_uid": study.study_instance_uid,
                    "redcap_repeat_instrument": "series",
                    "redcap_repeat_instance": top,
                    **row,
                    "series_complete": "2",
                }
            )
            added.append(s)
        self._call(self.c["Incoming"].import_records, rows)
        return added

    def request_transfer(
        self, study_uid: str, project: str, name: str, event: str = "", requested_date: str = ""
    ) -> Transfer | None:
        current = self.get_studies([study_uid]).get(study_uid)
        transfers = current.transfers if current else []
        if any(t.key == (project, name, event) for t in transfers):
            return None
        t = Transfer(
            study_uid,
            max((x.instance for x in transfers), default=0) + 1,
            project,
            name,
            event,
            requested_date or now_text(),
        )
        self._write_transfer(t)
        return t

    def _write_transfer(self, t: Transfer) -> None:
        row: dict[str, Any] = {
            "study_instance_uid": t.study_instance_uid,
            "redcap_repeat_instrument": "transfers",
            "redcap_repeat_instance": t.instance,
        }
        for k in _TRANSFER_FIELDS:
            if k == "transfer_error":
                row.update(
                    {
                        f"transfer_error___{c}": "1" if c in t.transfer_error else "0"
                        for c in ERROR_CODES
                    }
                )
            else:
                row[k] = getattr(t, k)
        self._call(self.c["Incoming"].import_records, [row])

    def transfers(self, study_uid: str | None = None, project: str | None = None) -> list[Transfer]:
        rows = self._call(
            self.c["Incoming"].export_records,
            records=[study_uid] if study_uid else None,
            forms=["transfers"],
        )
        out = [
            self._transfer(r["study_instance_uid"], int(r.get("redcap_repeat_instance") or 0), r)
            for r in rows
            if r.get("redcap_repeat_instrument") == "transfers"
        ]
        out = [t for t in out if project is None or t.transfer_project_name == project]
        return sorted(
            out, key=lambda t: (t.transfer_requested_date, t.study_instance_uid, t.instance)
        )

    def update_transfer(self, transfer: Transfer) -> None:
        self._write_transfer(transfer)

    def _project_client(self, project: Project) -> RedcapClient | None:
        if not project.redcap_token or self.settings is None:
            return None  # FIONA mirrored only the projects it was told about
        return RedcapClient.from_settings(
            self.settings, {project.name: project.redcap_token}, project.name
        )

    def record_imaging(self, project: Project, participant: str, record: ImagingRecord) -> None:
        """populateProjects: the participant record (first/last name = the ID) and a repeating
        ``imaging`` instance in event_1_arm_1; a resent study updates its own instance."""
        client = self._project_client(project)
        if client is None:
            return
        rows = self._call(client.export_records, records=[participant], events=[IMAGING_EVENT])
        instances = {
            int(r["redcap_repeat_instance"]): r
            for r in rows
            if r.get("redcap_repeat_instrument") == "imaging" and r.get("redcap_repeat_instance")
        }
        same = [
            i
            for i, r in instances.items()
            if r.get("img_study_instance_uid") == record.img_study_instance_uid
        ]
        instance = same[0] if same else max(instances, default=0) + 1
        id_field = self._call(lambda: client.record_id_field)
        base = {
            id_field: participant,
            "redcap_event_name": IMAGING_EVENT,
            "redcap_repeat_instrument": "",
            "redcap_repeat_instance": "",
            "first_name": participant,
            "last_name": participant,
        }
        row = {
            id_field: participant,
            "redcap_event_name": IMAGING_EVENT,
            "redcap_repeat_instrument": "imaging",
            "redcap_repeat_instance": instance,
            **to_dict(record),
            "imaging_complete": "2",
        }
        self._call(client.import_records, [base, row])

    def imaging(self, project: str, participant: str | None = None) -> list[ImagingRecord]:
        found = self.projects().get(project)
        client = self._project_client(found) if found else None
        if client is None:
            return []
        rows = self._call(
            client.export_records,
            records=[participant] if participant else None,
            events=[IMAGING_EVENT],
        )
        names = ImagingRecord.__dataclass_fields__
        return [
            ImagingRecord(**{k: str(r.get(k, "")) for k in names})
            for r in rows
            if r.get("redcap_repeat_instrument") == "imaging"
        ]

    # -- WhatIsInIDS7 ------------------------------------------------------------------

    def _inventory(self) -> RedcapClient:
        client = self.c.get(INVENTORY)
        if client is None:
            raise TrackerError(
                f"REDCap tracker: no API token for project {INVENTORY} in the secrets file"
                " (needed to record what the research PACS holds)"
            )
        return client

    def record_pacs_check(self, check: PacsCheck) -> None:
        row = {**to_dict(check), "whatisinids7_complete": "2"}
        self._call(self._inventory().import_records, [row])

    def pacs_checks(self, study_uid: str | None = None) -> list[PacsCheck]:
        rows = self._call(self._inventory().export_records)
        names = PacsCheck.__dataclass_fields__
        checks = []
        for r in rows:
            if study_uid is not None and r.get("study_instance_uid") != study_uid:
                continue
            values: dict[str, Any] = {k: str(r.get(k, "")) for k in names}
            for k in ("transfer_instance", "ids7_sent", "ids7_found", "ids7_missing"):
                values[k] = int(values[k] or 0) if str(values[k]).isdigit() else 0
            checks.append(PacsCheck(**values))
        return checks

    # -- Workflows ---------------------------------------------------------------------

    def _workflows(self) -> RedcapClient:
        client = self.c.get(WORKFLOWS)
        if client is None:
            raise TrackerError(
                f"REDCap tracker: no API token for project {WORKFLOWS} in the secrets file"
                " (needed to record the output.json of workflow jobs)"
            )
        return client

    def record_workflow_output(self, output: WorkflowOutput) -> None:
        row = {**to_dict(output), "workflows_complete": "2"}
        row = {k: str(v) for k, v in row.items()}
        self._call(self._workflows().import_records, [row])

    def workflow_outputs(self, study_uid: str | None = None) -> list[WorkflowOutput]:
        rows = self._call(self._workflows().export_records)
        names = WorkflowOutput.__dataclass_fields__
        out = []
        for r in rows:
            if study_uid is not None and r.get("workflow_study_instance_uid") != study_uid:
                continue
            values: dict[str, Any] = {k: str(r.get(k, "")) for k in names}
            job = values["workflow_job"]
            values["workflow_job"] = int(job) if job.isdigit() else 0
            out.append(WorkflowOutput(**values))
        return out

    # -- configuration projects ----------------------------------------------------------

    def _labels(self, project: str, field: str) -> dict[str, str]:
        """Dropdown raw value -> label (FIONA maps routing_dest_project through the metadata)."""
        key = f"{project}.{field}"
        if key not in self._choices:
            meta = self._call(self.c[project].export_metadata, fields=[field])
            text = meta[0].get("select_choices_or_calculations", "") if meta else ""
            pairs = (c.split(",", 1) for c in text.split("|") if "," in c)
            self._choices[key] = {raw.strip(): label.strip() for raw, label in pairs}
        return self._choices[key]

    def projects(self) -> dict[str, Project]:
        rows = self._call(self.c["DataTransferProjects"].export_records, forms=["projects"])
        exclusions = self._pixel_exclusions()
        projects = {}
        for r in rows:
            if r.get("redcap_repeat_instrument"):
                continue
            name = str(r.get("record_id", ""))
            projects[name] = Project(
                name=name,
                participant_id=str(r.get("project_patient_naming", "")) or ".*",
                title=str(r.get("project_name", "")),
                active=_yes(r.get("project_active", "1")),
                autoid=_yes(r.get("project_use_autoid", "0")),
                autoid_aetitle=str(r.get("project_autoid_aetitle", "")),
                features={c for c in (0, 1, 2) if _yes(r.get(f"project_features___{c}", "0"))},
                import_rule_tag=str(r.get("project_import_rule_1_tag", "")),
                import_rule_regexp=str(r.get("project_import_rule_1_regexp", "")),
                redcap_token=str(r.get("project_token", "") or ""),
                resend_missing=_yes(r.get("project_resend_missing", "0")),
                pixel_exclusions=exclusions.get(name, []),
            )
        return projects

    def _pixel_exclusions(self) -> dict[str, list[tuple[str, str]]]:
        """The repeating rewritepixelexclusions of each project: (tag, regexp) pairs."""
        rows = self._call(
            self.c["DataTransferProjects"].export_records, forms=["rewritepixelexclusions"]
        )
        out: dict[str, list[tuple[str, str]]] = {}
        for r in rows:
            if r.get("redcap_repeat_instrument") != "rewritepixelexclusions":
                continue
            tag = _EXCLUSION_TAGS.get(str(r.get("rewrite_ex_tag", "")).strip())
            regexp = str(r.get("rewrite_ex_reg", "") or "")
            if tag and regexp:
                out.setdefault(str(r.get("record_id", "")), []).append((tag, regexp))
        return out

    def routing_rules(self) -> list[RoutingRule]:
        rows = self._call(self.c["Routing"].export_records)
        labels = self._labels("Routing", "routing_dest_project")
        return [
            RoutingRule(
                record_id=str(r.get("record_id", "")),
                routing_dest_project=labels.get(
                    str(r.get("routing_dest_project", "")), str(r.get("routing_dest_project", ""))
                ),
                routing_active=_yes(r.get("routing_active", "0")),
                routing_incoming_aetitle=str(r.get("routing_incoming_aetitle", "")),
                routing_sending_aetitle=str(r.get("routing_sending_aetitle", "")),
                routing_allowed_patientid=str(r.get("routing_allowed_patientid", "")),
                routing_allowed_patientname=str(r.get("routing_allowed_patientname", "")),
                routing_event_name=str(r.get("routing_event_name", "")),
            )
            for r in rows
            if not r.get("redcap_repeat_instrument")
        ]

    def coupling_entries(self, valid_days: int = 14) -> list[CouplingEntry]:
        rows = self._call(self.c["CouplingList"].export_records)
        since = time.time() - valid_days * 86400
        out = []
        for r in rows:
            e = CouplingEntry(**{k: str(r.get(k, "")) for k in CouplingEntry.__dataclass_fields__})
            try:
                made = time.mktime(time.strptime(e.cl_date, DATE_FORMAT))
            except ValueError:
                made = time.time()  # undated entries (made by hand in REDCap) stay valid
            if made >= since:
                out.append(e)
        return out

    def add_coupling_entries(self, entries: list[CouplingEntry]) -> int:
        client = self.c["CouplingList"]
        first = int(self._call(client.generate_next_record_name))
        rows = []
        for i, e in enumerate(entries):
            e.record_id = e.record_id or str(first + i)
            e.cl_date = e.cl_date or now_text()
            rows.append({**to_dict(e), "coupling_list_complete": "2"})
        return self._call(client.import_records, rows) if rows else 0  # one call: all or nothing

    def prune_studies(self, horizon: float, *, dry_run: bool = False) -> list[str]:
        """Incoming records to delete, found from the dates and transfer states only; each
        candidate is exported again right before the delete (REDCap has no transaction)."""
        fields = [
            "study_instance_uid",
            "study_arrival_date",
            "transfer_requested_date",
            "transfer_date",
            "transfers_complete",
            "transfer_error",
        ]
        rows = self._call(self.c["Incoming"].export_records, fields=fields)
        uids = list(
            dict.fromkeys(str(r["study_instance_uid"]) for r in rows if r.get("study_instance_uid"))
        )
        studies: dict[str, IncomingStudy] = {uid: IncomingStudy(Study(uid)) for uid in uids}
        for r in rows:
            st = studies.get(str(r.get("study_instance_uid", "")))
            if st is None:
                continue
            if r.get("redcap_repeat_instrument") == "transfers":
                st.transfers.append(
                    self._transfer(
                        st.study.study_instance_uid, int(r.get("redcap_repeat_instance") or 0), r
                    )
                )
            elif not r.get("redcap_repeat_instrument"):
                st.study.study_arrival_date = str(r.get("study_arrival_date", ""))
        candidates = [uid for uid, st in studies.items() if prunable(st, horizon)]
        if dry_run or not candidates:
            return candidates
        fresh = self.get_studies(candidates)
        gone = [uid for uid in candidates if uid in fresh and prunable(fresh[uid], horizon)]
        if gone:
            self._call(self.c["Incoming"].delete_records, gone)
        return gone

    def _autoid_rows(self, project: str) -> list[dict[str, Any]]:
        rows = self._call(self.c["AutoID"].export_records)
        return [r for r in rows if r.get("autoid_project_name") == project]

    def autoid_lookup(self, project: str, key: str) -> str | None:
        for r in self._autoid_rows(project):
            if r.get("autoid_hash") == key and r.get("autoid_value"):
                return str(r["autoid_value"])
        return None

    def autoid_values(self, project: str) -> set[str]:
        return {str(r["autoid_value"]) for r in self._autoid_rows(project) if r.get("autoid_value")}

    def autoid_store(self, project: str, key: str, value: str) -> str:
        existing = self.autoid_lookup(project, key)
        if existing:
            return existing
        if value in self.autoid_values(project):
            raise TrackerError(f"REDCap project AutoID: value already used in project {project}")
        record = self._call(self.c["AutoID"].generate_next_record_name)
        self._call(
            self.c["AutoID"].import_records,
            [
                {
                    "record_id": record,
                    "autoid_project_name": project,
                    "autoid_hash": key,
                    "autoid_value": value,
                    "autoid_method": "1",
                    "autoid_complete": "2",
                }
            ],
        )
        return value
