"""Release check: no identifying value of the original study may remain in an output object.

``collect_identifiers(datasets)`` gathers the identifying values of the original dataset(s)
of a study from every element at every depth (sequence items, raw sequences, private
elements, public elements stored as UN), decoded with their character set:

* by tag (``KIND_TAGS``, at any nesting level): patient names, IDs, other IDs, accession,
  study, visit and order IDs, birth date, addresses, phone numbers, institution (unless
  retained), staff names, device and station identity (unless retained);
* by VR: every person name (PN) is a name, whatever its tag (SR person observers, secondary
  reviewers, private PN elements of explicit VR);
* instance UIDs (unless UIDs are retained): every UI value except registry UIDs, which name
  no instance: anything under the DICOM root 1.2.840.10008 and the values of SOP class,
  transfer syntax, implementation class, coding scheme, mapping resource, context and
  template creator attributes (``REGISTRY_UID_TAGS``), whatever root they have.

Each value becomes the needles of scrub.py (names and each part of 2+ characters as whole
words, IDs also inside longer tokens, a birth date in each written form, phone digits with
separators), the same tokenization the free-text scrubber uses. The configured national
identifier patterns (patterns.py; Norwegian fodselsnummer by default) are found without a
known value.

``check_release(ds, identifiers)`` scans every element of an output dataset (file meta,
sequences at any depth, private elements and bytes values such as a raw private element or
an OB header included; raw text decoded with the element's character set, and as stored)
and returns ``Hit(path, kind)`` items. A hit names the tag path and the kind of identifier,
never the value, so it can go into logs and tracker fields. What is not identifying is not a
hit: a value pooled from names, IDs or institutions is only looked for where free text can
stand (text VRs and opaque bytes; not in coded strings, numbers, UIDs, and not in the
descriptive device attributes of ``DESCRIPTIVE_TAGS`` such as Manufacturer); dates are
looked for in text and in DA/DT values; UIDs as whole dotted-digit tokens anywhere. The
engine's own stamps (``STAMP_TAGS``: de-identification method and codes, clinical trial
sponsor and protocol, written from the settings, never from the file) are not scanned, nor
is pixel data (7FE0,0008/0009/0010).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field

from pydicom.charset import decode_bytes
from pydicom.datadict import DicomDictionary
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.valuerep import PersonName

from fionagw.deid.patterns import DEFAULT_PATTERNS, id_patterns, shape_of
from fionagw.deid.scrub import (
    DATE,
    DATE_KINDS,
    DATE_START,
    ID,
    MIN_LEN,
    NAME_KINDS,
    PHONE,
    WORD,
    mode_of,
    needles,
    regex_for,
    scrub_text,
)
from fionagw.dicom.errors import CodecError
from fionagw.dicom.tags import PIXEL_TAGS, SPECIFIC_CHARACTER_SET, tag_text
from fionagw.dicom.vr import dictionary_vr, vr_of
from fionagw.dicom.walk import UNDEFINED, elements, items

__all__ = [
    "MIN_LEN",
    "NAME_KINDS",
    "DATE_KINDS",
    "Hit",
    "Identifiers",
    "check_release",
    "collect_identifiers",
    "retained",
    "retained_kinds",
    "vr_of",
]

STANDARD_UID_ROOT = "1.2.840.10008."

# kind -> tags holding it (looked up at every nesting level)
PATIENT_TAGS = {
    "patient_name": (0x00100010, 0x00101001, 0x00101005, 0x00101060, 0x00102297),
    "patient_id": (0x00100020,),
    "other_patient_id": (0x00101000, 0x00100021, 0x00101090),
    "accession_number": (0x00080050,),
    "birth_date": (0x00100030, 0x00100033),
    "address": (0x00101040, 0x00080092, 0x00102152),
    "phone": (0x00102154, 0x00080094, 0x00402010),
    "study_id": (0x00200010,),
    # requested procedure, procedure steps, placer/filler order, admission, service episode
    "visit_id": (0x00401001, 0x00400009, 0x00400253, 0x00402016, 0x00402017, 0x00380010),
}
INSTITUTION_TAGS = {
    # name, department, issuer of an identifier (local namespace, universal entity ID)
    "institution": (0x00080080, 0x00081040, 0x00400031, 0x00400032),
    "institution_address": (0x00080081,),
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
        0x00402008,
    ),
}
DEVICE_TAGS = {
    # serial number, station name, performed station AE title / name / location
    "device": (0x00181000, 0x00081010, 0x00400241, 0x00400242, 0x00400243),
}
_KIND_TAGS = {
    **{t: k for k, tags in PATIENT_TAGS.items() for t in tags},
    **{t: k for k, tags in STAFF_TAGS.items() for t in tags},
}
_INSTITUTION_KIND = {t: k for k, tags in INSTITUTION_TAGS.items() for t in tags}
_DEVICE_KIND = {t: k for k, tags in DEVICE_TAGS.items() for t in tags}
INSTITUTION_KINDS = frozenset(INSTITUTION_TAGS)
DEVICE_KINDS = frozenset(DEVICE_TAGS)

_REGISTRY_WORDS = ("SOPClass", "TransferSyntax", "ImplementationClass")
_REGISTRY_KEYWORDS = frozenset(
    {
        "PrivateInformationCreatorUID",
        "CodingSchemeUID",
        "ContextGroupExtensionCreatorUID",
        "ContextUID",
        "MappingResourceUID",
        "CreatorVersionUID",
        "ManufacturerDeviceClassUID",
        "TemplateExtensionOrganizationUID",
        "TemplateExtensionCreatorUID",
        "InstanceCreatorUID",
        "SegmentationTemplateUID",
    }
)
# attributes whose UIDs name a registered class, syntax or scheme, never an instance
REGISTRY_UID_TAGS = frozenset(
    tag
    for tag, entry in DicomDictionary.items()
    if entry[0] == "UI"
    and (entry[4] in _REGISTRY_KEYWORDS or any(w in entry[4] for w in _REGISTRY_WORDS))
)
# the device's make, kept by every profile: a name or institution word there (a hospital
# called after its vendor, a physician called Philips) identifies nobody; code meanings are
# not here: they are free text a name can hide in
DESCRIPTIVE_TAGS = frozenset(
    {
        0x00080070,  # Manufacturer
        0x00081090,  # Manufacturer's Model Name
        0x00181020,  # Software Versions
        0x00181016,  # Secondary Capture Device Manufacturer
        0x00181018,  # Secondary Capture Device Manufacturer's Model Name
        0x00181019,  # Secondary Capture Device Software Versions
        0x00080102,  # Coding Scheme Designator
        0x00080103,  # Coding Scheme Version
    }
)
# written by the engine from the project's settings, never from the file (top level only)
STAMP_TAGS = frozenset(
    {0x00120062, 0x00120063, 0x00120064, 0x00280303, 0x00120010, 0x00120020, 0x00120021}
)

_UNSPLIT_VRS = frozenset({"LT", "ST", "UT", "UR"})  # a backslash is text there, not a separator
_TEXT_VRS = frozenset({"AE", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"})
_DATE_VRS = frozenset({"DA", "DT"})
_CODE_VRS = frozenset({"CS", "AS", "DS", "IS", "TM"})
_BINARY_VRS = frozenset(
    {"US", "SS", "UL", "SL", "FL", "FD", "AT", "SV", "UV", "OF", "OD", "OL", "OV"}
)
_DELIMITERS = {0x5C, 0x3D, 0x5E, 0x0D, 0x0A, 0x09, 0x0C}  # \ = ^ CR LF TAB FF

# segment classes: where a kind of value counts
TEXT, BYTES, DATES, UIDS, CODES, DESCRIPTIVE = "T", "B", "D", "U", "C", "K"
_WORD_PLACES = frozenset({TEXT, BYTES})
_ID_PLACES = frozenset({TEXT, BYTES, DESCRIPTIVE})
_DATE_PLACES = frozenset({TEXT, BYTES, DATES, DESCRIPTIVE})
_UID_PLACES = frozenset({TEXT, BYTES, DATES, UIDS, CODES, DESCRIPTIVE})
_WORD_KINDS = frozenset(
    {"patient_name", "person_name", "institution", "institution_address", "address", "device"}
)


def _places(kind: str) -> frozenset[str]:
    if kind == "uid":
        return _UID_PLACES
    if kind in DATE_KINDS:
        return _DATE_PLACES
    return _WORD_PLACES if kind in _WORD_KINDS else _ID_PLACES


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


@dataclass
class Identifiers:
    """The identifying values of one study: needle (lower-cased form, scrub.needles) -> kind,
    and the instance UIDs. ``add`` and ``update`` accumulate; ``patterns`` names the national
    identifier formats (patterns.PATTERNS) looked for without a known value."""

    values: dict[str, str] = field(default_factory=dict)
    uids: set[str] = field(default_factory=set)
    patterns: tuple[str, ...] = DEFAULT_PATTERNS
    _compiled: object = field(default=None, repr=False, compare=False)
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
        for form in needles(kind, value):
            if form not in self.values:
                self.values[form] = kind
                self._changed()

    def update(self, other: Identifiers) -> None:
        for value, kind in other.values.items():
            self.values.setdefault(value, kind)
        self.uids |= other.uids
        self.patterns = tuple(dict.fromkeys(self.patterns + other.patterns))
        self._changed()

    def without(self, kinds: set[str] | frozenset[str], uids: bool = False) -> Identifiers:
        """A copy without the values of ``kinds`` (and without the UIDs: ``uids``): what a
        project retains (institution, device identity, UIDs) is no hit."""
        return Identifiers(
            {v: k for v, k in self.values.items() if k not in kinds},
            set() if uids else set(self.uids),
            self.patterns,
        )

    def __bool__(self) -> bool:
        return bool(self.values or self.uids or self.patterns)

    def kinds(self) -> set[str]:
        return set(self.values.values()) | ({"uid"} if self.uids else set())

    # --- text: the scrubber's regex -----------------------------------------------------

    def regex(self) -> re.Pattern[str] | None:
        """One regex for every needle, with its mode's boundaries (scrub.needle_regex)."""
        if self._compiled is None:
            self._compiled = (
                regex_for(frozenset((v, mode_of(k, v)) for v, k in self.values.items())),
            )
        return self._compiled[0]  # type: ignore[index]

    def scrub(self, text: str) -> str:
        """``text`` with every identifier, national ID and date-like string replaced."""
        return scrub_text(text, [self.regex()], id_patterns(self.patterns))

    def find_text(self, text: str) -> set[str]:
        """The kinds of identifier in ``text`` (any place: no VR is known here)."""
        kinds: set[str] = set()
        regex = self.regex()
        if regex is not None:
            kinds |= {self._kind_of(m.group()) for m in regex.finditer(text)}
        for pattern in id_patterns(self.patterns):
            if pattern.find(text.lower()):
                kinds.add(pattern.kind)
        if self.uids and any(t in self.uids for t in _UID_STR.findall(text)):
            kinds.add("uid")
        return kinds

    def _kind_of(self, matched: str) -> str:
        low = matched.lower()
        kind = self.values.get(low) or self.values.get(re.sub(r"[^0-9]", "", low))
        return kind or "identifier"

    def find_bytes(self, data: bytes) -> set[str]:
        """find_text on bytes read as Latin-1 and as UTF-8."""
        return self.find_text(data.decode("latin-1")) | self.find_text(
            data.decode("utf-8", "ignore")
        )

    # --- bytes: the release check's needles --------------------------------------------

    def _fast(self) -> tuple:
        """For check_release: byte needles (lower-cased; each value as is, case-folded, upper
        and title case, in UTF-8 and Latin-1) -> (kind, mode); phone digits; the UIDs as
        bytes; their roots (or None)."""
        if self._needles is None:
            found: dict[bytes, tuple[str, str]] = {}
            phones: list[tuple[bytes, str]] = []
            for value, kind in self.values.items():
                mode = mode_of(kind, value)
                if mode == PHONE:  # its digits, found in the buffer without separators
                    phones.append((value.encode("ascii"), kind))
                    continue
                for variant in {value, value.casefold(), value.upper(), value.title()}:
                    for encoding in ("utf-8", "latin-1"):
                        try:
                            needle = variant.encode(encoding).lower()
                        except UnicodeEncodeError:
                            continue
                        # the weaker boundary test wins (a date before an ID of the same digits)
                        old = found.get(needle)
                        if old is None or _STRENGTH[mode] < _STRENGTH[old[1]]:
                            found[needle] = (kind, mode)
            uids = frozenset(u.encode("ascii") for u in self.uids if u.isascii())
            # a study's UIDs share a few roots: find those (first two components), then read
            # the token there; too many roots -> one regex pass over the buffer instead
            roots = frozenset(_uid_root(u) for u in uids)
            self._needles = (found, phones, uids, roots if len(roots) <= 32 else None)
        return self._needles


