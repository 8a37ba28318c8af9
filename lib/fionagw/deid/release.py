"""Release check: no identifying value of the original study may remain in an output object.

``collect_identifiers(datasets)`` gathers, from the original dataset(s) of a study, every
identifying value: patient names (whole and each component of 3+ characters), patient IDs,
other patient IDs, accession number, birth date, addresses, phone numbers, institution and
staff names (unless retained), and every instance UID (any UI value outside the DICOM root
1.2.840.10008, at any depth, unless UIDs are retained).

``check_release(ds, identifiers)`` scans every element of an output dataset (file meta,
sequences at any depth and private elements included; bytes values too, such as a raw
private element or an OB header) and returns ``Hit(path, kind)`` items. A hit names the tag
path and the kind of identifier, never the value, so it can go into logs and tracker fields.

Matching is case-insensitive. Text identifiers match on alphanumeric boundaries (so "LEE"
does not hit "LEEDS"); dates match at a non-digit start (so they are found inside DT values);
UIDs are matched as whole dotted-digit tokens. Values shorter than 3 characters are not
scanned for (too many false hits). Pixel data (7FE0,0008/0009/0010) is not scanned.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.valuerep import PersonName

MIN_LEN = 3
STANDARD_UID_ROOT = "1.2.840.10008."
PIXEL_TAGS = frozenset({0x7FE00008, 0x7FE00009, 0x7FE00010})
_NAME_STOP = frozenset({"MRS", "PHD", "PROF", "III", "ANONYMIZED", "ANONYMOUS"})

# kind -> top-level tags holding it
PATIENT_TAGS = {
    "patient_name": (0x00100010, 0x00101001, 0x00101005, 0x00101060, 0x00102297),
    "patient_id": (0x00100020,),
    "other_patient_id": (0x00101000, 0x00100021),
    "accession_number": (0x00080050,),
    "birth_date": (0x00100030,),
    "address": (0x00101040, 0x00080092),
    "phone": (0x00102154, 0x00080094),
}
INSTITUTION_TAGS = {
    "institution": (0x00080080, 0x00081040, 0x00080081),
}
STAFF_TAGS = {
    "person_name": (0x00080090, 0x00081048, 0x00081050, 0x00081060, 0x00081070, 0x00321032,
                    0x00400006, 0x0040A075, 0x00081062, 0x00401010),
}
NAME_KINDS = frozenset({"patient_name", "person_name"})
DATE_KINDS = frozenset({"birth_date"})
_UID_STR = re.compile(r"(?<![0-9.])[0-9]+(?:\.[0-9]+)+")
_UID_BYTES = re.compile(rb"(?<![0-9.])[0-9]+(?:\.[0-9]+)+")


@dataclass(frozen=True)
class Hit:
    path: str  # e.g. "(0008,1140)[0]/(0019,1010)"
    kind: str  # e.g. "patient_name", "uid"

    def __str__(self) -> str:
        return f"{self.kind} found at {self.path}"


def tag_text(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _texts(value: object) -> list[str]:
    if value is None or isinstance(value, bytes | bytearray):
        return []
    if isinstance(value, str | PersonName):
        return [str(value)]
    if isinstance(value, Iterable):
        return [str(v) for v in value if v is not None and str(v) != ""]
    return [str(value)]


def _name_parts(name: str) -> list[str]:
    parts = [name.strip(), name.replace("^", " ").strip()]
    parts += re.split(r"[\^=\s,.]+", name)
    return [p for p in parts if p.upper() not in _NAME_STOP]


@dataclass
class Identifiers:
    """The identifying values of one study, by kind. ``add`` and ``update`` accumulate."""

    values: dict[str, str] = field(default_factory=dict)  # lower-cased value -> kind
    uids: set[str] = field(default_factory=set)
    _compiled: tuple | None = field(default=None, repr=False, compare=False)

    def add(self, kind: str, value: str) -> None:
        value = value.strip().strip("\0").strip()
        if kind == "uid":
            if value and not value.startswith(STANDARD_UID_ROOT):
                self.uids.add(value)
                self._compiled = None
            return
        for part in (_name_parts(value) if kind in NAME_KINDS else [value]):
            if len(part) >= MIN_LEN:
                self.values.setdefault(part.lower(), kind)
                self._compiled = None

    def update(self, other: Identifiers) -> None:
        for value, kind in other.values.items():
            self.values.setdefault(value, kind)
        self.uids |= other.uids
        self._compiled = None

    def __bool__(self) -> bool:
        return bool(self.values or self.uids)

    def kinds(self) -> set[str]:
        return set(self.values.values()) | ({"uid"} if self.uids else set())

    # --- matching --------------------------------------------------------------------------

    def _patterns(self) -> tuple:
        if self._compiled is None:
            words = sorted((v for v, k in self.values.items() if k not in DATE_KINDS),
                           key=len, reverse=True)
            dates = sorted((v for v, k in self.values.items() if k in DATE_KINDS),
                           key=len, reverse=True)
            alts = []
            if words:
                alts.append(r"(?<![0-9a-z])(?:" + "|".join(map(re.escape, words))
                            + r")(?![0-9a-z])")
            if dates:
                alts.append(r"(?<![0-9])(?:" + "|".join(map(re.escape, dates)) + ")")
            text = re.compile("|".join(alts), re.IGNORECASE) if alts else None
            encoded: set[bytes] = set()
            for w in words:
                for enc in ("utf-8", "latin-1"):
                    try:
                        encoded.add(w.encode(enc))
                    except UnicodeEncodeError:
                        pass
            balts = []
            if encoded:
                balts.append(rb"(?<![0-9a-zA-Z])(?:" + b"|".join(
                    re.escape(w) for w in sorted(encoded, key=len, reverse=True))
                    + rb")(?![0-9a-zA-Z])")
            if dates:
                balts.append(rb"(?<![0-9])(?:" + b"|".join(re.escape(d.encode()) for d in dates)
                             + b")")
            raw = re.compile(b"|".join(balts), re.IGNORECASE) if balts else None
            self._compiled = (text, raw)
        return self._compiled

    def _kind_of(self, matched: str) -> str:
        return self.values.get(matched.lower(), "identifier")

    def find_text(self, text: str) -> set[str]:
        kinds: set[str] = set()
        pattern = self._patterns()[0]
        if pattern is not None:
            kinds |= {self._kind_of(m.group()) for m in pattern.finditer(text)}
        if self.uids and any(t in self.uids for t in _UID_STR.findall(text)):
            kinds.add("uid")
        return kinds

    def find_bytes(self, data: bytes) -> set[str]:
        kinds: set[str] = set()
        pattern = self._patterns()[1]
        if pattern is not None:
            kinds |= {self._kind_of(m.group().decode("latin-1"))
                      for m in pattern.finditer(data)}
        if self.uids:
            for token in _UID_BYTES.findall(data):
                if token.decode() in self.uids:
                    kinds.add("uid")
                    break
        return kinds

    def scrub(self, text: str, replacement: str = "***") -> str:
        """``text`` with every non-UID identifier replaced (Clean Descriptors)."""
        pattern = self._patterns()[0]
        return pattern.sub(replacement, text) if pattern is not None else text


def vr_of(elem) -> str:  # type: ignore[no-untyped-def]
    """An element's VR, from the dictionary when a raw element has none ("UN" if unknown)."""
    vr = elem.VR
    if vr is None:
        try:
            vr = dictionary_VR(elem.tag)
        except KeyError:
            return "UN"
    return vr


