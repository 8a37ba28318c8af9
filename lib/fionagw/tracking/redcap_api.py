"""A REDCap API client speaking REDCap's own wire protocol over ``requests``.

Every call is an HTTP POST of a form-encoded body to the one API URL (``.../api/``) with the
project's token and ``content`` (plus ``action`` where REDCap needs it); lists go as indexed
keys ``records[0]=..&records[1]=..``. Exports ask for ``format=json``, ``type=flat``,
``rawOrLabel=raw`` and ``exportCheckboxLabel=false``, so values come back as stored codes and
checkboxes as ``field___code`` columns; ``redcap_repeat_instance`` is an int on repeat rows.

Reliability: connection errors, timeouts and HTTP 5xx are retried with exponential backoff
(``retries`` extra attempts at most); a 4xx answer is REDCap saying no, and is never retried.
Imports are safe to retry because every row names its record and repeat instance.

Errors raise RedcapError. Its text is one line: our name of the project, the operation and
REDCap's own message (taken from its JSON, XML or text error body). It never contains the
token, and validation messages are reduced to field names and REDCap's reasons, so no
record IDs or values end up in logs.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

if TYPE_CHECKING:
    from fionagw.config import TrackerSettings

log = logging.getLogger("fionagw.tracking.redcap")

TOKEN_RE = re.compile(r"[0-9A-Fa-f]{32}")
MAX_BACKOFF_S = 30.0
_MAX_MESSAGE = 400


class RedcapError(Exception):
    """A failed REDCap call: str() is 'REDCap project <name>: <operation>: [<status> ]<message>'."""

    def __init__(
        self, project: str, operation: str, message: str, status: int | None = None
    ) -> None:
        self.project, self.operation, self.message, self.status = (
            project,
            operation,
            message,
            status,
        )
        text = f"{status} {message}" if status is not None else message
        super().__init__(f"REDCap project {project}: {operation}: {text}")

    @property
    def retryable(self) -> bool:
        return self.status is None or self.status >= 500


def _chunks(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def _validation_summary(text: str) -> str | None:
    """REDCap's per-value errors ("record","field","value","reason" lines) without record/value."""
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    if not lines or not all(ln.lstrip().startswith('"') for ln in lines):
        return None
    reasons: dict[tuple[str, str], int] = {}
    for row in csv.reader(io.StringIO("\n".join(lines))):
        if len(row) != 4:
            return None
        key = (row[1], row[3].replace(row[2], "<value>") if row[2] else row[3])
        reasons[key] = reasons.get(key, 0) + 1
    parts = [
        f"{fld}: {reason}" + (f" ({n} rows)" if n > 1 else "")
        for (fld, reason), n in reasons.items()
    ]
    return "; ".join(parts)