_STRENGTH = {DATE_START: 0, ID: 1, DATE: 2, WORD: 3, PHONE: 4}
_UID_STR = re.compile(r"(?<![0-9.])[0-9]+(?:\.[0-9]+)+")


def retained(options: Iterable[str]) -> dict[str, bool]:
    """collect_identifiers' retain flags for a project's de-identification options (profile.py
    names): the one place where the release check learns what the engine keeps, so a value a
    project retains (Retain Device Identity, Institution Identity, UIDs) is never a hit."""
    opts = frozenset(options)
    return {
        "retain_institution": "retain_institution_identity" in opts,
        "retain_uids": "retain_uids" in opts,
        "retain_device": "retain_device_identity" in opts,
    }


def retained_kinds(options: Iterable[str]) -> tuple[frozenset[str], bool]:
    """(identifier kinds the project's options keep, whether its UIDs are kept): for
    ``Identifiers.without`` on identifiers collected without the options."""
    flags = retained(options)
    kinds = (INSTITUTION_KINDS if flags["retain_institution"] else frozenset()) | (
        DEVICE_KINDS if flags["retain_device"] else frozenset()
    )
    return kinds, flags["retain_uids"]


def collect_identifiers(
    datasets: Iterable[Dataset] | Dataset,
    *,
    options: Iterable[str] | None = None,
    retain_institution: bool = False,
    retain_uids: bool = False,
    retain_device: bool = False,
    staff: bool = True,
    into: Identifiers | None = None,
) -> Identifiers:
    """Identifying values of the original dataset(s) of a study (see module docstring).
    ``options`` (a project's de-identification options) sets the retain flags (``retained``)."""
    if options is not None:
        flags = retained(options)
        retain_institution, retain_uids = flags["retain_institution"], flags["retain_uids"]
        retain_device = flags["retain_device"]
    ids = into if into is not None else Identifiers()
    if isinstance(datasets, Dataset):
        datasets = [datasets]
    kinds = dict(_KIND_TAGS)
    if not staff:
        for tag in STAFF_TAGS["person_name"]:
            kinds.pop(tag, None)
    if not retain_institution:
        kinds.update(_INSTITUTION_KIND)
    if not retain_device:
        kinds.update(_DEVICE_KIND)
    for ds in datasets:
        _collect(ds, ids, kinds, staff, not retain_uids, 0)
    return ids


