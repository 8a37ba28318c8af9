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
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.valuerep import PersonName

from fionagw.dicom.errors import CodecError
from fionagw.dicom.tags import PIXEL_TAGS, tag_text
from fionagw.dicom.vr import dictionary_vr, vr_of
from fionagw.dicom.walk import UNDEFINED, elements, items

MIN_LEN = 3
STANDARD_UID_ROOT = "1.2.840.10008."
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
    "person_name": (
        0x00080090,
        0x00081048,
        0x00081050,
        0x00081060,
        0x00081070,
        0x00321032,
        0x00400006,
        0x0040A075,
        0x00081062,
        0x00401010,
    ),
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


def _texts(value: object) -> list[str]:
    if value is None or isinstance(value, bytes | bytearray):
        return []
    if isinstance(value, str | PersonName):
        return [str(value)]
    if isinstance(value, Iterable):
        return [str(v) for v in value if v is not None and str(v) != ""]
    return [str(value)]


@lru_cache(maxsize=4096)  # the same names come again with every file of a study
def _parts(is_name: bool, value: str) -> tuple[str, ...]:
    """The lower-cased values to look for: the value, and for a name its parts."""
    return tuple(
        p.lower() for p in (_name_parts(value) if is_name else [value]) if len(p) >= MIN_LEN
    )


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
    _needles: tuple | None = field(default=None, repr=False, compare=False)

    def _changed(self) -> None:
        self._compiled = self._needles = None

    def add(self, kind: str, value: str) -> None:
        value = value.strip().strip("\0").strip()
        if kind == "uid":
            if value and not value.startswith(STANDARD_UID_ROOT):
                self.uids.add(value)
                self._changed()
            return
        for part in _parts(kind in NAME_KINDS, value):
            if part not in self.values:
                self.values[part] = kind
                self._changed()

    def update(self, other: Identifiers) -> None:
        for value, kind in other.values.items():
            self.values.setdefault(value, kind)
        self.uids |= other.uids
        self._changed()

    def __bool__(self) -> bool:
        return bool(self.values or self.uids)

    def kinds(self) -> set[str]:
        return set(self.values.values()) | ({"uid"} if self.uids else set())

    # --- matching --------------------------------------------------------------------------

    def _patterns(self) -> tuple:
        if self._compiled is None:
            words = sorted(
                (v for v, k in self.values.items() if k not in DATE_KINDS), key=len, reverse=True
            )
            dates = sorted(
                (v for v, k in self.values.items() if k in DATE_KINDS), key=len, reverse=True
            )
            alts = []
            if words:
                alts.append(
                    r"(?<![0-9a-z])(?:" + "|".join(map(re.escape, words)) + r")(?![0-9a-z])"
                )
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
                balts.append(
                    rb"(?<![0-9a-zA-Z])(?:"
                    + b"|".join(re.escape(w) for w in sorted(encoded, key=len, reverse=True))
                    + rb")(?![0-9a-zA-Z])"
                )
            if dates:
                balts.append(
                    rb"(?<![0-9])(?:" + b"|".join(re.escape(d.encode()) for d in dates) + b")"
                )
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
            kinds |= {self._kind_of(m.group().decode("latin-1")) for m in pattern.finditer(data)}
        if self.uids:
            for token in _UID_BYTES.findall(data):
                if token.decode() in self.uids:
                    kinds.add("uid")
                    break
        return kinds

    def _fast(self) -> tuple:
        """For check_release: byte needles (lower-cased; each value as is, case-folded, upper
        and title case, in UTF-8 and Latin-1) -> (kind, is_date); the UIDs as bytes; their
        roots (or None)."""
        if self._needles is None:
            needles: dict[bytes, tuple[str, bool]] = {}
            # dates first: their needles only need a leading boundary, the weaker test wins
            for value, kind in sorted(self.values.items(), key=lambda vk: vk[1] not in DATE_KINDS):
                for variant in {value, value.casefold(), value.upper(), value.title()}:
                    for encoding in ("utf-8", "latin-1"):
                        try:
                            needle = variant.encode(encoding).lower()
                        except UnicodeEncodeError:
                            continue
                        needles.setdefault(needle, (kind, kind in DATE_KINDS))
            uids = frozenset(u.encode("ascii") for u in self.uids if u.isascii())
            # a study's UIDs share a few roots: find those (first two components), then read
            # the token there; too many roots -> one regex pass over the buffer instead
            roots = frozenset(_uid_root(u) for u in uids)
            self._needles = (needles, uids, roots if len(roots) <= 32 else None)
        return self._needles

    def scrub(self, text: str, replacement: str = "***") -> str:
        """``text`` with every non-UID identifier replaced (Clean Descriptors)."""
        pattern = self._patterns()[0]
        return pattern.sub(replacement, text) if pattern is not None else text


