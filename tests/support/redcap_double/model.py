"""REDCap projects for the double: structure from a data dictionary, records in memory.

A Project is built from a REDCap data-dictionary CSV (the standard 18 columns) and a small
spec (config/redcap/projects.json): events/arms for longitudinal projects and the repeating
instruments/events. Records are kept as REDCap keeps them: per record, per (event,
repeat instrument, repeat instance) a mapping field -> stored string; checkbox values are
stored per ``field___code``. Everything that goes wrong raises ApiError(status, message),
which the app turns into REDCap's error body.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .filterlogic import compile_logic

CONFIG_DIR = Path(__file__).resolve().parents[3] / "config" / "redcap"

META_KEYS = [
    "field_name",
    "form_name",
    "section_header",
    "field_type",
    "field_label",
    "select_choices_or_calculations",
    "field_note",
    "text_validation_type_or_show_slider_number",
    "text_validation_min",
    "text_validation_max",
    "identifier",
    "branching_logic",
    "required_field",
    "custom_alignment",
    "question_number",
    "matrix_group_name",
    "matrix_ranking",
    "field_annotation",
]
CHOICE_TYPES = {"dropdown", "radio", "checkbox"}
NO_DATA_TYPES = {"descriptive"}
YESNO = [("1", "Yes"), ("0", "No")]
TRUEFALSE = [("1", "True"), ("0", "False")]
FORM_STATUS = [("0", "Incomplete"), ("1", "Unverified"), ("2", "Complete")]
RESERVED = ("redcap_event_name", "redcap_repeat_instrument", "redcap_repeat_instance")

Key = tuple[str, str, int | None]  # (unique event name or "", repeat instrument or "", instance)


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def csv_line(*values: str) -> str:
    return ",".join('"' + str(v).replace('"', '""') + '"' for v in values)


@dataclass
class Field:
    meta: dict[str, str]

    @property
    def name(self) -> str:
        return self.meta["field_name"]

    @property
    def form(self) -> str:
        return self.meta["form_name"]

    @property
    def type(self) -> str:
        return self.meta["field_type"]

    @property
    def validation(self) -> str:
        return (
            self.meta["text_validation_type_or_show_slider_number"] if self.type == "text" else ""
        )

    @property
    def choices(self) -> list[tuple[str, str]]:
        if self.type == "yesno":
            return YESNO
        if self.type == "truefalse":
            return TRUEFALSE
        if self.type not in CHOICE_TYPES:
            return []
        out = []
        for part in self.meta["select_choices_or_calculations"].split("|"):
            if part.strip():
                code, _, label = part.partition(",")
                out.append((code.strip(), label.strip()))
        return out

    def export_names(self) -> list[str]:
        if self.type in NO_DATA_TYPES:
            return []
        if self.type == "checkbox":
            return [f"{self.name}___{self.code_suffix(code)}" for code, _ in self.choices]
        return [self.name]

    @staticmethod
    def code_suffix(code: str) -> str:
        # REDCap lower-cases codes and replaces characters other than [a-z0-9_] in column names
        return re.sub(r"[^a-z0-9_]", "_", code.lower())


@dataclass
class Event:
    unique_event_name: str
    event_name: str
    arm_num: int
    event_id: int
    forms: list[str]


@dataclass
class StoredFile:
    name: str
    data: bytes
    mime: str


@dataclass
class Project:
    name: str
    title: str
    fields: list[Field]
    project_id: int = 1
    events: list[Event] = field(default_factory=list)  # [] = classic
    arms: list[dict[str, Any]] = field(default_factory=list)
    repeating: set[tuple[str, str]] = field(default_factory=set)  # (event or "", form or "")
    form_labels: dict[str, str] = field(default_factory=dict)
    record_autonumbering: bool = False
    records: dict[str, dict[Key, dict[str, str]]] = field(default_factory=dict)
    modified: dict[str, float] = field(default_factory=dict)
    files: dict[tuple[str, str, int, str], StoredFile] = field(default_factory=dict)

    # -- structure -----------------------------------------------------------------------

    @classmethod
    def from_dictionary(
        cls, name: str, csv_path: Path, spec: dict[str, Any] | None = None, project_id: int = 1
    ) -> Project:
        spec = spec or {}
        with open(csv_path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
        if not rows or len(rows[0]) != len(META_KEYS):
            raise ValueError(
                f"{csv_path}: not a REDCap data dictionary (expected {len(META_KEYS)} columns)"
            )
        fields = []
        for n, row in enumerate(rows[1:], 2):
            if not any(row):
                continue
            if len(row) != len(META_KEYS):
                raise ValueError(
                    f"{csv_path}: line {n}: expected {len(META_KEYS)} columns, got {len(row)}"
                )
            fields.append(Field(dict(zip(META_KEYS, row, strict=True))))
        return cls.from_fields(name, fields, spec, project_id)

    @classmethod
    def from_fields(
        cls, name: str, fields: list[Field], spec: dict[str, Any], project_id: int = 1
    ) -> Project:
        forms = list(dict.fromkeys(f.form for f in fields))
        labels = {f: f.replace("_", " ").title() for f in forms}
        labels.update(spec.get("form_labels", {}))
        events, arms = [], []
        if spec.get("events"):
            arms = [dict(a) for a in spec.get("arms") or [{"arm_num": 1, "name": "Arm 1"}]]
            for i, ev in enumerate(spec["events"], 1):
                unique = ev.get("unique_event_name") or (
                    re.sub(r"[^a-z0-9]+", "_", ev["event_name"].lower()).strip("_")[:18]
                    + f"_arm_{ev.get('arm_num', 1)}"
                )
                evforms = ev.get("forms", forms)
                unknown = set(evforms) - set(forms)
                if unknown:
                    raise ValueError(
                        f"project {name}: event {unique}: unknown forms {sorted(unknown)}"
                    )
                events.append(
                    Event(
                        unique,
                        ev["event_name"],
                        int(ev.get("arm_num", 1)),
                        40000 + project_id * 100 + i,
                        list(evforms),
                    )
                )
        repeating: set[tuple[str, str]] = set()
        for item in spec.get("repeating", []):
            if isinstance(item, str):
                if events:
                    raise ValueError(
                        f"project {name}: longitudinal repeating entries need an event"
                    )
                repeating.add(("", item))
            else:
                repeating.add((item.get("event", ""), item.get("form", "")))
        for ev, form in repeating:
            if form and form not in forms:
                raise ValueError(f"project {name}: repeating form {form} is not in the dictionary")
            if events and ev not in {e.unique_event_name for e in events}:
                raise ValueError(f"project {name}: repeating entry names unknown event {ev}")
        if not fields:
            raise ValueError(f"project {name}: no fields")
        return cls(
            name=name,
            title=spec.get("title", name),
            fields=fields,
            project_id=project_id,
            events=events,
            arms=arms,
            repeating=repeating,
            form_labels=labels,
            record_autonumbering=bool(spec.get("record_autonumbering", False)),
        )

    def copy_structure(self, name: str, project_id: int) -> Project:
        return Project(
            name=name,
            title=name,
            fields=[Field(dict(f.meta)) for f in self.fields],
            project_id=project_id,
            events=[
                Event(
                    e.unique_event_name,
                    e.event_name,
                    e.arm_num,
                    40000 + project_id * 100 + i,
                    list(e.forms),
                )
                for i, e in enumerate(self.events, 1)
            ],
            arms=[dict(a) for a in self.arms],
            repeating=set(self.repeating),
            form_labels=dict(self.form_labels),
            record_autonumbering=self.record_autonumbering,
        )

    @property
    def longitudinal(self) -> bool:
        return bool(self.events)

    @property
    def has_repeating(self) -> bool:
        return bool(self.repeating)

    @property
    def id_field(self) -> str:
        return self.fields[0].name

    @property
    def forms(self) -> list[str]:
        return list(dict.fromkeys(f.form for f in self.fields))

    def field(self, name: str) -> Field | None:
        for f in self.fields:
            if f.name == name:
                return f
        return None

    def fields_of(self, form: str) -> list[Field]:
        return [f for f in self.fields if f.form == form]

    def event_names(self) -> list[str]:
        return [e.unique_event_name for e in self.events] if self.events else [""]

    def event(self, unique: str) -> Event | None:
        return next((e for e in self.events if e.unique_event_name == unique), None)

    def forms_in(self, event: str) -> list[str]:
        if not self.events:
            return self.forms
        ev = self.event(event)
        return list(ev.forms) if ev else []

    def repeating_form(self, event: str, form: str) -> bool:
        return (event, form) in self.repeating

    def repeating_event(self, event: str) -> bool:
        return bool(self.events) and (event, "") in self.repeating

    def columns(self) -> dict[str, tuple[Field | None, str]]:
        """Export column -> (field, form) for every data column, in export order."""
        cols: dict[str, tuple[Field | None, str]] = {}
        for form in self.forms:
            for f in self.fields_of(form):
                for col in f.export_names():
                    cols[col] = (f, form)
            cols[f"{form}_complete"] = (None, form)
        return cols

    def label_of(self, col: str, value: str, checkbox_labels: bool) -> str:
        f, form = self.columns().get(col, (None, ""))
        if value == "":
            return value
        if f is None:
            return dict(FORM_STATUS).get(value, value) if col.endswith("_complete") else value
        if f.type == "checkbox":
            code = next((c for c, _ in f.choices if f"{f.name}___{f.code_suffix(c)}" == col), "")
            if checkbox_labels:
                return dict(f.choices).get(code, "") if value == "1" else ""
            return "Checked" if value == "1" else "Unchecked"
        choices = f.choices
        return dict(choices).get(value, value) if choices else value

    # -- metadata-ish exports ------------------------------------------------------------

    def metadata(self, fields: list[str], forms: list[str]) -> list[dict[str, str]]:
        unknown = [f for f in fields if self.field(f) is None]
        if unknown:
            raise ApiError(
                400,
                'The following values in the parameter "fields" are not valid: '
                + ", ".join(unknown),
            )
        bad_forms = [f for f in forms if f not in self.forms]
        if bad_forms:
            raise ApiError(
                400,
                'The following values in the parameter "forms" are not valid: '
                + ", ".join(bad_forms),
            )
        out = []
        for f in self.fields:
            if (fields or forms) and f.name not in fields and f.form not in forms:
                continue
            out.append(dict(f.meta))
        return out

    def project_info(self) -> dict[str, Any]:
        return {
            "project_id": self.project_id,
            "project_title": self.title,
            "creation_time": "2024-01-01 00:00:00",
            "production_time": "",
            "in_production": 0,
            "project_language": "English",
            "purpose": 0,
            "purpose_other": "",
            "project_notes": "local REDCap double",
            "custom_record_label": "",
            "secondary_unique_field": "",
            "is_longitudinal": int(self.longitudinal),
            "has_repeating_instruments_or_events": int(self.has_repeating),
            "surveys_enabled": 0,
            "scheduling_enabled": 0,
            "record_autonumbering_enabled": int(self.record_autonumbering),
            "randomization_enabled": 0,
            "ddp_enabled": 0,
            "project_irb_number": "",
            "project_grant_number": "",
            "project_pi_firstname": "",
            "project_pi_lastname": "",
            "display_today_now_button": 1,
            "missing_data_codes": "",
            "external_modules": "",
            "bypass_branching_erase_field_prompt": 0,
        }

    def export_field_names(self, only: str = "") -> list[dict[str, str]]:
        if only and (self.field(only) is None or self.field(only).type in NO_DATA_TYPES):
            raise ApiError(
                400, f'The following values in the parameter "field" are not valid: {only}'
            )
        out = []
        for f in self.fields:
            if f.type in NO_DATA_TYPES or (only and f.name != only):
                continue
            if f.type == "checkbox":
                out += [
                    {
                        "original_field_name": f.name,
                        "choice_value": code,
                        "export_field_name": f"{f.name}___{f.code_suffix(code)}",
                    }
                    for code, _ in f.choices
                ]
            else:
                out.append(
                    {"original_field_name": f.name, "choice_value": "", "export_field_name": f.name}
                )
        return out

    def repeating_forms_events(self) -> list[dict[str, str]]:
        out = []
        for ev, form in sorted(self.repeating):
            row = {"form_name": form, "custom_form_label": ""}
            if self.longitudinal:
                row = {"event_name": ev, **row}
            out.append(row)
        return out

    def next_record_name(self) -> str:
        nums = [int(r) for r in self.records if r.isdigit()]
        return str(max(nums) + 1 if nums else 1)

    # -- record export -------------------------------------------------------------------

    def _touch(self, record: str) -> None:
        self.modified[record] = time.time()

    def select_columns(self, fields: list[str], forms: list[str]) -> list[str]:
        cols = self.columns()
        if not fields and not forms:
            return list(cols)
        bad = [f for f in fields if f not in cols and (self.field(f) is None)]
        if bad:
            raise ApiError(
                400,
                'The following values in the parameter "fields" are not valid: ' + ", ".join(bad),
            )
        bad_forms = [f for f in forms if f not in self.forms]
        if bad_forms:
            raise ApiError(
                400,
                'The following values in the parameter "forms" are not valid: '
                + ", ".join(bad_forms),
            )
        wanted: set[str] = set()
        for name in fields:
            f = self.field(name)
            wanted.update(f.export_names() if f is not None else [name])
        for col, (_, form) in cols.items():
            if form in forms:
                wanted.add(col)
        return [c for c in cols if c in wanted]

    def _row_keys(self, record: str, events: list[str]) -> list[Key]:
        data = self.records[record]
        keys: list[Key] = []
        for ev in self.event_names():
            if events and ev not in events:
                continue
            here = [k for k in data if k[0] == ev]
            if not here:
                continue
            if not self.repeating_event(ev):
                keys.append((ev, "", None))
            keys += sorted((k for k in here if k[2] is not None), key=lambda k: (k[1], k[2]))
        return keys

    def _applies(self, key: Key, form: str) -> bool:
        ev, instr, inst = key
        if form not in self.forms_in(ev):
            return False
        if instr:
            return form == instr
        if inst is not None:  # repeating event: every form of the event
            return True
        return not self.repeating_form(ev, form)

    def flat_row(self, record: str, key: Key, columns: list[str]) -> dict[str, Any]:
        cols = self.columns()
        stored = self.records[record].get(key, {})
        row: dict[str, Any] = {}
        for col in columns:
            f, form = cols[col]
            if col == self.id_field:
                row[col] = record
            elif not self._applies(key, form):
                row[col] = ""
            elif col in stored:
                row[col] = stored[col]
            elif f is None or (f is not None and f.type == "checkbox"):
                row[col] = "0"  # form status / unchecked box of an applicable form
            else:
                row[col] = ""
        return row

    def export(
        self,
        *,
        records: list[str],
        fields: list[str],
        forms: list[str],
        events: list[str],
        kind: str,
        labels: bool,
        checkbox_labels: bool,
        logic: str,
        date_begin: str,
        date_end: str,
    ) -> list[dict[str, Any]]:
        bad_events = [e for e in events if self.longitudinal and self.event(e) is None]
        if bad_events:
            raise ApiError(
                400,
                'The following values in the parameter "events" are not valid: '
                + ", ".join(bad_events),
            )
        predicate = compile_logic(logic, self) if logic else None
        columns = self.select_columns(fields, forms)
        with_id = self.id_field in columns
        begin = _parse_range(date_begin, "dateRangeBegin")
        end = _parse_range(date_end, "dateRangeEnd")
        out: list[dict[str, Any]] = []
        wanted = list(dict.fromkeys(records)) if records else list(self.records)
        cols = self.columns()
        all_columns = list(cols)
        selective = bool(fields or forms)
        for record in wanted:
            if record not in self.records:
                continue
            mtime = self.modified.get(record, 0.0)
            if (begin and mtime < begin) or (end and mtime > end):
                continue
            for key in self._row_keys(record, events):
                if (
                    selective
                    and key[2] is not None
                    and not any(
                        self._applies(key, cols[c][1]) for c in columns if c != self.id_field
                    )
                ):
                    continue  # an instance row none of the requested fields belong to
                if predicate is not None:
                    full = self.flat_row(record, key, all_columns)
                    if key[2] is not None:  # instance rows see the base row of their event too
                        base = self.flat_row(record, (key[0], "", None), all_columns)
                        full = {
                            c: (full[c] if self._applies(key, cols[c][1]) else base[c])
                            for c in all_columns
                        }
                    if not predicate(full, key):
                        continue
                values = self.flat_row(record, key, columns)
                if kind == "eav":
                    out += self._eav(record, key, values, labels, checkbox_labels)
                    continue
                row: dict[str, Any] = {}
                for col in columns:
                    row[col] = (
                        self.label_of(col, values[col], checkbox_labels) if labels else values[col]
                    )
                    if col == self.id_field and with_id:
                        row.update(self._reserved(key, labels))
                out.append(row)
        return out

    def _reserved(self, key: Key, labels: bool) -> dict[str, Any]:
        ev, instr, inst = key
        out: dict[str, Any] = {}
        if self.longitudinal:
            e = self.event(ev)
            out["redcap_event_name"] = e.event_name if (labels and e) else ev
        if self.has_repeating:
            out["redcap_repeat_instrument"] = (
                self.form_labels.get(instr, instr) if labels else instr
            )
            out["redcap_repeat_instance"] = inst if inst is not None else ""
        return out

    def _eav(
        self, record: str, key: Key, values: dict[str, Any], labels: bool, checkbox_labels: bool
    ) -> list[dict[str, Any]]:
        cols = self.columns()
        out = []
        extra: dict[str, Any] = {}
        if self.longitudinal:
            extra["redcap_event_name"] = key[0]
        if self.has_repeating:
            extra["redcap_repeat_instrument"] = key[1]
            extra["redcap_repeat_instance"] = key[2] if key[2] is not None else ""
        for col, value in values.items():
            f, _ = cols[col]
            if value in ("",) or (f is not None and f.type == "checkbox" and value != "1"):
                continue
            if f is not None and f.type == "checkbox":
                code = next(c for c, _ in f.choices if f"{f.name}___{f.code_suffix(c)}" == col)
                name, value = f.name, (dict(f.choices)[code] if labels else code)
            else:
                name = col
                value = self.label_of(col, value, checkbox_labels) if labels else value
            out.append({"record": record, **extra, "field_name": name, "value": value})
        return out

    # -- record import -------------------------------------------------------------------

    def import_rows(
        self, rows: list[dict[str, Any]], *, overwrite: bool, date_format: str, auto_number: bool
    ) -> list[str]:
        """Validate every row, then store all of them (or nothing); returns the record IDs."""
        if date_format not in ("", "YMD"):
            raise ApiError(
                400, f"dateFormat={date_format} is not supported by the REDCap double (only YMD)"
            )
        cols = self.columns()
        allowed = set(cols) | {self.id_field}
        allowed |= (
            {"redcap_repeat_instrument", "redcap_repeat_instance"} if self.has_repeating else set()
        )
        allowed |= {"redcap_event_name"} if self.longitudinal else set()
        unknown: list[str] = []
        for row in rows:
            for name in row:
                if (
                    name not in allowed
                    and name not in unknown
                    and not (name in RESERVED and str(row[name]) == "")
                ):
                    unknown.append(name)
        if unknown:
            raise ApiError(
                400,
                "The following fields were not found in the project as real data fields: "
                + ", ".join(unknown),
            )
        bad_events = []
        problems: list[str] = []
        staged: list[tuple[str, Key, dict[str, str]]] = []
        renames: dict[str, str] = {}
        for row in rows:
            record = str(row.get(self.id_field, "")).strip()
            if not record:
                raise ApiError(
                    400, f"The record ID field ({self.id_field}) is missing or blank in a row"
                )
            if auto_number:
                if record not in renames:
                    taken = set(self.records) | set(renames.values())
                    n = int(self.next_record_name())
                    while str(n) in taken:
                        n += 1
                    renames[record] = str(n)
                record = renames[record]
            event = str(row.get("redcap_event_name", "") or "")
            if self.longitudinal:
                if not event:
                    event = self.events[0].unique_event_name  # REDCap's quirk: first event
                elif self.event(event) is None:
                    if event not in bad_events:
                        bad_events.append(event)
                    continue
            instr = str(row.get("redcap_repeat_instrument", "") or "")
            raw_inst = row.get("redcap_repeat_instance", "")
            inst: int | None = None
            if raw_inst not in ("", None):
                try:
                    inst = int(str(raw_inst))
                    if inst < 1 or isinstance(raw_inst, bool):
                        raise ValueError
                except ValueError:
                    problems.append(
                        csv_line(
                            record,
                            "redcap_repeat_instance",
                            str(raw_inst),
                            "The value must be a positive whole number",
                        )
                    )
                    continue
            if instr:
                if instr not in self.forms or not self.repeating_form(event, instr):
                    problems.append(
                        csv_line(
                            record,
                            "redcap_repeat_instrument",
                            instr,
                            f"The instrument '{instr}' is not a repeating instrument"
                            + (f" in event '{event}'" if event else ""),
                        )
                    )
                    continue
                if inst is None:
                    inst = 1
            elif inst is not None and not self.repeating_event(event):
                problems.append(
                    csv_line(
                        record,
                        "redcap_repeat_instance",
                        str(inst),
                        "redcap_repeat_instance was given but redcap_repeat_instrument is "
                        "blank and the event does not repeat",
                    )
                )
                continue
            elif inst is None and self.repeating_event(event):
                inst = 1
            key: Key = (event, instr, inst)
            values: dict[str, str] = {}
            for name, value in row.items():
                if name in RESERVED or name == self.id_field:
                    continue
                f, form = cols[name]
                text = (
                    ""
                    if value is None
                    else (str(value) if not isinstance(value, bool) else str(int(value)))
                )
                if text == "" and not overwrite:
                    continue
                if not self._applies(key, form):
                    if text == "":
                        continue
                    if form not in self.forms_in(event):
                        why = f"The form '{form}' has not been designated to the event '{event}'"
                    elif instr:
                        why = f"The field belongs to form '{form}', not to the repeating instrument '{instr}'"
                    else:
                        why = (
                            f"The field belongs to the repeating instrument '{form}': "
                            "give redcap_repeat_instrument and redcap_repeat_instance"
                        )
                    problems.append(csv_line(record, name, text, why))
                    continue
                msg = _check_value(name, f, text) if text != "" else None
                if msg:
                    problems.append(csv_line(record, name, text, msg))
                    continue
                values[name] = text
            staged.append((record, key, values))
        if bad_events:
            raise ApiError(
                400,
                "The following values of redcap_event_name are invalid: " + ", ".join(bad_events),
            )
        if problems:
            raise ApiError(400, "\n".join(problems))
        ids: list[str] = []
        for record, key, values in staged:
            if record not in ids:
                ids.append(record)
            if not values:
                continue  # an ID-only row is accepted and stores nothing
            data = self.records.setdefault(record, {})
            stored = data.setdefault(key, {})
            for name, text in values.items():
                if text == "":
                    stored.pop(name, None)
                else:
                    stored[name] = text
            self._touch(record)
        if auto_number:
            return [
                renames.get(r, r)
                for r in dict.fromkeys(str(row.get(self.id_field, "")).strip() for row in rows)
            ]
        return ids

    # -- delete --------------------------------------------------------------------------

    def delete(
        self, records: list[str], *, arm: str, instrument: str, event: str, repeat_instance: str
    ) -> int:
        if not records:
            raise ApiError(400, "No records were provided to delete")
        missing = [r for r in records if r not in self.records]
        if missing:
            raise ApiError(
                400,
                "One or more of the records provided cannot be deleted because they do "
                "not exist in the project. The following records do not exist: "
                + ", ".join(missing),
            )
        if event and (not self.longitudinal or self.event(event) is None):
            raise ApiError(400, f"The event '{event}' is not valid")
        if instrument and instrument not in self.forms:
            raise ApiError(400, f"The instrument '{instrument}' is not valid")
        if arm and not any(str(a["arm_num"]) == str(arm) for a in self.arms):
            raise ApiError(400, f"The arm '{arm}' is not valid")
        inst = int(repeat_instance) if repeat_instance else None
        count = 0
        for record in dict.fromkeys(records):
            data = self.records[record]
            if not (instrument or event or repeat_instance or arm):
                del self.records[record]
                self.modified.pop(record, None)
                for fkey in [k for k in self.files if k[0] == record]:
                    del self.files[fkey]
                count += 1
                continue
            arm_events = (
                {e.unique_event_name for e in self.events if str(e.arm_num) == str(arm)}
                if arm
                else None
            )
            for key in list(data):
                ev, instr, kinst = key
                if event and ev != event or arm_events is not None and ev not in arm_events:
                    continue
                if inst is not None and kinst != inst:
                    continue
                if instrument:
                    if instr and instr != instrument:
                        continue
                    for col, (_, form) in self.columns().items():
                        if form == instrument:
                            data[key].pop(col, None)
                    if instr == instrument or not data[key]:
                        del data[key]
                else:
                    del data[key]
            if not data:
                del self.records[record]
            self._touch(record)
            count += 1
        return count

    # -- files ---------------------------------------------------------------------------

    def file_key(
        self, record: str, field_name: str, event: str, repeat_instance: str, must_exist: bool
    ) -> tuple[tuple[str, str, int, str], Key]:
        f = self.field(field_name)
        if f is None or f.type != "file":
            raise ApiError(400, f"The field '{field_name}' is not a file upload field")
        if self.longitudinal:
            if not event or self.event(event) is None:
                raise ApiError(
                    400, f"The event '{event}' is not valid (required in a longitudinal project)"
                )
            if f.form not in self.forms_in(event):
                raise ApiError(
                    400, f"The form '{f.form}' has not been designated to the event '{event}'"
                )
        else:
            event = ""
        if must_exist and record not in self.records:
            raise ApiError(400, f"The record '{record}' does not exist")
        inst = int(repeat_instance or 1)
        if self.repeating_form(event, f.form):
            key: Key = (event, f.form, inst)
        elif self.repeating_event(event):
            key = (event, "", inst)
        else:
            key, inst = (event, "", None), 1
        return (record, event, inst, field_name), key

    def store_file(
        self,
        record: str,
        field_name: str,
        event: str,
        repeat_instance: str,
        name: str,
        data: bytes,
        mime: str,
    ) -> None:
        if record not in self.records:
            raise ApiError(400, f"The record '{record}' does not exist")
        fkey, key = self.file_key(record, field_name, event, repeat_instance, True)
        self.files[fkey] = StoredFile(name, data, mime)
        self.records[record].setdefault(key, {})[field_name] = name
        self._touch(record)

    def load_file(
        self, record: str, field_name: str, event: str, repeat_instance: str
    ) -> StoredFile:
        fkey, _ = self.file_key(record, field_name, event, repeat_instance, True)
        if fkey not in self.files:
            raise ApiError(400, "There is no file to download for this record")
        return self.files[fkey]

    def delete_file(self, record: str, field_name: str, event: str, repeat_instance: str) -> None:
        fkey, key = self.file_key(record, field_name, event, repeat_instance, True)
        if fkey not in self.files:
            raise ApiError(400, "There is no file to delete for this record")
        del self.files[fkey]
        self.records[record].get(key, {}).pop(field_name, None)
        self._touch(record)


def _parse_range(text: str, name: str) -> float | None:
    if not text:
        return None
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"):
        try:
            return dt.datetime.strptime(text, fmt).timestamp()
        except ValueError:
            pass
    raise ApiError(
        400, f'The value of the parameter "{name}" is not a valid date-time (YYYY-MM-DD HH:MM:SS)'
    )


_INT = re.compile(r"[-+]?\d+")
_NUM = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_DATE_FORMATS = {
    "date_ymd": ("%Y-%m-%d",),
    "date_mdy": ("%Y-%m-%d",),
    "date_dmy": ("%Y-%m-%d",),
    "datetime_ymd": ("%Y-%m-%d %H:%M",),
    "datetime_mdy": ("%Y-%m-%d %H:%M",),
    "datetime_dmy": ("%Y-%m-%d %H:%M",),
    "datetime_seconds_ymd": ("%Y-%m-%d %H:%M:%S",),
    "datetime_seconds_mdy": ("%Y-%m-%d %H:%M:%S",),
    "datetime_seconds_dmy": ("%Y-%m-%d %H:%M:%S",),
    "time": ("%H:%M",),
}


def _check_value(name: str, f: Field | None, text: str) -> str | None:
    """REDCap's reason for rejecting ``text`` in column ``name``, or None when it is valid."""
    if f is None:  # <form>_complete
        return None if text in ("0", "1", "2") else f"The value is not a valid category for {name}"
    if f.type == "checkbox":
        return None if text in ("0", "1") else f"The value for {name} must be 0 or 1"
    if f.type in ("dropdown", "radio", "yesno", "truefalse"):
        return None if text in dict(f.choices) else f"The value is not a valid category for {name}"
    if f.type == "file":
        return "File upload fields cannot be imported as record data (use content=file)"
    v = f.validation
    if v == "integer" and not _INT.fullmatch(text):
        return "The value is not a valid integer"
    if v == "number" and not _NUM.fullmatch(text):
        return "The value is not a valid number"
    if v == "email" and not _EMAIL.fullmatch(text):
        return "The value is not a valid e-mail address"
    if v in _DATE_FORMATS:
        for fmt in _DATE_FORMATS[v]:
            try:
                dt.datetime.strptime(text, fmt)
                return None
            except ValueError:
                pass
        shape = {
            "%Y-%m-%d": "YYYY-MM-DD",
            "%Y-%m-%d %H:%M": "YYYY-MM-DD HH:MM",
            "%Y-%m-%d %H:%M:%S": "YYYY-MM-DD HH:MM:SS",
            "%H:%M": "HH:MM",
        }[_DATE_FORMATS[v][0]]
        return f"The value is not a valid date/time for validation type {v} (expected {shape})"
    return None


def load_specs(config_dir: Path = CONFIG_DIR) -> dict[str, dict[str, Any]]:
    data = json.loads((config_dir / "projects.json").read_text(encoding="utf-8"))
    return {k: v for k, v in data.items() if not k.startswith("_")}


def load_project(
    name: str, spec: dict[str, Any], config_dir: Path = CONFIG_DIR, project_id: int = 1
) -> Project:
    return Project.from_dictionary(name, config_dir / spec["dictionary"], spec, project_id)


def parse_csv_rows(text: str) -> list[dict[str, str]]:
    return [dict(r) for r in csv.DictReader(io.StringIO(text))]