def _collect(
    ds: Dataset, ids: Identifiers, kinds: dict[int, str], names: bool, uids: bool, depth: int
) -> None:
    elems = ds._dict
    for tag in list(elems):
        if tag in PIXEL_TAGS or tag & 0xFFFF == 0:
            continue
        elem = elems[tag]
        vr = elem.VR
        private = (tag >> 16) & 1
        if vr is None or (vr == "UN" and not private):  # implicit VR or public stored as UN
            vr = dictionary_vr(tag) or ("UN" if vr is None else vr)
        if vr == "SQ" or (
            vr == "UN" and isinstance(elem, RawDataElement) and elem.length == UNDEFINED
        ):
            if depth < 32 and not _collect_raw_sequence(ds, elem, ids, kinds, names, uids):
                value = _value(ds, tag)
                if isinstance(value, Sequence):
                    for item in value:
                        _collect(item, ids, kinds, names, uids, depth + 1)
            continue
        kind = kinds.get(tag)
        if kind is None and vr == "PN" and names:
            kind = "person_name"
        if kind is not None:
            for text in _element_texts(ds, tag, vr):
                ids.add(kind, text)
        elif vr == "UI" and uids and tag not in REGISTRY_UID_TAGS:
            for text in _element_texts(ds, tag, vr):
                ids.add("uid", text)


