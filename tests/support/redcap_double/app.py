"""The REDCap API double: a Flask app answering ``POST /api/`` the way REDCap does.

RedcapDouble holds the projects (built from config/redcap/*.csv and projects.json), the
tokens (token -> project and rights), an append-only call log and the fault plan. Its
``app`` is the Flask application; the fault layer sits in front of it as WSGI middleware,
so injected failures look the same in-process (transport.DoubleAdapter) and over a real
socket (server.serve).
"""

from __future__ import annotations

import csv
import io
import json
import mimetypes
import re
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from flask import Flask, Response, request
from werkzeug.datastructures import MultiDict
from werkzeug.formparser import parse_form_data

from .model import CONFIG_DIR, ApiError, Project, load_project, load_specs, parse_csv_rows

ALL_RIGHTS = frozenset({"export", "import", "delete", "file"})
TEMPLATE = "ProjectTemplate"
NO_RIGHTS = "You do not have permissions to use the API"
ARRAY_KEYS = ("records", "fields", "forms", "events", "arms")
NOT_IMPLEMENTED = {
    "pdf",
    "report",
    "user",
    "userRole",
    "userRoleMapping",
    "dag",
    "userDagMapping",
    "surveyLink",
    "surveyQueueLink",
    "surveyAccessCode",
    "surveyReturnCode",
    "participantList",
    "fileRepository",
    "log",
    "appRightsCheck",
    "attachment",
}


@dataclass(frozen=True)
class TokenInfo:
    project: str
    rights: frozenset[str] = ALL_RIGHTS
    user: str = "gateway"


@dataclass
class Fault:
    kind: str  # "error" | "drop" | "slow"
    remaining: int
    status: int = 500
    delay: float = 0.0
    after: bool = False  # drop: process the call first, then lose the answer
    body: str | None = None


class SimulatedDrop(Exception):
    """Raised out of the WSGI app in-process: the adapter turns it into a ConnectionError."""


class SimulatedTimeout(Exception):
    """Raised in-process when an injected delay exceeds the client's read timeout."""


@dataclass
class Call:
    n: int
    time: float
    token_tail: str
    project: str | None
    content: str
    action: str
    params: dict[str, Any]
    status: int = 200
    data: Any = None  # parsed write payload (record import rows, file name, ...)
    fault: str | None = None
    error: str = ""

    @property
    def is_write(self) -> bool:
        return self.data is not None


@dataclass
class _Result:
    status: int
    body: bytes
    content_type: str
    extra: dict[str, str] = field(default_factory=dict)


