"""The Review inventory: every DICOM tag left in a project's de-identified data, with its
distinct values and how often each occurs (FIONA's ReviewDICOMTags).

anonymizeAndSend calls :func:`record_files` after each successful transfer with the files it
sent; the inventory is ``DATADIR/review/<PROJECT>.json``::

    {"version": 1, "files": 240, "updated": "2025-01-01 10:00",
     "tags": {"(0010,0010)": {"keyword": "PatientName", "vr": "PN", "count": 240, "files": 240,
                              "values": {"DEMO001": 120, "DEMO002": 120}, "other": 0},
              "(0040,A730)>(0040,A160)": {...},
              "(0019,\"SIEMENS MR HEADER\",0C)": {...}}}

Tag paths: a top-level element is ``(gggg,eeee)``; an element inside a sequence item is the
sequence path, ``>``, then the element (items are merged); a private element is named by its
creator and offset, ``(gggg,"CREATOR",xx)`` (dcmtk's notation), so the same private tag in
different blocks counts as one; the creator elements themselves are ``(gggg,"CREATOR")``.
``count`` is how many times the path occurs, ``files`` in how many files. Values are text
capped at 64 characters (binary values as ``<binary N bytes>``, a sequence as ``<N items>``);
at most 1,000 distinct values are kept per tag, further ones add to ``other``.

Merging happens under a file lock and every write is atomic, so concurrent transfers of one
project never lose each other's counts. A file already recorded (same SOP Instance UID) is
not counted again when a study is sent again: ``<PROJECT>.seen`` holds a short hash of each
recorded instance.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import filelock
import pydicom
from pydicom.datadict import (
    dictionary_keyword,
    dictionary_VR,
    private_dictionary_description,
    private_dictionary_VR,
)
from pydicom.dataset import Dataset

from fionagw.config import SiteConfig
from fionagw.ops.atomic import write_json_atomic

LOGGER = logging.getLogger(__name__)

VERSION = 1
MAX_VALUE_CHARS = 64
MAX_DISTINCT = 1000
LOCK_TIMEOUT_S = 120.0
_SEEN_HASH_CHARS = 16
_PIXEL_TAGS = frozenset({0x7FE00008, 0x7FE00009, 0x7FE00010})


class ReviewInventoryError(Exception):
    """The inventory cannot be read or written; str() is one line naming the file."""


def inventory_path(cfg: SiteConfig, project: str) -> Path:
    """DATADIR/review/<PROJECT>.json (the file anonymizeAndSend passes to record_files)."""
    if not project or "/" in project or project.startswith("."):
        raise ValueError(f"not a project name: {project!r}")
    return cfg.paths.review_inventory(project)


def empty_inventory() -> dict[str, Any]:
    return {"version": VERSION, "files": 0, "updated": "", "tags": {}}


def load_inventory(inventory_file: Path) -> dict[str, Any]:
    """The inventory, or an empty one when the project has none yet."""
    try:
        data = json.loads(inventory_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return empty_inventory()
    except (OSError, ValueError) as exc:
        raise ReviewInventoryError(f"{inventory_file}: unreadable inventory ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("tags"), dict):
        raise ReviewInventoryError(f"{inventory_file}: not a review inventory")
    return data


# --- reading one file ---------------------------------------------------------------------


def _tag(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _value_text(elem: Any, vr: str) -> str:
    value = elem.value
    if value is None or value == "":
        return ""
    if isinstance(value, bytes | bytearray):
        data = bytes(value)
        text = data.rstrip(b"\0 ").decode("latin-1")
        if vr in ("UN", "OB") and text and all(c.isprintable() for c in text):
            return text[:MAX_VALUE_CHARS]  # a private text element read as UN: show it
        return f"<binary {len(data)} bytes>"
    if isinstance(value, list | tuple | pydicom.multival.MultiValue):
        text = "\\".join(str(v) for v in value)
    else:
        text = str(value)
    return text[:MAX_VALUE_CHARS]


def _vr(elem: Any, tag: int, creator: str | None) -> str:
    vr = elem.VR
    if vr and vr != "UN":
        return str(vr)
    try:
        if creator is not None:
            return str(private_dictionary_VR(tag, creator))
        return str(dictionary_VR(tag))
    except KeyError:
        return str(vr or "UN")


def _walk(ds: Dataset, prefix: str, found: dict[str, dict[str, Any]]) -> None:
    """Add every element of ``ds`` (sequences recursively) to ``found`` (path -> info)."""
    creators: dict[tuple[int, int], str] = {}
    for tag in sorted(ds._dict):
        group, element = tag >> 16, tag & 0xFFFF
        if group % 2 == 1 and 0x10 <= element <= 0xFF:
            value = ds._dict[tag].value
            if isinstance(value, bytes):
                value = value.decode("latin-1")
            creators[(group, element)] = str(value or "").strip(" \0")
    for tag in sorted(ds._dict):
        if tag in _PIXEL_TAGS:
            continue
        group, element = tag >> 16, tag & 0xFFFF
        creator: str | None = None
        if group % 2 == 1 and 0x10 <= element <= 0xFF:
            path = f'({group:04X},"{creators[(group, element)]}")'
            keyword, vr = "PrivateCreator", "LO"
        elif group % 2 == 1 and element > 0xFF and (group, element >> 8) in creators:
            creator = creators[(group, element >> 8)]
            path = f'({group:04X},"{creator}",{element & 0xFF:02X})'
            try:
                keyword = private_dictionary_description(tag, creator)
            except KeyError:
                keyword = ""
            vr = ""
        else:
            path = _tag(tag)
            keyword = _keyword(tag)
            vr = ""
        try:
            elem = ds[tag]
        except Exception:  # a value pydicom cannot convert: keep its raw form
            elem = ds._dict[tag]
        vr = vr or _vr(elem, tag, creator)
        full = prefix + path
        entry = found.setdefault(full, {"keyword": keyword, "vr": vr, "values": {}})
        if vr == "SQ":
            items = elem.value or []
            text = f"<{len(items)} item{'s' if len(items) != 1 else ''}>"
            for item in items:
                _walk(item, full + ">", found)
        else:
            text = _value_text(elem, vr)
        entry["values"][text] = entry["values"].get(text, 0) + 1


def _keyword(tag: int) -> str:
    try:
        return dictionary_keyword(tag)
    except KeyError:
        return ""


def file_tags(path: Path) -> tuple[str, dict[str, dict[str, Any]]]:
    """(SOP Instance UID, path -> {keyword, vr, values: {text: count}}) of one file's header."""
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    found: dict[str, dict[str, Any]] = {}
    _walk(ds.file_meta, "", found)  # the file meta group can carry AE titles and UIDs too
    _walk(ds, "", found)
    return str(ds.get("SOPInstanceUID", "")), found