def collect_identifiers(
    datasets: Iterable[Dataset] | Dataset,
    *,
    retain_institution: bool = False,
    retain_uids: bool = False,
    staff: bool = True,
    into: Identifiers | None = None,
) -> Identifiers:
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
        elements = ds._dict
        for kind, tags in groups.items():
            for tag in tags:
                if tag in elements:
                    for text in _element_texts(ds, tag):
                        ids.add(kind, text)
        if 0x00101002 in elements:  # Other Patient IDs Sequence
            for item in ds[0x00101002].value:
                for text in _texts(item.get("PatientID")):
                    ids.add("other_patient_id", text)
        if not retain_uids:
            _collect_uids(ds, ids)
    return ids


_UNSPLIT_VRS = frozenset({"LT", "ST", "UT", "UR"})  # a backslash is text there, not a separator


def _element_texts(ds: Dataset, tag: int) -> list[str]:
    """The text values of one element; ASCII raw bytes are split here, without pydicom's
    conversion (ESC excluded: ISO 2022 code extensions need the character set)."""
    elem = ds._dict[tag]
    if isinstance(elem, RawDataElement) and elem.value is not None:
        raw = bytes(elem.value)
        if raw.isascii() and b"\x1b" not in raw:
            text = raw.decode("ascii")
            return [text] if vr_of(elem) in _UNSPLIT_VRS else text.split("\\")
    return _texts(ds[tag].value)


def _collect_uids(ds: Dataset, ids: Identifiers) -> None:
    elements = ds._dict
    for tag in list(elements):
        elem = elements[tag]
        vr = elem.VR or dictionary_vr(tag)
        if vr == "UI":
            if isinstance(elem, RawDataElement):  # no conversion needed: UIDs are ASCII
                if elem.value:
                    for text in bytes(elem.value).decode("latin-1").split("\\"):
                        ids.add("uid", text)
            else:
                for text in _texts(elem.value):
                    ids.add("uid", text)
        elif vr == "SQ":
            for item in ds[tag].value or ():
                _collect_uids(item, ids)


# --- the release check --------------------------------------------------------------------------
#
# Every scanned value (raw bytes as stored; converted text case-folded and UTF-8 encoded) goes
# into one buffer, NUL-separated so that element edges stay boundaries, lower-cased (ASCII) once.
# Each needle is then found with bytes.find (far cheaper than a regex with look-arounds per
# element) and its boundaries checked; UIDs are the dotted-digit tokens of the buffer.

_ALNUM = frozenset(b"0123456789abcdefghijklmnopqrstuvwxyz")
_DIGITS = frozenset(b"0123456789")
# Without a look-behind: finds every token the look-behind form finds (and a few more inside
# longer runs, after a dot), at C speed.
_UID_SCAN = re.compile(rb"[0-9]+(?:\.[0-9]+)+")


def _uid_root(uid: bytes) -> bytes:
    """The first two components and their dot ("1.2.", "2.25."), or the whole short UID."""
    first = uid.find(b".")
    second = uid.find(b".", first + 1) if first >= 0 else -1
    return uid[: second + 1] if second >= 0 else uid


