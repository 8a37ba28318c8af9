"""Score a de-identified output folder against the evaluation set's answer key, in the MIDI-B
challenge's categories. Independent of the release check: it reads every output with pydicom
(every element, nested and private, decoded with its character set) and compares.

* text removed: each planted identifying value is absent from the file's output (a value
  with a digit at an edge also counts inside a longer token: PID12345678901);
* text retained: the words that must stay are still at their path;
* date shifted: each planted date is there, is a date, moved, by the run's one offset;
* UID changed: no original instance UID is in any DICOM file of the output folder (a
  non-DICOM file there holding them, such as a mapping.json, is counted apart:
  ``mapping_leaks``, since it must not travel with the data either);
* UID consistent: one new study UID for the study, one frame of reference, and every
  reference points to the new UID of what it referenced;
* tag retained: the acquisition and patient-characteristic values are unchanged;
* pixels retained: the pixel data (or document) is byte for byte the original.

A file that had to be sent and was not is a false refusal: its retained categories fail.
A file that may be refused (``must_send`` False) must be named in the run's report.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from support.deid_eval.generate import Case

CATEGORIES = (
    "text removed",
    "text retained",
    "date shifted",
    "UID changed",
    "UID consistent",
    "tag retained",
    "pixels retained",
)
_UID = re.compile(rb"[0-9]+(?:\.[0-9]+)+")


@dataclass
class Score:
    passed: Counter = field(default_factory=Counter)
    total: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)  # "category: file: what" (synthetic values)
    false_refusals: list[str] = field(default_factory=list)
    refusals_unexplained: list[str] = field(default_factory=list)
    mapping_leaks: list[str] = field(default_factory=list)  # non-DICOM files with original UIDs

    def check(self, category: str, ok: bool, what: str) -> None:
        self.total[category] += 1
        if ok:
            self.passed[category] += 1
        else:
            self.failures.append(f"{category}: {what}")

    def percent(self, category: str | None = None) -> float:
        if category is None:
            total, passed = sum(self.total.values()), sum(self.passed.values())
        else:
            total, passed = self.total[category], self.passed[category]
        return 100.0 * passed / total if total else 100.0

    def table(self, title: str) -> str:
        lines = [f"{title}:"]
        for c in CATEGORIES:
            lines.append(f"  {c:16s} {self.percent(c):6.1f} %  ({self.passed[c]}/{self.total[c]})")
        lines.append(f"  {'overall':16s} {self.percent():6.1f} %")
        lines.append(f"  refused, must be sent: {len(self.false_refusals)} {self.false_refusals}")
        lines.append(f"  non-DICOM files with original UIDs: {self.mapping_leaks}")
        return "\n".join(lines)


# the device's make and coding scheme names, kept by every profile: a word there is not the
# patient's even when it is spelled the same (a hospital called TOSHIBA, a patient Test)
NOT_IDENTIFYING = frozenset({0x00080070, 0x00081090, 0x00181020, 0x00080102, 0x00080103})


def _texts(ds: Dataset) -> str:
    """Every value of ``ds`` as lower-case text: decoded text, and bytes as Latin-1."""
    out: list[str] = []
    for elem in ds.iterall():
        if elem.tag in (0x7FE00010, 0x00420011) or elem.tag in NOT_IDENTIFYING:
            continue  # pixels and the document are compared apart
        value = elem.value
        if isinstance(value, bytes | bytearray):
            out.append(bytes(value).decode("latin-1"))
        elif isinstance(value, MultiValue | list):
            out.extend(str(v) for v in value)
        elif value is not None and elem.VR != "SQ":
            out.append(str(value))
    return "\0".join(out).lower()


def _present(value: str, text: str) -> bool:
    low = value.lower()
    left = r"(?<![0-9])" if low[0].isdigit() else r"(?<![0-9a-z])" if low[0].isascii() else ""
    right = r"(?![0-9])" if low[-1].isdigit() else r"(?![0-9a-z])" if low[-1].isascii() else ""
    return re.search(left + re.escape(low) + right, text) is not None


def _at(ds: Dataset, path: tuple) -> object:
    node: object = ds
    for step in path:
        try:
            node = node[step] if isinstance(step, int) else getattr(node, step)
        except (AttributeError, IndexError, KeyError, TypeError):
            return None
    return node


def _date(value: str) -> dt.date | None:
    try:
        return dt.date(int(value[:4]), int(value[4:6]), int(value[6:8]))
    except (ValueError, TypeError):
        return None


def _value_text(value: object) -> str:
    if isinstance(value, MultiValue | list):
        return "\\".join(str(v) for v in value)
    return "" if value is None else str(value)


def score(cases: list[Case], out: Path, report: str = "") -> Score:
    """Score the output folder ``out`` of a run on ``cases``; ``report`` is what the run
    printed (where refusals must be named)."""
    s = Score()
    outputs: dict[int, tuple[Path, Dataset]] = {}
    all_uids: set[bytes] = set()
    originals = {uid.encode() for case in cases for uid in case.uids.values()}
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        data = path.read_bytes()
        try:
            ds = dcmread(path)
        except Exception:  # noqa: BLE001 - a non-DICOM file (mapping.json)
            if originals & set(_UID.findall(data)):
                s.mapping_leaks.append(path.name)
            continue
        all_uids |= set(_UID.findall(data))
        if "InstanceNumber" in ds:
            outputs[int(ds.InstanceNumber)] = (path, ds)
    study = Counter(str(ds.get("StudyInstanceUID", "")) for _, ds in outputs.values())
    frame = Counter(str(ds.get("FrameOfReferenceUID", "")) for _, ds in outputs.values())
    new_study = study.most_common(1)[0][0] if study else ""
    new_frame = frame.most_common(1)[0][0] if frame else ""
    offsets: list[int] = []
    shifted: list[tuple[str, str, dt.date | None, dt.date]] = []
    for case in cases:
        name = case.path.name
        for role, uid in case.uids.items():
            s.check("UID changed", uid.encode() not in all_uids, f"{name}: original {role} UID")
        found = outputs.get(case.instance)
        if found is None:
            if case.must_send:
                s.false_refusals.append(name)
            elif name not in report:
                s.refusals_unexplained.append(name)
            if not case.must_send:
                continue
        ds = found[1] if found else Dataset()
        text = _texts(ds) if found else ""
        if found:
            meta = getattr(ds, "file_meta", None)
            text += "\0" + (_texts(meta) if meta is not None else "")
        for value in case.phi:
            s.check("text removed", not _present(value, text), f"{name}: {value}")
        for path, words in case.retained:
            kept = _value_text(_at(ds, path))
            s.check("text retained", words in kept, f"{name}: {'/'.join(map(str, path))}")
        for keyword, original in case.dates.items():
            new = _value_text(ds[keyword].value if keyword in ds else None)
            day, before = _date(new), _date(original)
            assert before is not None
            if day is not None:
                offsets.append((day - before).days)
            shifted.append((name, keyword, day, before))
        for keyword, value in case.tags.items():
            kept = _value_text(ds[keyword].value if keyword in ds else None)
            s.check("tag retained", kept == value, f"{name}: {keyword}")
        if case.pixels is not None:
            payload = ds.get("PixelData") or ds.get("EncapsulatedDocument")
            digest = hashlib.sha256(payload).hexdigest().encode() if payload else b""
            s.check("pixels retained", digest == case.pixels, f"{name}: pixel data / document")
        if found:
            s.check("UID consistent", ds.get("StudyInstanceUID") == new_study, f"{name}: study")
            if case.uids.get("frame") and case.name != "pdf" and case.name != "sr":
                s.check(
                    "UID consistent", ds.get("FrameOfReferenceUID") == new_frame, f"{name}: frame"
                )
        for path, role in case.references:
            target = new_study
            if role.startswith("sop:"):
                ref = outputs.get(int(role[4:]))
                target = str(ref[1].SOPInstanceUID) if ref else "?"
            value = _value_text(_at(ds, path))
            s.check(
                "UID consistent",
                bool(value) and value == target,
                f"{name}: {'/'.join(map(str, path))}",
            )
    common = Counter(offsets).most_common(1)[0][0] if offsets else 0
    for name, keyword, day, before in shifted:
        ok = day is not None and day != before and (day - before).days == common
        s.check("date shifted", ok, f"{name}: {keyword}")
    return s


# --- release-check hits: true or false -------------------------------------------------------

_STEP = re.compile(r"\(([0-9A-F]{4}),([0-9A-F]{4})\)(?:\[(\d+)\])?")


def element_text(ds: Dataset, path: str) -> str | None:
    """The lower-case text of the element at a hit's path ("(0008,1140)[0]/(0019,1010)")."""
    node: object = ds
    elem = None
    for part in path.split("/"):
        m = _STEP.fullmatch(part)
        if m is None or not isinstance(node, Dataset):
            return None
        tag = int(m.group(1) + m.group(2), 16)
        if tag not in node:
            return None
        elem = node[tag]
        if isinstance(elem.value, bytes | bytearray):  # a sequence kept as UN bytes: all of it
            return bytes(elem.value).decode("latin-1").lower()
        node = elem.value[int(m.group(3))] if m.group(3) is not None else elem
    if elem is None:
        return None
    if elem.VR == "SQ":  # an item, or the whole sequence
        return _texts(node) if isinstance(node, Dataset) else "\0".join(map(_texts, elem.value))
    value = elem.value
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("latin-1").lower()
    return _value_text(value).lower()


def true_hit(text: str | None, identifying: list[str], uids: set[str]) -> bool:
    """Whether an element's text really holds one of the identifying values or UIDs."""
    if text is None:
        return False
    if any(_present(v, text) for v in identifying if v):
        return True
    return any(u in text for u in uids)