# --- merging ------------------------------------------------------------------------------


def merge_file(inventory: dict[str, Any], tags: dict[str, dict[str, Any]]) -> None:
    """Add one file's tags to ``inventory`` (values capped at MAX_DISTINCT per tag)."""
    inventory["files"] = int(inventory.get("files", 0)) + 1
    all_tags = inventory["tags"]
    for path, info in tags.items():
        entry = all_tags.get(path)
        if entry is None:
            entry = all_tags[path] = {
                "keyword": info["keyword"],
                "vr": info["vr"],
                "count": 0,
                "files": 0,
                "values": {},
                "other": 0,
            }
        entry["files"] += 1
        values = entry["values"]
        for text, n in info["values"].items():
            entry["count"] += n
            if text in values:
                values[text] += n
            elif len(values) < MAX_DISTINCT:
                values[text] = n
            else:
                entry["other"] += n


def _seen_key(sop_uid: str) -> str:
    return hashlib.sha256(sop_uid.encode()).hexdigest()[:_SEEN_HASH_CHARS]


def _read_seen(path: Path) -> set[str]:
    try:
        return set(path.read_text(encoding="ascii").split())
    except FileNotFoundError:
        return set()


def record_files(inventory_file: Path, files: Iterable[Path]) -> None:
    """Count the tags of de-identified ``files`` into ``inventory_file`` (see module doc).

    Files that cannot be read as DICOM are skipped with a warning in the log (the transfer
    already succeeded; the inventory must not undo it). Raises ReviewInventoryError (one
    line) when the inventory itself cannot be read, locked or written.
    """
    files = list(files)
    parsed: list[tuple[str, dict[str, dict[str, Any]]]] = []
    for path in files:  # read outside the lock: the slow part
        try:
            parsed.append(file_tags(Path(path)))
        except Exception as exc:  # bad input must not fail the caller's transfer
            LOGGER.warning(
                "review inventory: file skipped, not readable as DICOM",
                extra={"file": str(path), "error": type(exc).__name__},
            )
    if not parsed:
        return
    seen_file = inventory_file.with_suffix(".seen")
    try:
        inventory_file.parent.mkdir(parents=True, exist_ok=True)
        with filelock.FileLock(str(inventory_file) + ".lock", timeout=LOCK_TIMEOUT_S):
            inventory = load_inventory(inventory_file)
            seen = _read_seen(seen_file)
            new_keys: list[str] = []
            for sop_uid, tags in parsed:
                key = _seen_key(sop_uid) if sop_uid else ""
                if key and (key in seen):
                    continue
                merge_file(inventory, tags)
                if key:
                    seen.add(key)
                    new_keys.append(key)
            if not new_keys and all(sop for sop, _ in parsed):
                return
            inventory["version"] = VERSION
            inventory["updated"] = time.strftime("%Y-%m-%d %H:%M")
            write_json_atomic(inventory_file, inventory, durable=True)
            if new_keys:  # after the inventory: a crash in between can only count twice, never lose
                with open(seen_file, "a", encoding="ascii") as f:
                    f.write("".join(k + "\n" for k in new_keys))
                    f.flush()
                    os.fsync(f.fileno())
    except filelock.Timeout:
        raise ReviewInventoryError(
            f"{inventory_file}: locked by another process for {LOCK_TIMEOUT_S:g} s"
        ) from None
    except OSError as exc:
        raise ReviewInventoryError(
            f"{exc.filename or inventory_file}: cannot write the review "
            f"inventory: {exc.strerror or exc}"
        ) from None
    LOGGER.info(
        "review inventory updated", extra={"inventory": str(inventory_file), "files": len(parsed)}
    )