def _collect_raw_sequence(
    ds: Dataset,
    elem: object,
    ids: Identifiers,
    kinds: dict[int, str],
    names: bool,
    uids: bool,
) -> bool:
    """_collect on a sequence still in its raw bytes, walked by the codec without converting
    it (as the release check reads it); False, with nothing added, when the codec cannot read
    them or an item declares its own character set (pydicom then decides)."""
    if not isinstance(elem, RawDataElement) or elem.value is None:
        return False
    data = bytes(elem.value)
    found: list[tuple[str, bytes, str]] = []  # (kind, raw value, VR)
    try:
        _walk_collect(
            data,
            0,
            len(data),
            elem.is_implicit_VR,
            elem.is_little_endian,
            kinds,
            names,
            uids,
            found,
            0,
        )
    except (CodecError, _OwnCharset):
        return False
    encodings = None
    for kind, raw, vr in found:
        if raw.isascii() and b"\x1b" not in raw:
            text = raw.decode("ascii")
        else:
            encodings = encodings or _encodings(ds)
            text = decode_bytes(raw, encodings, _DELIMITERS)
        for value in [text] if vr in _UNSPLIT_VRS else text.split("\\"):
            ids.add(kind, value)
    return True


class _OwnCharset(Exception):
    """An item with its own (0008,0005): its values need pydicom's reading."""