class RedcapDouble:
    """Projects, tokens, call log and faults behind one Flask app (``self.app``)."""

    def __init__(
        self,
        projects: Iterable[str] | None = None,
        *,
        config_dir: Path = CONFIG_DIR,
        version: str = "14.9.1",
    ) -> None:
        self.config_dir = Path(config_dir)
        self.specs = load_specs(self.config_dir)
        self.version = version
        self.projects: dict[str, Project] = {}
        self.tokens: dict[str, TokenInfo] = {}
        self.calls: list[Call] = []
        self._faults: list[Fault] = []
        self._lock = threading.RLock()
        names = (
            projects
            if projects is not None
            else [n for n, s in self.specs.items() if not s.get("template")]
        )
        for name in names:
            self.add_project(name)
        self.app = create_app(self)

    # -- set-up --------------------------------------------------------------------------

    def add_project(
        self, name: str, template: str | None = None, spec: dict[str, Any] | None = None
    ) -> Project:
        """A project from its own spec, from ``spec``, or a copy of ``template``'s structure.

        Names not in projects.json get the ProjectTemplate structure (a research project).
        """
        with self._lock:
            pid = len(self.projects) + 1
            if spec is not None:
                proj = load_project(name, spec, self.config_dir, pid)
            elif template is None and name in self.specs and not self.specs[name].get("template"):
                proj = load_project(name, self.specs[name], self.config_dir, pid)
            else:
                tname = template or TEMPLATE
                proj = load_project(tname, self.specs[tname], self.config_dir, pid).copy_structure(
                    name, pid
                )
            self.projects[name] = proj
            return proj

    def add_token(
        self,
        project: str,
        token: str | None = None,
        rights: Iterable[str] = ALL_RIGHTS,
        user: str = "gateway",
    ) -> str:
        if project not in self.projects:
            self.add_project(project)
        token = token or secrets.token_hex(16).upper()
        if not re.fullmatch(r"[0-9A-Fa-f]{32}", token):
            raise ValueError("a REDCap token is 32 hexadecimal characters")
        self.tokens[token] = TokenInfo(project, frozenset(rights), user)
        return token

    def token(self, project: str) -> str:
        """The first all-rights token of ``project`` (made on first use)."""
        for tok, info in self.tokens.items():
            if info.project == project and info.rights == ALL_RIGHTS:
                return tok
        return self.add_token(project)

    def project(self, name: str) -> Project:
        return self.projects[name]

    # -- faults --------------------------------------------------------------------------

    def fail_next(self, n: int = 1, status: int = 500, body: str | None = None) -> None:
        """Answer the next ``n`` calls with ``status`` (REDCap-style error body unless ``body``)."""
        self._faults.append(Fault("error", n, status=status, body=body))

    def drop_next(self, n: int = 1, after: bool = False) -> None:
        """Close the connection without an answer on the next ``n`` calls.

        ``after=True`` processes the call first (the write happens, the answer is lost).
        """
        self._faults.append(Fault("drop", n, after=after))

    def slow_next(self, n: int = 1, seconds: float = 1.0) -> None:
        """Delay the next ``n`` calls by ``seconds`` (past the client's timeout: a timeout)."""
        self._faults.append(Fault("slow", n, delay=seconds))

    def clear_faults(self) -> None:
        self._faults.clear()

    def _take_fault(self) -> Fault | None:
        with self._lock:
            while self._faults and self._faults[0].remaining <= 0:
                self._faults.pop(0)
            if not self._faults:
                return None
            fault = self._faults[0]
            fault.remaining -= 1
            return fault

    # -- call log ------------------------------------------------------------------------

    def calls_for(
        self, content: str | None = None, project: str | None = None, action: str | None = None
    ) -> list[Call]:
        return [
            c
            for c in self.calls
            if (content is None or c.content == content)
            and (project is None or c.project == project)
            and (action is None or c.action == action)
        ]

    def writes(self, project: str | None = None) -> list[Call]:
        """Successful calls that changed data (record import/delete/rename, file import/delete)."""
        return [
            c
            for c in self.calls
            if c.is_write
            and c.status == 200
            and c.fault is None
            and (project is None or c.project == project)
        ]

    def _log(
        self,
        form: MultiDict,
        status: int,
        *,
        data: Any = None,
        fault: str | None = None,
        error: str = "",
    ) -> Call:
        token = form.get("token", "")
        info = self.tokens.get(token)
        params: dict[str, Any] = {}
        for key in form:
            if key in ("token", "data"):
                continue
            values = form.getlist(key)
            params[key] = values[0] if len(values) == 1 else values
        with self._lock:
            call = Call(
                len(self.calls) + 1,
                time.time(),
                token[-4:] if token else "",
                info.project if info else None,
                form.get("content", ""),
                form.get("action", ""),
                params,
                status,
                data,
                fault,
                error,
            )
            self.calls.append(call)
        return call

    # -- dispatch ------------------------------------------------------------------------

    def handle(self, form: MultiDict, files: Any) -> _Result:
        with self._lock:
            written: dict[str, Any] = {}
            try:
                result = self._dispatch(form, files, written)
            except ApiError as exc:
                result = _error(form, exc.status, exc.message)
                self._log(form, exc.status, error=exc.message)
                return result
            self._log(form, result.status, data=written.get("data"))
            return result

    def _dispatch(self, form: MultiDict, files: Any, written: dict[str, Any]) -> _Result:
        token = form.get("token", "")
        if not token:
            raise ApiError(401, "API token was missing or incorrect")
        info = self.tokens.get(token)
        if info is None:
            raise ApiError(403, NO_RIGHTS)
        proj = self.projects[info.project]
        content = form.get("content", "")
        action = form.get("action", "")
        has_data = "data" in form

        def need(right: str) -> None:
            if right not in info.rights:
                raise ApiError(403, NO_RIGHTS)

        if content == "record":
            if action == "delete":
                need("delete")
                return self._delete(proj, form, written)
            if action == "rename":
                need("import")
                return self._rename(proj, form, written)
            if has_data and action in ("", "import"):
                need("import")
                return self._import(proj, form, written)
            if action in ("", "export"):
                need("export")
                return self._export_records(proj, form)
            raise ApiError(400, 'The value of the parameter "action" is not valid')
        if content == "version":
            need("export")
            return _Result(200, self.version.encode(), "text/html; charset=utf-8")
        if content == "generateNextRecordName":
            need("export")
            return _Result(200, proj.next_record_name().encode(), "text/html; charset=utf-8")
        if content == "file":
            return self._file(proj, form, files, written, need)
        if has_data or action in ("import", "delete"):
            if content in (
                "metadata",
                "project",
                "event",
                "arm",
                "formEventMapping",
                "repeatingFormsEvents",
            ):
                raise ApiError(
                    501,
                    f"content={content} with data or action={action or 'import'} "
                    "is not implemented by the REDCap double",
                )
        if content in NOT_IMPLEMENTED:
            raise ApiError(501, f"content={content} is not implemented by the REDCap double")
        need("export")
        if content == "metadata":
            return _data(form, proj.metadata(_list(form, "fields"), _list(form, "forms")))
        if content == "project":
            return _data(form, proj.project_info(), single=True)
        if content in ("event", "arm", "formEventMapping"):
            what = {"event": "events", "arm": "arms", "formEventMapping": "form/event mappings"}[
                content
            ]
            if not proj.longitudinal:
                raise ApiError(400, f"You cannot export {what} for classic projects")
            arms = _list(form, "arms")
            return _data(form, self._structure(proj, content, arms))
        if content == "repeatingFormsEvents":
            return _data(form, proj.repeating_forms_events())
        if content == "instrument":
            return _data(
                form,
                [
                    {"instrument_name": f, "instrument_label": proj.form_labels.get(f, f)}
                    for f in proj.forms
                ],
            )
        if content == "exportFieldNames":
            return _data(form, proj.export_field_names(form.get("field", "")))
        raise ApiError(400, 'The value of the parameter "content" is not valid')

    @staticmethod
    def _structure(proj: Project, content: str, arms: list[str]) -> list[dict[str, Any]]:
        def wanted(arm_num: Any) -> bool:
            return not arms or str(arm_num) in arms

        if content == "arm":
            return [
                {"arm_num": a["arm_num"], "name": a["name"]}
                for a in proj.arms
                if wanted(a["arm_num"])
            ]
        if content == "event":
            return [
                {
                    "event_name": e.event_name,
                    "arm_num": e.arm_num,
                    "unique_event_name": e.unique_event_name,
                    "custom_event_label": "",
                    "event_id": e.event_id,
                    "days_offset": 0,
                    "offset_min": 0,
                    "offset_max": 0,
                }
                for e in proj.events
                if wanted(e.arm_num)
            ]
        return [
            {"arm_num": e.arm_num, "unique_event_name": e.unique_event_name, "form": f}
            for e in proj.events
            if wanted(e.arm_num)
            for f in e.forms
        ]

    # -- records -------------------------------------------------------------------------

    def _export_records(self, proj: Project, form: MultiDict) -> _Result:
        kind = form.get("type", "flat") or "flat"
        if kind not in ("flat", "eav"):
            raise ApiError(400, 'The value of the parameter "type" is not valid')
        raw_or_label = form.get("rawOrLabel", "raw") or "raw"
        if raw_or_label not in ("raw", "label"):
            raise ApiError(
                400, f"rawOrLabel={raw_or_label} is not supported by the REDCap double (raw, label)"
            )
        rows = proj.export(
            records=_list(form, "records"),
            fields=_list(form, "fields"),
            forms=_list(form, "forms"),
            events=_list(form, "events"),
            kind=kind,
            labels=raw_or_label == "label",
            checkbox_labels=_bool(form.get("exportCheckboxLabel", "")),
            logic=form.get("filterLogic", "").strip(),
            date_begin=form.get("dateRangeBegin", ""),
            date_end=form.get("dateRangeEnd", ""),
        )
        return _data(form, rows)

    def _import(self, proj: Project, form: MultiDict, written: dict[str, Any]) -> _Result:
        fmt = form.get("format", "xml") or "xml"
        text = form.get("data", "")
        if fmt == "json":
            try:
                rows = json.loads(text)
            except ValueError:
                raise ApiError(400, "The data being imported is not valid JSON") from None
            if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
                raise ApiError(
                    400,
                    "The data being imported is not formatted correctly: "
                    "expected a JSON array of objects (one per row)",
                )
        elif fmt == "csv":
            rows = parse_csv_rows(text)
        else:
            raise ApiError(
                400, f"format={fmt} is not supported by the REDCap double for imports (json, csv)"
            )
        overwrite = form.get("overwriteBehavior", "normal") or "normal"
        if overwrite not in ("normal", "overwrite"):
            raise ApiError(400, 'The value of the parameter "overwriteBehavior" is not valid')
        ret = form.get("returnContent", "count") or "count"
        if ret not in ("count", "ids", "nothing"):
            raise ApiError(
                400 if ret != "auto_ids" else 501,
                f"returnContent={ret} is not supported by the REDCap double (count, ids, nothing)",
            )
        ids = proj.import_rows(
            rows,
            overwrite=overwrite == "overwrite",
            date_format=form.get("dateFormat", ""),
            auto_number=_bool(form.get("forceAutoNumber", "")),
        )
        written["data"] = rows
        if _bool(form.get("backgroundProcess", "")):
            return _json({"success": True})
        if ret == "nothing":
            return _Result(200, b"", "text/html; charset=utf-8")
        if ret == "ids":
            return _json(ids)
        return _json({"count": len(ids)})

    def _delete(self, proj: Project, form: MultiDict, written: dict[str, Any]) -> _Result:
        records = _list(form, "records")
        n = proj.delete(
            records,
            arm=form.get("arm", ""),
            instrument=form.get("instrument", ""),
            event=form.get("event", ""),
            repeat_instance=form.get("repeat_instance", ""),
        )
        written["data"] = {"deleted": records}
        return _json(n)

    def _rename(self, proj: Project, form: MultiDict, written: dict[str, Any]) -> _Result:
        old, new = form.get("record", ""), form.get("new_record_name", "")
        if old not in proj.records:
            raise ApiError(400, f"The record '{old}' does not exist")
        if not new or new in proj.records:
            raise ApiError(400, "The new record name is blank or already exists")
        proj.records[new] = proj.records.pop(old)
        proj.modified[new] = time.time()
        proj.modified.pop(old, None)
        for key in [k for k in proj.files if k[0] == old]:
            proj.files[(new, *key[1:])] = proj.files.pop(key)
        written["data"] = {"renamed": [old, new]}
        return _json(1)

    # -- files ---------------------------------------------------------------------------

    def _file(
        self, proj: Project, form: MultiDict, files: Any, written: dict[str, Any], need: Any
    ) -> _Result:
        action = form.get("action", "")
        args = (
            form.get("record", ""),
            form.get("field", ""),
            form.get("event", ""),
            form.get("repeat_instance", ""),
        )
        if action == "export":
            need("export")
            stored = proj.load_file(*args)
            return _Result(200, stored.data, f'{stored.mime}; name="{stored.name}"')
        if action == "import":
            need("import")
            need("file")
            upload = files.get("file") if files else None
            if upload is None or not upload.filename:
                raise ApiError(400, "No valid file was uploaded")
            data = upload.read()
            mime = (
                upload.mimetype
                or mimetypes.guess_type(upload.filename)[0]
                or "application/octet-stream"
            )
            if mime in ("", "application/x-www-form-urlencoded"):
                mime = "application/octet-stream"
            proj.store_file(*args, upload.filename, data, mime)
            written["data"] = {"file": upload.filename, "bytes": len(data)}
            return _Result(200, b"", "text/html; charset=utf-8")
        if action == "delete":
            need("file")
            proj.delete_file(*args)
            written["data"] = {"file_deleted": args[1]}
            return _Result(200, b"", "text/html; charset=utf-8")
        raise ApiError(400, 'The value of the parameter "action" is not valid')