def error_message(body: bytes | str, content_type: str = "") -> str:
    """REDCap's error text from a JSON {"error": ..}, XML <error>..</error> or plain-text body."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    stripped = text.strip()
    message = ""
    if stripped.startswith(("{", "[")):
        try:
            data = json.loads(stripped)
        except ValueError:
            data = None
        if isinstance(data, dict) and "error" in data:
            message = str(data["error"])
    if not message:
        m = re.search(r"<error>(.*?)</error>", stripped, re.S | re.I)
        if m:
            message = re.sub(
                r"&(lt|gt|amp|quot|apos);",
                lambda x: {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'"}[x.group(1)],
                m.group(1),
            )
    if not message and stripped.upper().startswith("ERROR:"):
        message = stripped[6:].strip()
    if not message and stripped and "html" not in content_type.lower() and len(stripped) < 1000:
        message = stripped
    if not message:
        return "(no error message in the response)"
    return _validation_summary(message) or message


class RedcapClient:
    """One REDCap project (``project`` is our name for it, used in errors and logs)."""

    def __init__(
        self,
        url: str,
        token: str,
        project: str,
        *,
        verify: bool | str | Path = True,
        timeout: float = 30.0,
        retries: int = 4,
        chunk_size: int = 50,
        session: requests.Session | None = None,
        backoff_s: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        record_id_field: str | None = None,
    ) -> None:
        if not url.startswith(("https://", "http://")):
            raise ValueError(
                f"REDCap project {project}: API URL must start with https:// or http://"
            )
        if not url.endswith("/"):
            url += "/"
        if not isinstance(token, str) or not TOKEN_RE.fullmatch(token):
            raise ValueError(
                f"REDCap project {project}: API token is not 32 hexadecimal characters"
            )
        if chunk_size < 1 or retries < 0:
            raise ValueError(f"REDCap project {project}: chunk_size must be >= 1 and retries >= 0")
        self.url, self.project = url, project
        self._token = token
        self.verify: bool | str = str(verify) if isinstance(verify, Path) else verify
        self.timeout, self.retries, self.chunk_size = timeout, retries, chunk_size
        self.backoff_s, self._sleep = backoff_s, sleep
        self.session = session if session is not None else requests.Session()
        self.session.verify = self.verify
        self._record_id_field = record_id_field

    @classmethod
    def from_settings(
        cls, settings: TrackerSettings, tokens: dict[str, str], project: str, **kwargs: Any
    ) -> RedcapClient:
        """A client configured from config.json's tracker section and the secrets file."""
        from fionagw.tracking.secrets import token_for

        verify: bool | str = str(settings.ca_bundle) if settings.ca_bundle else settings.verify_tls
        return cls(
            settings.redcap_url,
            token_for(tokens, project, settings.secrets_file or "secrets file"),
            project,
            verify=verify,
            timeout=settings.timeout_s,
            retries=settings.retries,
            chunk_size=settings.chunk_size,
            **kwargs,
        )

    def __repr__(self) -> str:  # never show the token
        return f"RedcapClient({getattr(self, 'url', '?')!r}, project={getattr(self, 'project', '?')!r})"

    # -- transport -------------------------------------------------------------------

    def _post(
        self, operation: str, payload: dict[str, Any], files: Any = None
    ) -> requests.Response:
        data = {"token": self._token, **payload}
        attempts = self.retries + 1
        for attempt in range(1, attempts + 1):
            try:
                resp = self.session.post(
                    self.url,
                    data=data,
                    files=files,
                    timeout=self.timeout,
                    verify=self.verify,
                    allow_redirects=False,
                )
            except requests.exceptions.SSLError as exc:  # a certificate problem does not go away
                raise RedcapError(
                    self.project,
                    operation,
                    self._describe(exc).replace("connection failed", "TLS failed", 1),
                ) from None
            except (requests.ConnectionError, requests.Timeout) as exc:
                err = RedcapError(self.project, operation, self._describe(exc))
            except requests.RequestException as exc:  # invalid URL, TLS setup, ...: not transient
                raise RedcapError(self.project, operation, self._describe(exc)) from None
            else:
                if resp.status_code < 300:
                    return resp
                if resp.status_code < 400:  # a redirected POST would lose its body
                    where = resp.headers.get("Location", "?").split("?")[0]
                    raise RedcapError(
                        self.project,
                        operation,
                        f"redirected to {where}; set redcap_url to the final API URL",
                        resp.status_code,
                    ) from None
                err = RedcapError(
                    self.project,
                    operation,
                    self._scrub(error_message(resp.content, resp.headers.get("Content-Type", ""))),
                    resp.status_code,
                )
                if not err.retryable:
                    raise err from None
            if attempt == attempts:
                if attempts > 1:
                    err = RedcapError(
                        self.project,
                        operation,
                        f"{err.message} (gave up after {attempts} attempts)",
                        err.status,
                    )
                raise err from None
            delay = min(MAX_BACKOFF_S, self.backoff_s * 2 ** (attempt - 1))
            log.warning("%s; retry %d/%d in %.1f s", err, attempt, self.retries, delay)
            self._sleep(delay)
        raise AssertionError("unreachable")

    def _describe(self, exc: Exception) -> str:
        kind = (
            "timeout"
            if isinstance(exc, requests.Timeout)
            else (
                "connection failed"
                if isinstance(exc, requests.ConnectionError)
                else "request failed"
            )
        )
        detail = str(exc.args[0]) if exc.args else ""
        # urllib3 wraps the real reason deep inside; keep its last, most specific part
        m = re.findall(r"\(Caused by \w+\((.*)\)\)", detail)
        detail = m[-1] if m else detail
        return self._scrub(
            f"{kind}: {type(exc).__name__}: {detail}" if detail else f"{kind}: {type(exc).__name__}"
        )

    def _scrub(self, text: str) -> str:
        return _one_line(text.replace(self._token, "<token>"))

    def _json(self, operation: str, payload: dict[str, Any]) -> Any:
        resp = self._post(operation, {"format": "json", "returnFormat": "json", **payload})
        try:
            data = resp.json()
        except ValueError:
            ctype = resp.headers.get("Content-Type", "?")
            raise RedcapError(
                self.project,
                operation,
                f"unexpected answer (not JSON, Content-Type {ctype})",
                resp.status_code,
            ) from None
        if isinstance(data, dict) and "error" in data:  # REDCap's error with a 200 status
            raise RedcapError(
                self.project,
                operation,
                self._scrub(error_message(json.dumps(data))),
                resp.status_code,
            )
        return data

    @staticmethod
    def _array(payload: dict[str, Any], key: str, values: Iterable[str] | None) -> None:
        for i, value in enumerate(values or ()):
            payload[f"{key}[{i}]"] = value

    # -- project structure -------------------------------------------------------------

    def export_version(self) -> str:
        return self._post(
            "export version", {"content": "version", "format": "json", "returnFormat": "json"}
        ).text.strip()

    def export_project_info(self) -> dict[str, Any]:
        data = self._json("export project info", {"content": "project"})
        if not isinstance(data, dict):
            raise RedcapError(
                self.project, "export project info", "unexpected answer (not an object)"
            )
        return data

    def export_metadata(
        self, fields: Iterable[str] | None = None, forms: Iterable[str] | None = None
    ) -> list[dict[str, str]]:
        payload: dict[str, Any] = {"content": "metadata"}
        self._array(payload, "fields", fields)
        self._array(payload, "forms", forms)
        return self._list("export metadata", payload)

    def export_events(self) -> list[dict[str, Any]]:
        """Events of a longitudinal project; [] for a classic project (REDCap answers 400)."""
        return self._longitudinal_only("export events", {"content": "event"})

    def export_form_event_mapping(self) -> list[dict[str, Any]]:
        return self._longitudinal_only("export form-event mapping", {"content": "formEventMapping"})

    def export_repeating_forms_events(self) -> list[dict[str, Any]]:
        return self._list("export repeating instruments", {"content": "repeatingFormsEvents"})

    def _longitudinal_only(self, operation: str, payload: dict[str, Any]) -> list[dict[str, Any]]:
        try:
            return self._list(operation, payload)
        except RedcapError as exc:
            if exc.status == 400 and "classic project" in exc.message:
                return []
            raise

    def _list(self, operation: str, payload: dict[str, Any]) -> list[Any]:
        data = self._json(operation, payload)
        if not isinstance(data, list):
            raise RedcapError(self.project, operation, "unexpected answer (not a list)")
        return data

    @property
    def record_id_field(self) -> str:
        """The project's record-ID field: the first field of its data dictionary."""
        return self._id_field("export metadata")

    def _id_field(self, operation: str) -> str:
        if self._record_id_field is None:
            meta = self._list(operation, {"content": "metadata"})
            if not meta or not isinstance(meta[0], dict) or "field_name" not in meta[0]:
                raise RedcapError(self.project, operation, "the project has no fields")
            self._record_id_field = str(meta[0]["field_name"])
        return self._record_id_field

    def generate_next_record_name(self) -> str:
        resp = self._post(
            "generate next record name",
            {"content": "generateNextRecordName", "format": "json", "returnFormat": "json"},
        )
        text = resp.text.strip()
        if not text or text.startswith(("{", "<")):
            raise RedcapError(
                self.project,
                "generate next record name",
                self._scrub(error_message(resp.content)),
                resp.status_code,
            )
        return text

    # -- records ---------------------------------------------------------------------

    def export_records(
        self,
        records: Iterable[str] | None = None,
        fields: Iterable[str] | None = None,
        forms: Iterable[str] | None = None,
        filter_logic: str | None = None,
        events: Iterable[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Flat rows (raw codes) of the given records, or of every record, ``chunk_size`` at a time.

        Without ``records`` the record IDs are exported first (one call asking for the ID
        field, plus the fields ``filter_logic`` names), then the rows in chunks. With ``fields``/``forms`` the record-ID field is
        always added, so every row names its record (and event and repeat instance).
        """
        fields = list(fields or ())
        forms = list(forms or ())
        events = list(events or ())
        base: dict[str, Any] = {
            "content": "record",
            "type": "flat",
            "rawOrLabel": "raw",
            "rawOrLabelHeaders": "raw",
            "exportCheckboxLabel": "false",
            "exportSurveyFields": "false",
            "exportDataAccessGroups": "false",
        }
        if filter_logic:
            base["filterLogic"] = filter_logic
        self._array(base, "events", events)
        op = "export records"
        if fields or forms:
            id_field = self._id_field(op)
            if id_field not in fields:
                fields.insert(0, id_field)
        if records is None:
            id_field = self._id_field(op)
            ids_payload = dict(base)
            # with a filter, also ask for the fields it names, so that rows of repeating
            # instruments it matches on are part of the answer
            named = re.findall(r"\[([A-Za-z0-9_]+)(?:\([^)\]]*\))?\]", filter_logic or "")
            self._array(ids_payload, "fields", list(dict.fromkeys([id_field, *named])))
            rows = self._list(op, ids_payload)
            ids = list(dict.fromkeys(str(r[id_field]) for r in rows if r.get(id_field, "") != ""))
        else:
            ids = list(dict.fromkeys(str(r) for r in records))
        out: list[dict[str, Any]] = []
        self._array(base, "fields", fields)
        self._array(base, "forms", forms)
        for chunk in _chunks(ids, self.chunk_size):
            payload = dict(base)
            self._array(payload, "records", chunk)
            out.extend(self._list(op, payload))
        return out

    def import_records(self, rows: Sequence[dict[str, Any]], overwrite: str = "normal") -> int:
        """Import flat rows; returns REDCap's count of records touched (summed over chunks).

        ``overwrite="normal"`` leaves stored values alone where a row has "", ``"overwrite"``
        erases them. Rows are sent ``chunk_size`` records at a time, all rows of one record in
        the same call; a rejected chunk raises RedcapError (earlier chunks stay imported).
        """
        if overwrite not in ("normal", "overwrite"):
            raise ValueError(f"overwrite must be 'normal' or 'overwrite', not {overwrite!r}")
        if not rows:
            return 0
        if len(rows) <= self.chunk_size:  # at most chunk_size records: one call
            batches = [list(rows)]
        else:
            id_field = self._id_field("import records")
            by_record: dict[str, list[dict[str, Any]]] = {}
            for row in rows:
                by_record.setdefault(str(row.get(id_field, "")), []).append(row)
            batches = [
                [row for key in chunk for row in by_record[key]]
                for chunk in _chunks(list(by_record), self.chunk_size)
            ]
        total = 0
        for batch in batches:
            result = self._json(
                "import records",
                {
                    "content": "record",
                    "type": "flat",
                    "overwriteBehavior": overwrite,
                    "forceAutoNumber": "false",
                    "returnContent": "count",
                    "data": json.dumps(batch, separators=(",", ":")),
                },
            )
            if not isinstance(result, dict):
                raise RedcapError(self.project, "import records", "unexpected answer (no count)")
            total += self._int("import records", result.get("count"))
        return total

    def _int(self, operation: str, value: Any) -> int:
        try:
            if isinstance(value, bool):
                raise TypeError
            return int(value)
        except (TypeError, ValueError):
            raise RedcapError(self.project, operation, "unexpected answer (not a number)") from None

    def delete_records(
        self,
        records: Iterable[str],
        *,
        arm: str | None = None,
        instrument: str | None = None,
        event: str | None = None,
        repeat_instance: int | None = None,
    ) -> int:
        """Delete whole records, or one instrument/event/instance of them; returns the count."""
        ids = list(dict.fromkeys(str(r) for r in records))
        total = 0
        for chunk in _chunks(ids, self.chunk_size):
            payload: dict[str, Any] = {"content": "record", "action": "delete"}
            self._array(payload, "records", chunk)
            for key, value in (
                ("arm", arm),
                ("instrument", instrument),
                ("event", event),
                ("repeat_instance", repeat_instance),
            ):
                if value is not None:
                    payload[key] = str(value)
            total += self._int("delete records", self._json("delete records", payload))
        return total