def _walk_collect(
    data: bytes,
    start: int,
    end: int,
    implicit: bool,
    little: bool,
    kinds: dict[int, str],
    names: bool,
    uids: bool,
    found: list[tuple[str, bytes, str]],
    depth: int,
) -> None:
    for item_start, item_end, item_implicit in items(data, start, end, implicit, little, depth):
        walk = elements(data, item_start, item_end, item_implicit, little, depth=depth, item=True)
        for tag, vr, length, value_start, value_end in walk:
            if tag == SPECIFIC_CHARACTER_SET:
                raise _OwnCharset
            if tag in PIXEL_TAGS:
                continue
            if vr is None or (vr == "UN" and not (tag >> 16) & 1):
                vr = dictionary_vr(tag) or "UN"
            if vr == "SQ" or (vr == "UN" and length == UNDEFINED):
                _walk_collect(
                    data,
                    value_start,
                    value_end,
                    item_implicit,
                    little,
                    kinds,
                    names,
                    uids,
                    found,
                    depth + 1,
                )
                continue
            kind = kinds.get(tag)
            if kind is None and vr == "PN" and names:
                kind = "person_name"
            if kind is None and vr == "UI" and uids and tag not in REGISTRY_UID_TAGS:
                kind = "uid"
            if kind is not None and value_end > value_start:
                found.append((kind, data[value_start:value_end], vr))


def _value(ds: Dataset, tag: int) -> object:
    """The converted value of an element (pydicom decodes with the character set in force)."""
    try:
        return ds[tag].value
    except Exception:  # noqa: BLE001 - a value pydicom cannot convert holds no text for us
        return None


def _element_texts(ds: Dataset, tag: int, vr: str) -> list[str]:
    """The text values of one element; ASCII raw bytes are split here, without pydicom's
    conversion (ESC excluded: ISO 2022 code extensions need the character set)."""
    elem = ds._dict[tag]
    if isinstance(elem, RawDataElement) and elem.value is not None:
        raw = bytes(elem.value)
        if raw.isascii() and b"\x1b" not in raw:
            text = raw.decode("ascii")
            return [text] if vr in _UNSPLIT_VRS else text.split("\\")
    value = _value(ds, tag)
    if isinstance(value, bytes | bytearray):  # private or UN text: the charset decides
        text = decode_bytes(bytes(value), _encodings(ds), _DELIMITERS)
        return [text] if vr in _UNSPLIT_VRS else text.split("\\")
    return _texts(value)


