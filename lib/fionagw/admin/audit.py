"""The audit trail: one append-only, tamper-evident JSON-lines file, ``logs/audit<SITE>.log``.

Every administrative change (settings, accounts, destinations) and every act on patient data
(assignment, coupling-list upload, retry, cancel, reassign, QC bypass, report download,
export) appends one record. A record is one JSON object a line, in the shape of every other log
(``time``, ``level``, ``component`` ``audit``, ``pid``, ``message``, so ``fiona logs audit`` and
the Logs page show it) plus:

``seq``     the record's number, 1 for the first line of the file
``who``     the acting account (``user`` too, as before), or ``cli:<unix user>``
``when``    UTC time, ISO 8601 with milliseconds
``action``  what was done (``retry``, ``settings-change``, ``user-add``, ...)
``object``  what it was done to: a request file's name, a project, a user or a setting, never a
            patient value (names, IDs, accession numbers)
``from``    where: the web client's address, or ``cli@<host>``
``prev``    the SHA-256 (hex) of the previous line's bytes (64 zeros for the first)
``hash``    the SHA-256 of this record's canonical JSON without ``hash`` itself

An edited record fails its own ``hash``; a removed one breaks the ``seq`` and ``prev`` of the
next; a removed last record (or a truncated file) disagrees with the head file
``.pids/audit-head<SITE>.json`` (the last ``seq`` and line hash, written after each append).
Appends take an exclusive ``flock`` on the file, so web workers and CLI programs chain in one
order; each line is fsynced before the call returns.
"""

from __future__ import annotations

import contextvars
import fcntl
import getpass
import hashlib
import json
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fionagw.config import SiteConfig
from fionagw.ops.atomic import write_bytes_atomic
from fionagw.ops.perms import FILE_MODE, make_dirs

COMPONENT = "audit"
GENESIS = "0" * 64
# Fields the trail sets itself; a caller's fields of these names are refused.
_OWN = ("time", "level", "component", "pid", "message", "seq", "who", "when", "action",
        "object", "from", "prev", "hash")  # fmt: skip

# Where the current act comes from: the web app sets the client's address per request.
_ORIGIN: contextvars.ContextVar[str | None] = contextvars.ContextVar("audit_origin", default=None)


def set_origin(origin: str | None) -> contextvars.Token[str | None]:
    """The "from" of the records this context writes (a web request: the remote address)."""
    return _ORIGIN.set(origin)


def reset_origin(token: contextvars.Token[str | None]) -> None:
    """Undo :func:`set_origin` (the end of a web request)."""
    _ORIGIN.reset(token)


def _default_origin() -> str:
    return f"cli@{socket.gethostname()}"


def _default_who() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return f"cli:uid{os.getuid()}"


def audit_file(cfg: SiteConfig) -> Path:
    return cfg.paths.logfile(COMPONENT)


def head_file(cfg: SiteConfig) -> Path:
    return cfg.paths.state_file("audit-head")


def _canonical(record: dict[str, Any]) -> bytes:
    body = {k: v for k, v in record.items() if k != "hash"}
    return json.dumps(body, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")


def _line_hash(line: bytes) -> str:
    return hashlib.sha256(line.rstrip(b"\n")).hexdigest()


def _last_line(fd: int) -> bytes:
    """The file's last complete line (without its newline), b"" for an empty file."""
    size = os.fstat(fd).st_size
    chunk, data = 4096, b""
    pos = size
    while pos > 0:
        step = min(chunk, pos)
        pos -= step
        data = os.pread(fd, step, pos) + data
        body = data[:-1] if data.endswith(b"\n") else data
        if b"\n" in body:
            return body.rsplit(b"\n", 1)[1]
        chunk *= 2
    return data.rstrip(b"\n")


def record(
    cfg: SiteConfig,
    action: str,
    obj: str,
    message: str = "",
    *,
    who: str | None = None,
    origin: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """Append one record and return it. ``fields`` must not hold a patient value."""
    clash = sorted(set(fields) & set(_OWN))
    if clash:
        raise ValueError(f"audit fields {clash} are the trail's own")
    who = who or _default_who()
    path = audit_file(cfg)
    make_dirs(path.parent)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        last = _last_line(fd)
        seq, prev = 1, GENESIS
        if last:
            try:
                seq = int(json.loads(last)["seq"]) + 1
            except (ValueError, KeyError, TypeError):
                # a line from before the chain (or a damaged one): continue after it; verify says
                seq = sum(1 for _ in open(path, "rb")) + 1  # noqa: SIM115 - read under our lock
            prev = _line_hash(last)
        now = time.time()
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(now))
            + f".{int(now * 1000) % 1000:03d}",
            "level": "INFO",
            "component": COMPONENT,
            "pid": os.getpid(),
            "message": message or action,
            "seq": seq,
            "who": who,
            "user": who,  # the name earlier readers of this log know
            "when": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
            + f".{int(now * 1000) % 1000:03d}Z",
            "action": action,
            "object": obj,
            "from": origin or _ORIGIN.get() or _default_origin(),
            **fields,
            "prev": prev,
        }
        entry["hash"] = hashlib.sha256(_canonical(entry)).hexdigest()
        line = (json.dumps(entry, default=str, ensure_ascii=False) + "\n").encode("utf-8")
        os.write(fd, line)
        os.fsync(fd)
        head = {"seq": seq, "line_sha256": _line_hash(line), "file": str(path)}
        make_dirs(head_file(cfg).parent)
        write_bytes_atomic(head_file(cfg), json.dumps(head).encode("utf-8"))
    finally:
        os.close(fd)  # releases the flock
    return entry