# --- the page -----------------------------------------------------------------------------


@dataclass
class TagRow:
    path: str
    keyword: str
    vr: str
    count: int
    files: int
    values: list[tuple[str, int]]  # most frequent first
    other: int

    @property
    def distinct(self) -> int:
        return len(self.values) + (1 if self.other else 0)

    def matches(self, words: list[str]) -> bool:
        hay = " ".join([self.path, self.keyword, self.vr] + [v for v, _ in self.values]).lower()
        return all(w in hay for w in words)


def inventory_rows(inventory: dict[str, Any], query: str = "") -> list[TagRow]:
    """The tags in tag-path order, filtered by every word of ``query`` (path, keyword, VR,
    any value; case-insensitive)."""
    words = query.lower().split()
    rows = []
    for path in sorted(inventory.get("tags", {})):
        e = inventory["tags"][path]
        values = sorted(e.get("values", {}).items(), key=lambda kv: (-kv[1], kv[0]))
        row = TagRow(
            path,
            e.get("keyword", ""),
            e.get("vr", ""),
            int(e.get("count", 0)),
            int(e.get("files", 0)),
            values,
            int(e.get("other", 0)),
        )
        if row.matches(words):
            rows.append(row)
    return rows


def rows_csv(rows: Iterable[TagRow]) -> str:
    """One line per (tag, value): tag path, keyword, VR, value, count, files with the tag."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(["tag", "keyword", "vr", "value", "count", "files_with_tag"])
    for r in rows:
        for value, n in r.values:
            w.writerow([r.path, r.keyword, r.vr, _csv_safe(value), n, r.files])
        if r.other:
            w.writerow(
                [r.path, r.keyword, r.vr, f"<{MAX_DISTINCT}+ other values>", r.other, r.files]
            )
    return out.getvalue()


_NUMBER = r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
_NUMBERS = re.compile(rf"^{_NUMBER}(?:\\{_NUMBER})*$")


def _csv_safe(value: str) -> str:
    """Values from DICOM must not run as formulas when the CSV is opened in a spreadsheet
    (signed numbers, e.g. -100.5\\20, stay as they are)."""
    if value[:1] in ("=", "@", "\t", "\r") or (
        value[:1] in ("+", "-") and not _NUMBERS.match(value)
    ):
        return "'" + value
    return value