# -- helpers ----------------------------------------------------------------------------


def _bool(value: str) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "y")


def _list(form: MultiDict, key: str) -> list[str]:
    """``key[0]=a&key[1]=b`` (any indices, in index order), ``key[]=a`` and ``key=a,b``."""
    indexed: list[tuple[int, int, str]] = []
    pattern = re.compile(re.escape(key) + r"\[(\d*)\]")
    order = 0
    for name in form:
        m = pattern.fullmatch(name)
        if not m:
            continue
        for value in form.getlist(name):
            indexed.append((int(m.group(1)) if m.group(1) else 1 << 30, order, value))
            order += 1
    out = [v for _, _, v in sorted(indexed)]
    for value in form.getlist(key):
        out += [v.strip() for v in value.split(",") if v.strip()]
    return [v for v in out if v != ""]


def _fmt(form: MultiDict) -> str:
    return form.get("format", "xml") or "xml"


def _json(obj: Any) -> _Result:
    return _Result(200, json.dumps(obj).encode(), "application/json; charset=utf-8")


def _data(form: MultiDict, obj: Any, single: bool = False) -> _Result:
    fmt = _fmt(form)
    if fmt == "json":
        return _json(obj)
    if fmt == "csv":
        rows = [obj] if single else obj
        buf = io.StringIO()
        if rows:
            writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        return _Result(200, buf.getvalue().encode(), "text/csv; charset=utf-8")
    raise ApiError(
        400, f"format={fmt} is not supported by the REDCap double for exports (json, csv)"
    )