def _encodings(ds: Dataset) -> list[str]:
    """The Python encodings of ``ds``'s text: its own (0008,0005) or, for a sequence item,
    its parent's (pydicom keeps that); none declared: Latin-1, as pydicom reads it."""
    charset = ds._character_set
    return [charset] if isinstance(charset, str) else list(charset)


# --- the release check --------------------------------------------------------------------------
#
# Every scanned value (raw bytes as stored; converted or decoded text lower-cased and UTF-8
# encoded) goes into one buffer, NUL-separated so that element edges stay boundaries,
# lower-cased (ASCII) once. Each needle is then found with bytes.find (far cheaper than a regex
# with look-arounds per element), its boundaries checked, and the place it is in (text, bytes,
# dates, UIDs, codes) decides whether its kind counts there; UIDs are the dotted-digit tokens.

_WORD_BYTES = frozenset(b"0123456789abcdefghijklmnopqrstuvwxyz_")  # scrub.WORD's word characters
_DIGITS = frozenset(b"0123456789")
_PHONE_SEPARATORS = b" -./()"
# Without a look-behind: finds every token the look-behind form finds (and a few more inside
# longer runs, after a dot), at C speed.
_UID_SCAN = re.compile(rb"[0-9]+(?:\.[0-9]+)+")


def _uid_root(uid: bytes) -> bytes:
    """The first two components and their dot ("1.2.", "2.25."), or the whole short UID."""
    first = uid.find(b".")
    second = uid.find(b".", first + 1) if first >= 0 else -1
    return uid[: second + 1] if second >= 0 else uid


def _bounded(buf: bytes, pos: int, n: int, mode: str, size: int) -> bool:
    """Whether the needle found at ``pos`` (length ``n``) stands with its mode's boundaries."""
    before = buf[pos - 1] if pos else 0
    after = buf[pos + n] if pos + n < size else 0
    if mode == WORD:
        return before not in _WORD_BYTES and after not in _WORD_BYTES
    if mode == ID:
        return not (
            (buf[pos] in _DIGITS and before in _DIGITS)
            or (buf[pos + n - 1] in _DIGITS and after in _DIGITS)
        )
    if mode == DATE:
        return before not in _DIGITS and after not in _DIGITS
    return before not in _DIGITS  # DATE_START


def check_release(ds: Dataset, *identifiers: Identifiers, include_meta: bool = True) -> list[Hit]:
    """Every place in ``ds`` where a value of one of ``identifiers`` occurs, sorted by path."""
    sets = [ids for ids in identifiers if ids]
    if not sets:
        return []
    datas: list[bytes] = []
    where: list[tuple[str, int, str]] = []
    meta = getattr(ds, "file_meta", None)
    if include_meta and meta is not None:
        _segments(meta, "", datas, where, ["iso8859"], stamps=False)
    _segments(ds, "", datas, where, _encodings(ds), stamps=True)
    if not datas:
        return []
    buf = b"\0".join(datas).lower()
    size = len(buf)
    found: list[tuple[int, str]] = []
    phone_hits: list[tuple[int, str]] = []  # positions in ``compact``
    compact = b""
    find = buf.find
    patterns: dict[str, None] = {}
    for ids in sets:
        patterns.update(dict.fromkeys(ids.patterns))
        needles_, phones, uids, roots = ids._fast()
        for needle, (kind, mode) in needles_.items():
            pos = find(needle)
            n = len(needle)
            while pos >= 0:
                if _bounded(buf, pos, n, mode, size):
                    found.append((pos, kind))
                pos = find(needle, pos + 1)
        if phones:
            compact = compact or buf.translate(None, _PHONE_SEPARATORS)
            for digits, kind in phones:
                pos = compact.find(digits)
                while pos >= 0:
                    end = pos + len(digits)
                    if not (pos and compact[pos - 1] in _DIGITS) and not (
                        end < len(compact) and compact[end] in _DIGITS
                    ):
                        phone_hits.append((pos, kind))
                    pos = compact.find(digits, pos + 1)
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
    shape = None
    for pattern in id_patterns(tuple(patterns)):
        shape = shape or shape_of(buf)
        found += [(start, pattern.kind) for start in pattern.find_bytes(buf, shape)]
    if not found and not phone_hits:
        return []
    starts, offset = [], 0
    for data in datas:
        starts.append(offset)
        offset += len(data) + 1
    if phone_hits:  # rare: where the segments start in the buffer without separators
        cstarts, offset = [], 0
        for data in datas:
            cstarts.append(offset)
            offset += len(data.translate(None, _PHONE_SEPARATORS)) + 1
        found += [(starts[bisect_right(cstarts, p) - 1], kind) for p, kind in phone_hits]
    hits = set()
    for pos, kind in found:
        prefix, tag, place = where[bisect_right(starts, pos) - 1]
        if place in _places(kind):
            hits.add((prefix + tag_text(tag), kind))
    return [Hit(path, kind) for path, kind in sorted(hits)]