@dataclass(frozen=True)
class Problem:
    seq: int  # the record (line number) that is wrong or missing
    text: str

    def __str__(self) -> str:
        return f"record {self.seq}: {self.text}"


def read_records(path: Path) -> Iterator[tuple[int, dict[str, Any] | None, bytes]]:
    """(line number, record or None if it is not JSON, raw line) of every line."""
    try:
        f = path.open("rb")
    except FileNotFoundError:
        return
    with f:
        for number, line in enumerate(f, 1):
            raw = line.rstrip(b"\n")
            try:
                rec = json.loads(raw)
            except ValueError:
                rec = None
            yield number, rec if isinstance(rec, dict) else None, raw


def verify(cfg: SiteConfig) -> tuple[int, list[Problem]]:
    """Check the whole chain: (records read, problems). No problems: nothing edited or removed
    since the records were written."""
    problems: list[Problem] = []
    flagged: set[int] = set()
    prev, expected, count = GENESIS, 1, 0
    for number, rec, raw in read_records(audit_file(cfg)):
        count = number
        if rec is None:
            problems.append(Problem(number, "not a JSON record (edited or damaged)"))
            flagged.add(number)
            expected += 1
        else:
            seq = rec.get("seq")
            if rec.get("hash") != hashlib.sha256(_canonical(rec)).hexdigest():
                problems.append(Problem(number, "edited: its content does not match its hash"))
                flagged.add(number)
            if seq != expected:
                if isinstance(seq, int) and seq > expected:
                    missing = f"{expected}" if seq == expected + 1 else f"{expected}-{seq - 1}"
                    problems.append(Problem(expected, f"removed (record {missing} is missing)"))
                else:
                    problems.append(Problem(number, f"out of order: numbered {seq!r}"))
            elif rec.get("prev") != prev and number - 1 not in flagged:
                problems.append(
                    Problem(number - 1, "edited or replaced: the next record's hash differs")
                )
            expected = (seq if isinstance(seq, int) else expected) + 1
        prev = _line_hash(raw)
    try:
        head = json.loads(head_file(cfg).read_bytes())
    except (FileNotFoundError, ValueError):
        head = None
    if head is None:
        if count:
            problems.append(Problem(count, "the head file is missing (cannot check the end)"))
    elif int(head.get("seq", 0)) > expected - 1:
        problems.append(
            Problem(expected, f"removed: the trail ends at {expected - 1}, it had {head['seq']}")
        )
    elif int(head.get("seq", 0)) == expected - 1 and head.get("line_sha256") != prev:
        problems.append(Problem(expected - 1, "edited: the last record differs from the head"))
    # fewer than count with the same seq is possible only if lines were appended outside us
    elif int(head.get("seq", 0)) < expected - 1:
        problems.append(Problem(int(head["seq"]) + 1, "appended outside the audit trail"))
    return count, problems


def search(
    cfg: SiteConfig, text: str = "", action: str = "", who: str = "", limit: int = 500
) -> list[dict[str, Any]]:
    """The newest ``limit`` records matching every given filter (``text`` anywhere in the
    line, case-insensitive), newest first."""
    out: list[dict[str, Any]] = []
    needle = text.lower()
    for _number, rec, raw in read_records(audit_file(cfg)):
        if rec is None:
            continue
        if action and rec.get("action") != action:
            continue
        if who and rec.get("who", rec.get("user")) != who:
            continue
        if needle and needle not in raw.decode("utf-8", "replace").lower():
            continue
        out.append(rec)
    return out[::-1][:limit]


CSV_COLUMNS = ("seq", "when", "who", "from", "action", "object", "message", "details")


def csv_rows(records: list[dict[str, Any]]) -> Iterator[list[str]]:
    """The CSV of the Audit page: a header, then one row a record (the other fields as JSON)."""
    yield list(CSV_COLUMNS)
    skip = set(_OWN) | {"user"}
    for rec in records:
        details = {k: v for k, v in rec.items() if k not in skip}
        yield [
            str(rec.get("seq", "")),
            str(rec.get("when", rec.get("time", ""))),
            str(rec.get("who", rec.get("user", ""))),
            str(rec.get("from", "")),
            str(rec.get("action", "")),
            str(rec.get("object", "")),
            str(rec.get("message", "")),
            json.dumps(details, ensure_ascii=False, default=str) if details else "",
        ]