def _error(form: MultiDict, status: int, message: str) -> _Result:
    fmt = form.get("returnFormat") or form.get("format") or "xml"
    if fmt == "json":
        return _Result(
            status, json.dumps({"error": message}).encode(), "application/json; charset=utf-8"
        )
    if fmt == "csv":
        return _Result(status, f"ERROR: {message}".encode(), "text/csv; charset=utf-8")
    body = f'<?xml version="1.0" encoding="UTF-8" ?>\n<hash>\n  <error>{escape(message)}</error>\n</hash>'
    return _Result(status, body.encode(), "text/xml; charset=utf-8")


def _response(result: _Result) -> Response:
    resp = Response(result.body, status=result.status)
    resp.headers["Content-Type"] = result.content_type
    for k, v in result.extra.items():
        resp.headers[k] = v
    return resp


class _FaultLayer:
    """WSGI middleware applying the double's fault plan before (or after) the Flask app."""

    def __init__(self, app: Any, double: RedcapDouble) -> None:
        self.app, self.double = app, double

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        fault = self.double._take_fault()
        if fault is None:
            return self.app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        copy = dict(environ, **{"wsgi.input": io.BytesIO(body)})
        _, form, _ = parse_form_data(copy)
        if fault.kind == "slow":
            timeout = environ.get("redcap_double.timeout")
            if timeout is not None and fault.delay >= timeout:
                time.sleep(timeout)
                self.double._log(form, 0, fault="timeout")
                raise SimulatedTimeout()
            time.sleep(fault.delay)
            return self.app(environ, start_response)
        if fault.kind == "error":
            self.double._log(form, fault.status, fault="error")
            if fault.body is not None:
                result = _Result(fault.status, fault.body.encode(), "text/html; charset=utf-8")
            else:
                result = _error(
                    form,
                    fault.status,
                    "Internal server error (fault injected by the REDCap double)",
                )
            return _response(result)(environ, start_response)
        # drop
        if fault.after:
            chunks = list(self.app(environ, lambda *a, **k: None))
            del chunks
        self.double._log(form, 0, fault="drop")
        if environ.get("redcap_double.inprocess"):
            raise SimulatedDrop()
        sock = environ.get("werkzeug.socket")
        if sock is not None:
            import socket

            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        raise ConnectionResetError("connection dropped by the REDCap double (fault injection)")


def create_app(double: RedcapDouble) -> Flask:
    app = Flask("redcap_double")

    @app.post("/api/")
    def api() -> Response:
        return _response(double.handle(request.form, request.files))

    app.wsgi_app = _FaultLayer(app.wsgi_app, double)  # type: ignore[method-assign]
    return app