def _is_sq(elem) -> bool:  # type: ignore[no-untyped-def]
    return vr_of(elem) == "SQ"


def collect_identifiers(datasets: Iterable[Dataset] | Dataset, *,
                        retain_institution: bool = False, retain_uids: bool = False,
                        staff: bool = True, into: Identifiers | None = None) -> Identifiers:
    """Identifying values of the original dataset(s) of a study (see module docstring)."""
    ids = into if into is not None else Identifiers()
    if isinstance(datasets, Dataset):
        datasets = [datasets]
    groups = dict(PATIENT_TAGS)
    if not retain_institution:
        groups.update(INSTITUTION_TAGS)
    if staff:
        groups.update(STAFF_TAGS)
    for ds in datasets:
        for kind, tags in groups.items():
            for tag in tags:
                if tag in ds:
                    for text in _texts(ds[tag].value):
                        ids.add(kind, text)
        if 0x00101002 in ds:  # Other Patient IDs Sequence
            for item in ds[0x00101002].value:
                for text in _texts(item.get("PatientID")):
                    ids.add("other_patient_id", text)
        if not retain_uids:
            _collect_uids(ds, ids)
    return ids


def _collect_uids(ds: Dataset, ids: Identifiers) -> None:
    for tag in list(ds._dict):
        elem = ds._dict[tag]
        vr = elem.VR
        if vr is None:
            try:
                vr = dictionary_VR(tag)
            except KeyError:
                continue
        if vr == "UI":
            for text in _texts(ds[tag].value):
                ids.add("uid", text)
        elif vr == "SQ":
            for item in ds[tag].value:
                _collect_uids(item, ids)


def check_release(ds: Dataset, identifiers: Identifiers, *,
                  include_meta: bool = True) -> list[Hit]:
    """Every place in ``ds`` where an identifier of ``identifiers`` occurs."""
    hits: dict[tuple[str, str], None] = {}
    if not identifiers:
        return []
    meta = getattr(ds, "file_meta", None)
    if include_meta and meta is not None:
        _scan(meta, "", identifiers, hits)
    _scan(ds, "", identifiers, hits)
    return [Hit(path, kind) for path, kind in hits]


def _scan(ds: Dataset, prefix: str, ids: Identifiers, hits: dict) -> None:
    for tag in sorted(ds._dict):
        if tag in PIXEL_TAGS:
            continue
        path = prefix + tag_text(tag)
        elem = ds._dict[tag]
        if isinstance(elem, RawDataElement) and not _is_sq(elem):
            if elem.value:
                for kind in ids.find_bytes(bytes(elem.value)):
                    hits[(path, kind)] = None
            continue
        elem = ds[tag]
        value = elem.value
        if elem.VR == "SQ":
            for i, item in enumerate(value or ()):
                _scan(item, f"{path}[{i}]/", ids, hits)
            continue
        if isinstance(value, bytes | bytearray):
            kinds = ids.find_bytes(bytes(value))
        else:
            texts = _texts(value)
            kinds = ids.find_text("\\".join(texts)) if texts else set()
        for kind in kinds:
            hits[(path, kind)] = None