def _place(tag: int, vr: str) -> str | None:
    if vr in _TEXT_VRS:
        return DESCRIPTIVE if tag in DESCRIPTIVE_TAGS else TEXT
    if vr == "UI":
        return UIDS
    if vr in _DATE_VRS:
        return DATES
    if vr in _CODE_VRS:
        return CODES
    if vr in _BINARY_VRS:
        return None  # numbers: no text can hide there
    return BYTES  # OB, OW, UN, unknown: anything


def _segments(
    ds: Dataset,
    prefix: str,
    datas: list[bytes],
    where: list[tuple[str, int, str]],
    encodings: list[str],
    stamps: bool = False,
) -> None:
    """The scanned bytes of every element of ``ds`` (sequences recursively, pixel data not)."""
    elems = ds._dict
    if SPECIFIC_CHARACTER_SET in elems and prefix:
        encodings = _encodings(ds)
    for tag, elem in list(elems.items()):
        if tag in PIXEL_TAGS or (stamps and tag in STAMP_TAGS):
            continue
        if isinstance(elem, RawDataElement):
            vr = vr_of(elem)
            if vr != "SQ":
                if elem.value:
                    _add_raw(tag, vr, bytes(elem.value), datas, where, prefix, encodings)
                continue
            if _raw_sequence_segments(elem, prefix + tag_text(tag), datas, where):
                continue
            elem = ds[tag]  # bytes the codec does not read: pydicom's reading decides
        value = elem.value
        if elem.VR == "SQ":
            for i, item in enumerate(value or ()):
                _segments(item, f"{prefix}{tag_text(tag)}[{i}]/", datas, where, encodings)
            continue
        place = _place(tag, elem.VR)
        if place is None:
            continue
        if isinstance(value, bytes | bytearray):
            data = bytes(value)
        else:
            texts = _texts(value)
            data = "\\".join(texts).lower().encode("utf-8", "replace") if texts else b""
        if data:
            datas.append(data)
            where.append((prefix, tag, place))


def _add_raw(
    tag: int,
    vr: str,
    data: bytes,
    datas: list[bytes],
    where: list[tuple[str, int, str]],
    prefix: str,
    encodings: list[str],
) -> None:
    """One raw value: as stored and, for text that is not plain ASCII, decoded with the
    character set (ISO 2022 escapes, GB18030, UTF-8, Latin-1) as well. Opaque bytes (OB,
    UN, private) are scanned as stored, with each needle in UTF-8 and Latin-1."""
    if (tag >> 16) & 1 == 0 and vr == "UN":
        vr = dictionary_vr(tag) or "UN"
    place = _place(tag, vr)
    if place is None:
        return
    datas.append(data)
    where.append((prefix, tag, place))
    if place in (TEXT, DESCRIPTIVE) and (not data.isascii() or b"\x1b" in data):
        try:
            text = decode_bytes(data, encodings, _DELIMITERS)
        except Exception:  # noqa: BLE001 - undecodable: the raw bytes are scanned already
            return
        datas.append(text.lower().encode("utf-8", "replace"))
        where.append((prefix, tag, place))


def _raw_sequence_segments(
    elem: RawDataElement, path: str, datas: list[bytes], where: list[tuple[str, int, str]]
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
    where: list[tuple[str, int, str]],
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
                # the item's character set is the dataset's (an item's own is rare); ASCII
                # needs none, other text is scanned as stored
                _add_raw(tag, vr, data[value_start:value_end], datas, where, prefix, ["iso8859"])