def check_release(ds: Dataset, *identifiers: Identifiers, include_meta: bool = True) -> list[Hit]:
    """Every place in ``ds`` where a value of one of ``identifiers`` occurs, sorted by path."""
    sets = [ids for ids in identifiers if ids]
    if not sets:
        return []
    datas: list[bytes] = []
    where: list[tuple[str, int]] = []
    meta = getattr(ds, "file_meta", None)
    if include_meta and meta is not None:
        _segments(meta, "", datas, where)
    _segments(ds, "", datas, where)
    if not datas:
        return []
    buf = b"\0".join(datas).lower()
    size = len(buf)
    found: list[tuple[int, str]] = []
    find = buf.find
    for ids in sets:
        needles, uids, roots = ids._fast()
        for needle, (kind, is_date) in needles.items():
            pos = find(needle)
            n = len(needle)
            while pos >= 0:
                if pos and buf[pos - 1] in (_DIGITS if is_date else _ALNUM):
                    pass
                elif is_date or pos + n >= size or buf[pos + n] not in _ALNUM:
                    found.append((pos, kind))
                pos = find(needle, pos + 1)
        if not uids:
            continue
        if roots is None:
            if not uids.isdisjoint(_UID_SCAN.findall(buf)):
                found += [(m.start(), "uid") for m in _UID_SCAN.finditer(buf) if m.group() in uids]
            continue
        for root in roots:
            pos = find(root)
            while pos >= 0:
                if not (pos and buf[pos - 1] in _DIGITS):
                    token = _UID_SCAN.match(buf, pos)
                    if token is not None and token.group() in uids:
                        found.append((pos, "uid"))
                pos = find(root, pos + 1)
    if not found:
        return []
    starts, offset = [], 0
    for data in datas:
        starts.append(offset)
        offset += len(data) + 1
    hits = {
        (prefix + tag_text(tag), kind)
        for (prefix, tag), kind in ((where[bisect_right(starts, p) - 1], k) for p, k in found)
    }
    return [Hit(path, kind) for path, kind in sorted(hits)]


def _segments(ds: Dataset, prefix: str, datas: list[bytes], where: list[tuple[str, int]]) -> None:
    """The scanned bytes of every element of ``ds`` (sequences recursively, pixel data not)."""
    elements = ds._dict
    for tag, elem in list(elements.items()):
        if tag in PIXEL_TAGS:
            continue
        if isinstance(elem, RawDataElement):
            if vr_of(elem) != "SQ":
                if elem.value:
                    datas.append(elem.value if isinstance(elem.value, bytes) else bytes(elem.value))
                    where.append((prefix, tag))
                continue
            if _raw_sequence_segments(elem, prefix + tag_text(tag), datas, where):
                continue
            elem = ds[tag]  # bytes the codec does not read: pydicom's reading decides
        value = elem.value
        if elem.VR == "SQ":
            for i, item in enumerate(value or ()):
                _segments(item, f"{prefix}{tag_text(tag)}[{i}]/", datas, where)
            continue
        if isinstance(value, bytes | bytearray):
            data = bytes(value)
        else:
            texts = _texts(value)
            data = "\\".join(texts).casefold().encode("utf-8", "replace") if texts else b""
        if data:
            datas.append(data)
            where.append((prefix, tag))


def _raw_sequence_segments(
    elem: RawDataElement, path: str, datas: list[bytes], where: list[tuple[str, int]]
) -> bool:
    """The scanned bytes of a sequence still in its raw bytes, walked by the codec without
    converting it (what pydicom would parse: the same elements and values); False, with
    nothing added, when the codec cannot read them."""
    value = elem.value
    if not value:
        return True
    kept = len(datas)
    try:
        data = value if isinstance(value, bytes) else bytes(value)
        _walked_segments(
            data, 0, len(data), elem.is_implicit_VR, elem.is_little_endian, path, datas, where
        )
    except CodecError:
        del datas[kept:], where[kept:]
        return False
    return True


def _walked_segments(
    data: bytes,
    start: int,
    end: int,
    implicit: bool,
    little: bool,
    path: str,
    datas: list[bytes],
    where: list[tuple[str, int]],
    depth: int = 0,
) -> None:
    for i, (item_start, item_end, item_implicit) in enumerate(
        items(data, start, end, implicit, little, depth)
    ):
        prefix = f"{path}[{i}]/"
        walk = elements(data, item_start, item_end, item_implicit, little, depth=depth, item=True)
        for tag, vr, length, value_start, value_end in walk:
            if tag in PIXEL_TAGS:
                continue
            vr = vr or dictionary_vr(tag) or "UN"
            if vr == "SQ" or (vr == "UN" and length == UNDEFINED):  # as pydicom reads them
                sub = prefix + tag_text(tag)
                _walked_segments(
                    data,
                    value_start,
                    value_end,
                    item_implicit,
                    little,
                    sub,
                    datas,
                    where,
                    depth + 1,
                )
            elif value_end > value_start:
                datas.append(data[value_start:value_end])
                where.append((prefix, tag))
