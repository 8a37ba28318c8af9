"""De-identification engine: PS3.15 Annex E profile + project rules applied to a Dataset.

``Deidentifier(DeidSettings(...)).deidentify(ds, participant, event)`` changes ``ds`` in
place (and its file meta), recursively through sequences, and returns it. The object holds
no per-study state except a UID cache (a pure function of the UID), so one instance per
worker process is all a parallel run needs; ``deidentify_file`` is the per-file unit.

Actions (see profile.py for how the table resolves to them):

* X remove; Z zero-length value (a sequence becomes empty); K keep (sequence items are still
  de-identified); U new UID (see below; a U sequence keeps its items, de-identified);
* D dummy fitting the VR (ANONYMIZED, 0, 19000101, ...); a D sequence keeps its items,
  de-identified in "clean" mode;
* C clean: dates and times follow the project's date mode (shift / keep time / clean time);
  AE titles become a keyed pseudonym (``AE`` + 14 hex digits, stable per project);
  text (LO, SH, ST, LT, UT, UC, PN) keeps its wording with every identifying value of the
  object (patient/staff names and their parts, IDs, accession, birth date, addresses,
  phone numbers, institution) replaced by ``***``; a sequence keeps its items, de-identified
  in clean mode (free text not in the table is scrubbed the same way); other VRs (overlay
  and curve data under Clean Graphics) are kept as they are.

Attributes the table does not list are judged by their VR (keep_list.py: text cleaned or
removed, names removed, UIDs replaced, dates by the date mode; codes and numbers kept), except
those on the reviewed keep-list and the project's ``keep_tags``. A public element stored as
UN is read with its dictionary VR first (a sequence as the implicit-VR items it holds), so it
meets the same rules; a private UN element stays opaque (the private allow-list decides).
Group lengths are dropped. UIDs under the DICOM root 1.2.840.10008 are never replaced.

Private elements are removed except those in the allow-list (project entries plus, by
default, the built-in diffusion list), matched by (group, private creator, element offset)
at the same nesting level, so a block that moved to another element range still matches.
A creator element stays only while an element of its block stays.

UID schemes: ``keyed`` = HMAC-SHA256(project secret, UID) as ``2.25.<128-bit decimal>`` or
``<root>.<decimal>`` cut to 64 characters; ``fiona`` = DICOMAnonymizer's
``hashuid+PROJECTNAME`` (raw value with its NUL pad + project name, SHA-256, nibbles as
digits 0123456789012345, prefix 1.3.6.1.4.1.45037., 63 characters) for every replaced UID.
With the FIONA table (``table="fiona"``, fiona_rules.py) its 18 plain ``hashuid`` tags get
upstream's root-less 64-digit hash instead; every other replaced UID uses the project form.

Project rules (the FIONA table, tag changes) come from a rule set the engine is given
(``Deidentifier(settings, rule_set=...)``; ruleset.py describes the hooks). The engine does not
know any rule set: factory.deidentifier_for(settings) picks the one the settings need, and
settings that need one are refused without it.

Dates: ``shift`` = Retain Longitudinal Modified Dates (offset fixed by ``date_shift_days``,
42 in FIONA mode, else HMAC of the participant ID with the secret, in ``date_shift_range``);
``keep`` = Retain Full Dates; ``remove`` = basic profile actions (Z/X/D).
PixelData is never decoded or converted.

Encapsulated documents (PDF, CDA, STL, OBJ, MTL; any object with an Encapsulated Document)
are refused with ``DroppedObject``: the table's dummy would replace the document by two NUL
bytes, and a destroyed object must never be sent; the caller records the drop (batch.py).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydicom.dataelem import RawDataElement, empty_value_for_VR
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID

from fionagw import __version__
from fionagw.classify.csa import CSA_CREATOR
from fionagw.deid.csa_clean import UID_TOKEN, clean_csa
from fionagw.deid.elements import ascii_values, element_value, elements_of, put, values
from fionagw.deid.inputcheck import incomplete_reason
from fionagw.deid.keep_list import CLEANED, KEEP, REMOVE, unlisted_action
from fionagw.deid.patterns import id_patterns
from fionagw.deid.profile import OPTION_CODES, Profile, validate_options
from fionagw.deid.release import STANDARD_UID_ROOT, Identifiers, vr_of
from fionagw.deid.ruleset import ObjectContext, RuleSet
from fionagw.deid.scrub import scrub_text
from fionagw.deid.tagchange import parse_tag_change
from fionagw.deid.writer import read, write
from fionagw.dicom.vr import dictionary_vr

FIONA_UID_ROOT = "1.3.6.1.4.1.45037."
_VERSION_NAME = f"FIONAGW_{__version__}"[:16]
_NIBBLE_DIGITS = str.maketrans("abcdef", "012345")

# (group, private creator, element offset): diffusion values DTI tools read.
DIFFUSION_PRIVATE: tuple[tuple[int, str, int], ...] = (
    # Siemens: CSA image/series headers (and their type/version), B_value,
    # DiffusionDirectionality, DiffusionGradientDirection, B_matrix
    *((0x0029, "SIEMENS CSA HEADER", e) for e in (0x08, 0x09, 0x10, 0x18, 0x19, 0x20)),
    *((0x0019, "SIEMENS MR HEADER", e) for e in (0x0C, 0x0D, 0x0E, 0x27)),
    # GE: b-value (slop_int_6..9), gradient direction (user data 20..22)
    (0x0043, "GEMS_PARM_01", 0x39),
    *((0x0019, "GEMS_ACQU_01", e) for e in (0xBB, 0xBC, 0xBD)),
    # Philips: b-factor and direction label, gradient direction, b-value / gradient numbers
    (0x2001, "PHILIPS IMAGING DD 001", 0x03),
    (0x2001, "PHILIPS IMAGING DD 001", 0x04),
    *((0x2005, "PHILIPS MR IMAGING DD 001", e) for e in (0xB0, 0xB1, 0xB2)),
    (0x2005, "PHILIPS MR IMAGING DD 005", 0x12),
    (0x2005, "PHILIPS MR IMAGING DD 005", 0x13),
)

TEXT_VRS = frozenset({"LO", "SH", "ST", "LT", "UT", "UC", "PN"})
_DUMMY: dict[str, object] = {
    "AE": "ANONYMOUS",
    "AS": "000Y",
    "CS": "ANONYMIZED",
    "DA": "19000101",
    "DS": "0",
    "DT": "19000101000000",
    "IS": "0",
    "LO": "ANONYMIZED",
    "LT": "ANONYMIZED",
    "PN": "ANONYMIZED",
    "SH": "ANONYMIZED",
    "ST": "ANONYMIZED",
    "TM": "000000",
    "UC": "ANONYMIZED",
    "UR": "urn:anonymized",
    "UT": "ANONYMIZED",
    "FL": 0.0,
    "FD": 0.0,
    "SL": 0,
    "SS": 0,
    "UL": 0,
    "US": 0,
    "SV": 0,
    "UV": 0,
    "AT": 0,
    "OB": b"\0\0",
    "OW": b"\0\0",
    "UN": b"\0\0",
    "OF": b"\0" * 4,
    "OL": b"\0" * 4,
    "OD": b"\0" * 8,
    "OV": b"\0" * 8,
}
_DT = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\.\d{1,6})?([+-]\d{4})?$")


ENCAPSULATED_DOCUMENT = 0x00420011
ENCAPSULATED_SOP_CLASS_ROOT = "1.2.840.10008.5.1.4.1.1.104."


class DroppedObject(ValueError):
    """An object the engine does not send on purpose (the message is one line, no value)."""


def dropped_reason(ds: Dataset) -> str | None:
    """Why ``ds`` is not sent at all (an encapsulated document), or None."""
    elems = elements_of(ds)
    if ENCAPSULATED_DOCUMENT in elems:
        return "dropped: encapsulated document"
    sop_class = ascii_values(elems[0x00080016]) if 0x00080016 in elems else []
    if sop_class and sop_class[0].startswith(ENCAPSULATED_SOP_CLASS_ROOT):
        return "dropped: encapsulated document"
    return None


# --- settings ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeidSettings:
    """Per-project de-identification settings.

    options: extra PS3.15 options (retain_patient_characteristics, retain_device_identity,
    retain_institution_identity, retain_uids, clean_descriptors, clean_structured_content,
    clean_graphics). The date options follow ``date_mode``; Retain Safe Private follows the
    private allow-list.
    """

    project: str
    secret: bytes | str = b""
    uid_scheme: str = "keyed"  # keyed | fiona
    uid_root: str | None = None  # keyed: None -> 2.25
    date_mode: str = "shift"  # shift | keep | remove
    date_shift_days: int | None = None  # fixed shift; None -> per-participant keyed offset
    date_shift_range: tuple[int, int] = (-730, -30)  # days, inclusive
    times: str = "keep"  # keep | clean
    options: frozenset[str] = frozenset()
    private_keep: tuple[tuple[int, str, int], ...] = ()  # (group, creator, element offset)
    keep_diffusion: bool = True
    composite: str = "valid"  # valid | minimal (profile.py)
    sponsor: str | None = None  # (0012,0010); default: project
    site_id: str | None = None
    site_name: str | None = None
    # "ps3.15": the PS3.15 table alone; "fiona": DICOMAnonymizer's table first (a rule set)
    table: str = "ps3.15"
    tag_changes: tuple[str, ...] = ()  # "gggg,eeee=VALUE" (tagchange.py)
    regex_tag_changes: tuple[str, ...] = ()  # "gggg,eeee=REGEX"
    keep_tags: tuple[int, ...] = ()  # unlisted public attributes the project keeps (keep_list)

    @classmethod
    def fiona(cls, project: str, **changes) -> DeidSettings:
        """FIONA (DICOMAnonymizer) mode: its rule table, hashuid+PROJECTNAME UIDs, +42 days."""
        changes.setdefault("table", "fiona")
        changes.setdefault("uid_scheme", "fiona")
        changes.setdefault("date_mode", "shift")
        changes.setdefault("date_shift_days", 42)
        return cls(project=project, **changes)

    @property
    def needs_rule_set(self) -> bool:
        """The FIONA table and tag changes are applied by a rule set (ruleset.py)."""
        return self.table == "fiona" or bool(self.tag_changes or self.regex_tag_changes)

    @property
    def key(self) -> bytes:
        return self.secret.encode() if isinstance(self.secret, str) else bytes(self.secret)

    def validate(self) -> None:
        if self.uid_scheme not in ("keyed", "fiona"):
            raise ValueError("uid_scheme must be keyed or fiona")
        if self.date_mode not in ("shift", "keep", "remove"):
            raise ValueError("date_mode must be shift, keep or remove")
        if self.times not in ("keep", "clean"):
            raise ValueError("times must be keep or clean")
        lo, hi = self.date_shift_range
        if lo > hi:
            raise ValueError("date_shift_range must be (low, high)")
        needs_key = (self.uid_scheme == "keyed" and "retain_uids" not in self.options) or (
            self.date_mode == "shift" and self.date_shift_days is None
        )
        if needs_key and not self.key:
            raise ValueError("a project secret is required for keyed UIDs or keyed date shifts")
        if self.uid_root and (
            not re.fullmatch(r"[0-9]+(\.[0-9]+)*", self.uid_root) or len(self.uid_root) > 40
        ):
            raise ValueError("uid_root must be a dotted-digit root of at most 40 characters")
        if self.options & {"retain_full_dates", "retain_modified_dates", "retain_safe_private"}:
            raise ValueError("date and safe-private options follow date_mode and private_keep")
        validate_options(self.options)
        if self.table not in ("ps3.15", "fiona"):
            raise ValueError("table must be ps3.15 or fiona")
        if self.table == "fiona" and self.uid_scheme != "fiona":
            raise ValueError("the FIONA table goes with uid_scheme fiona (hashuid+PROJECTNAME)")
        for text in self.tag_changes:
            parse_tag_change(text)
        for text in self.regex_tag_changes:
            parse_tag_change(text, regex=True)

    def profile_options(self) -> frozenset[str]:
        opts = set(self.options)
        if self.date_mode == "shift":
            opts.add("retain_modified_dates")
        elif self.date_mode == "keep":
            opts.add("retain_full_dates")
        if self.private_keep or self.keep_diffusion:
            opts.add("retain_safe_private")
        return frozenset(opts)


# --- UIDs and dates (pure functions) ------------------------------------------------------------


def nibble_digits(hex_digest: str) -> str:
    """A hex digest with each nibble written as one of ``0123456789012345`` (upstream toDec)."""
    return hex_digest.translate(_NIBBLE_DIGITS)


def fiona_uid(uid: str, project: str) -> str:
    """DICOMAnonymizer's hashuid+PROJECTNAME."""
    raw = uid.encode("ascii")
    if len(raw) % 2:
        raw += b"\0"  # the element's pad byte is part of the hashed value upstream
    digest = hashlib.sha256(raw + project.encode("utf-8")).hexdigest()
    return (FIONA_UID_ROOT + nibble_digits(digest))[:63]


def keyed_uid(uid: str, key: bytes, root: str | None = None) -> str:
    digest = hmac.new(key, uid.encode("ascii", "replace"), hashlib.sha256).digest()
    if not root:
        return f"2.25.{int.from_bytes(digest[:16], 'big')}"
    return f"{root.rstrip('.')}.{int.from_bytes(digest, 'big')}"[:64]


def keyed_date_offset(participant: str, key: bytes, low: int, high: int) -> int:
    digest = hmac.new(key, b"date-shift\0" + participant.encode("utf-8"), hashlib.sha256).digest()
    return low + int.from_bytes(digest[:8], "big") % (high - low + 1)


def shift_da(value: str, days: int) -> str:
    """Shift one DA value (or a DA range A-B); unparseable -> ''."""
    if "-" in value:
        return "-".join(shift_da(v, days) if v else "" for v in value.split("-", 1))
    text = value.strip().replace(".", "")
    try:
        day = dt.date(int(text[:4]), int(text[4:6]), int(text[6:8])) if len(text) == 8 else None
    except ValueError:
        day = None
    if day is None:
        return ""
    try:
        return (day + dt.timedelta(days=days)).strftime("%Y%m%d")
    except OverflowError:
        return ""


def clean_tm(value: str) -> str:
    return re.sub(r"\d", "0", value)


def shift_dt(value: str, days: int, clean_time: bool = False) -> str:
    """Shift one DT value keeping its precision, fraction and UTC offset; unparseable -> ''."""
    m = _DT.match(value.strip())
    if not m:
        return ""
    year, month, day, *rest = m.groups()
    try:
        base = dt.date(int(year), int(month or 1), int(day or 1)) + dt.timedelta(days=days)
    except (ValueError, OverflowError):
        return ""
    text = f"{base.year:04d}"
    if month:
        text += f"{base.month:02d}"
    if day:
        text += f"{base.day:02d}"
    time = "".join(r for r in rest[:4] if r)
    offset = rest[4] or ""
    return text + (clean_tm(time) if clean_time else time) + offset


# --- engine ---------------------------------------------------------------------------------


class Deidentifier:
    """The de-identification of one project's objects (see module docstring).

    rule_set: the project's rule set class (or factory), called with this engine; required
    when the settings need one (``settings.needs_rule_set``): factory.deidentifier_for picks it.
    """

    def __init__(
        self, settings: DeidSettings, rule_set: Callable[[Deidentifier], RuleSet] | None = None
    ) -> None:
        settings.validate()
        if rule_set is None and settings.needs_rule_set:
            raise ValueError(
                "the FIONA table and tag changes need a rule set: build the engine with "
                "fionagw.deid.factory.deidentifier_for(settings)"
            )
        self.settings = settings
        self.profile = Profile(settings.profile_options(), settings.composite)
        self.uid_map: dict[str, str] = {}
        allow = set(settings.private_keep)
        if settings.keep_diffusion:
            allow |= set(DIFFUSION_PRIVATE)
        self.private_allow = frozenset((g, c.strip().upper(), e) for g, c, e in allow)
        self.retain_uids = "retain_uids" in settings.options
        self.keep = KEEP | frozenset(settings.keep_tags)
        self._csa_cache: dict[tuple[bytes, frozenset[str]], bytes | None] = {}
        self._ids_cache: dict[tuple, Identifiers] = {}  # per study's identity (ruleset.py)
        self._needles: dict[int, tuple[Identifiers, tuple[bytes, ...]]] = {}
        self.clean_unlisted = "clean_descriptors" in settings.options
        opts = self.profile.options
        short = "Retain Longitudinal Temporal Information"
        # DeidentificationMethod (0012,0063) as stamped
        self.method = (
            [
                f"fionagw {__version__}",
                f"PS3.15 Table E.1-1 {self.profile.edition[:4]}",
                "Basic Profile",
            ]
            + [OPTION_CODES[o][1].replace(short, "Retain Longitudinal")[:64] for o in sorted(opts)]
            + [f"UIDs {settings.uid_scheme}", f"dates {settings.date_mode}"]
        )
        self.rule_set = rule_set(self) if rule_set is not None else None
        self.private_dates = dict(self.rule_set.private_dates) if self.rule_set else {}
        self.private_allow |= frozenset(self.private_dates)

    # --- values -----------------------------------------------------------------------------

    def uid(self, value: str) -> str:
        """The replacement of one UID (stable for the project, across files and runs)."""
        value = value.strip().rstrip("\0")
        if not value or value.startswith(STANDARD_UID_ROOT):
            return value
        new = self.uid_map.get(value)
        if new is None:
            if self.settings.uid_scheme == "fiona":
                new = fiona_uid(value, self.settings.project)
            else:
                new = keyed_uid(value, self.settings.key, self.settings.uid_root)
            self.uid_map[value] = new
        return new

    def date_offset(self, participant: str) -> int | None:
        """Days added to every date of ``participant`` (None unless date_mode is shift)."""
        s = self.settings
        if s.date_mode != "shift":
            return None
        if s.date_shift_days is not None:
            return s.date_shift_days
        return keyed_date_offset(participant, s.key, *s.date_shift_range)

    def _ae(self, value: str) -> str:
        key = self.settings.key or self.settings.project.encode()
        return "AE" + hmac.new(key, b"ae\0" + value.encode(), hashlib.sha256).hexdigest()[:14]

    # --- dataset ------------------------------------------------------------------------------

    def deidentify(self, ds: Dataset, participant: str, event: str | None = None) -> Dataset:
        """De-identify ``ds`` in place; DroppedObject for an object that is never sent."""
        dropped = dropped_reason(ds)
        if dropped:
            raise DroppedObject(dropped)
        ctx = ObjectContext(self.date_offset(participant), ds, self._ids_cache)
        had_reason = 0x00401002 in elements_of(ds)
        rule_set = self.rule_set
        if rule_set is not None:
            ctx.rule_state = rule_set.begin(ds, participant, event)
        self._walk(ds, ctx, clean=False)
        self._stamp(ds, participant, event, had_reason)
        if rule_set is not None:  # the rules' markers and tag changes win over the stamps
            rule_set.finish(ds, ctx)
        return ds

    def deidentify_file(
        self, src: Path | str, dst: Path | str, participant: str, event: str | None = None
    ) -> Path:
        """Read ``src``, de-identify, write to ``dst`` (a directory -> <SOPInstanceUID>.dcm).

        A truncated or incomplete input raises ValueError (dcmread would return it short)."""
        ds = read(src)
        reason = incomplete_reason(ds)
        if reason:
            raise ValueError(f"{Path(src).name}: {reason}")
        self.deidentify(ds, participant, event)
        out = Path(dst)
        if out.is_dir():
            out = out / f"{ds.SOPInstanceUID}.dcm"
        return write(ds, out)

    def _walk(self, ds: Dataset, ctx: ObjectContext, clean: bool) -> None:
        elems = elements_of(ds)
        action_of = self.profile.action
        rule_set = self.rule_set
        rule_tags = rule_set.tags if rule_set is not None else ()
        has_private = False
        for tag in list(elems):
            group = tag >> 16
            if group & 1:
                has_private = True
                continue
            if tag & 0xFFFF == 0:
                del elems[tag]
                continue
            if elems[tag].VR == "UN":  # public: read it with the dictionary's VR first
                _interpret_un(ds, tag)
            if tag in rule_tags:  # the rule set decides for its tags
                rule_set.apply(ds, tag, ctx)
                continue
            action = action_of(tag)
            if action == "X":
                del elems[tag]
            elif action is None:
                vr = vr_of(elems[tag])
                if vr == "SQ":
                    self.walk_items(ds[tag].value, ctx, clean)
                elif tag in self.keep:
                    if tag in CLEANED:
                        self._scrub(ds, tag, ctx)
                elif tag in REMOVE:
                    del elems[tag]
                elif vr in ("DA", "DT", "TM"):
                    self.apply_date_mode(ds, tag, vr, ctx, unlisted=True)
                else:
                    unlisted = unlisted_action(
                        None if vr == "UN" else vr, clean or self.clean_unlisted
                    )
                    if unlisted == "X":
                        del elems[tag]
                    elif unlisted is not None:
                        self._apply(ds, tag, unlisted, ctx)
            elif action == "K":
                if vr_of(elems[tag]) == "SQ":
                    self.walk_items(ds[tag].value, ctx, clean)
            else:
                self._apply(ds, tag, action, ctx)
        if has_private:
            self._private(ds, ctx, clean)

    def walk_items(self, items: Sequence | None, ctx: ObjectContext, clean: bool = False) -> None:
        """De-identify the items of a sequence (``clean``: free text scrubbed, as under C)."""
        for item in items or ():
            self._walk(item, ctx, clean)

    def _apply(self, ds: Dataset, tag: int, action: str, ctx: ObjectContext) -> None:
        raw = elements_of(ds)[tag]
        vr = vr_of(raw).split(" or ")[0]
        if vr == "SQ":
            if action == "Z":
                put(ds, tag, "SQ", Sequence())
            else:  # D, C: items kept, cleaned; U: items kept (their UIDs replaced)
                self.walk_items(ds[tag].value, ctx, clean=action != "U")
            return
        if action == "Z":
            put(ds, tag, vr, empty_value_for_VR(vr))
        elif action == "U" or (action == "D" and vr == "UI"):
            if not self.retain_uids:
                new = [self.uid(v) for v in ascii_values(raw)]
                put(ds, tag, "UI", new[0] if len(new) == 1 else new)
        elif action == "D":
            put(ds, tag, vr, _DUMMY.get(vr, b"\0\0"))
        elif action == "C":
            if vr in ("DA", "DT", "TM"):
                self.apply_date_mode(ds, tag, vr, ctx, unlisted=False)
            elif vr == "AE":
                put(ds, tag, "AE", element_value([self._ae(v) for v in ascii_values(raw)]))
            elif vr in TEXT_VRS:
                self._scrub(ds, tag, ctx)
            # other VRs (overlay/curve data under Clean Graphics) stay as they are

    def apply_date_mode(
        self, ds: Dataset, tag: int, vr: str, ctx: ObjectContext, unlisted: bool = False
    ) -> None:
        """The project's date mode on one DA, DT or TM element: shifted by ``ctx.days``,
        kept, or emptied (``unlisted``: an element the table does not list; a listed one
        in remove mode keeps its table action), times cleaned when the project asks."""
        s = self.settings
        if s.date_mode == "keep" or (vr == "TM" and s.times == "keep"):
            return
        if s.date_mode == "remove" and vr != "TM":
            if unlisted:  # listed dates in remove mode get their table action, not C
                put(ds, tag, vr, "")
            return
        clean_time = s.times == "clean"
        old = ascii_values(elements_of(ds)[tag])
        if vr == "TM":
            new = [clean_tm(v) for v in old]
        elif vr == "DA":
            new = [shift_da(v, ctx.days or 0) for v in old]
        else:
            new = [shift_dt(v, ctx.days or 0, clean_time) for v in old]
        put(ds, tag, vr, element_value(new))

    def clean_text(self, ds: Dataset, tag: int, ctx: ObjectContext) -> None:
        """Clean one retained text element (for rule sets): the engine's scrubber."""
        self._scrub(ds, tag, ctx)

    # The study's identifiers (every file of it), set by a caller that collected them
    # (batch.py); the object's own are ctx.ids. Used by _scrub only.
    scrub_identifiers: tuple[Identifiers, ...] = ()

    def _text_cleaner(self, ctx: ObjectContext) -> Callable[[str], str]:
        """The scrubber for this object's text: its own identifiers and its study's."""
        sets = (ctx.ids, *self.scrub_identifiers)
        patterns = id_patterns(tuple(dict.fromkeys(p for s in sets for p in s.patterns)))
        regexes = [s.regex() for s in sets]
        return lambda text: scrub_text(text, regexes, patterns)

    def _scrub(self, ds: Dataset, tag: int, ctx: ObjectContext) -> None:
        """Clean one text element (scrub.py): every identifying value of the object and its
        study (names and each part as words, IDs also inside tokens, a birth date in any
        written form, phone numbers, addresses), national IDs and date-like strings become
        ``***``. pydicom decodes the value with the element's character set (ISO 2022 with
        escapes, GB18030, UTF-8, Latin-1 when none is declared) and the writer encodes it
        back in that set; a value with nothing to clean stays as it was, bytes and all."""
        elem = ds[tag]
        old = [str(v) for v in values(elem.value)]
        if not old:
            return
        clean = self._text_cleaner(ctx)
        new = [clean(v) for v in old]
        if new != old:
            put(ds, tag, elem.VR, element_value(new))

    def _private(self, ds: Dataset, ctx: ObjectContext, clean: bool) -> None:
        elems = elements_of(ds)
        creators: dict[tuple[int, int], str] = {}
        for tag in elems:
            group, element = tag >> 16, tag & 0xFFFF
            if group & 1 and 0x10 <= element <= 0xFF:
                value = ds[tag].value
                if isinstance(value, bytes):
                    value = value.decode("latin-1")
                creators[(group, element)] = str(value).strip().rstrip("\0").upper()
        used: set[tuple[int, int]] = set()
        for tag in list(elems):
            group, element = tag >> 16, tag & 0xFFFF
            if not group & 1 or 0x10 <= element <= 0xFF:
                continue
            block = (group, element >> 8)
            creator = creators.get(block) if element > 0xFF else None
            if creator is not None and (group, creator, element & 0xFF) in self.private_allow:
                used.add(block)
                if vr_of(elems[tag]) == "SQ":
                    self.walk_items(ds[tag].value, ctx, clean)
                elif self.private_dates and (group, creator, element & 0xFF) in self.private_dates:
                    # a kept private date (FIONA: SIEMENS MED PT) moves like the public ones
                    vr = self.private_dates[(group, creator, element & 0xFF)]
                    self.apply_date_mode(ds, tag, vr, ctx, unlisted=True)
                elif group == 0x0029 and creator == CSA_CREATOR and element & 0xFF in (0x10, 0x20):
                    self._csa(ds, tag, ctx)
            else:
                del elems[tag]
        for group, element in creators:
            if (group, element) not in used:
                del elems[(group << 16) | element]

    def _csa(self, ds: Dataset, tag: int, ctx: ObjectContext) -> None:
        """A kept Siemens CSA header: its UIDs remapped, its text scrubbed (csa_clean.py)."""
        elems = elements_of(ds)
        value = ds[tag].value
        if not isinstance(value, bytes | bytearray) or not value:
            return
        blob = bytes(value)
        ids = ctx.ids
        key = (blob, frozenset(ids.values), tuple(map(id, self.scrub_identifiers)))
        cleaned = self._csa_cache.get(key, blob)  # a series' images share one series header
        if cleaned is blob and (UID_TOKEN.search(blob) or self._may_hold(ids, blob)):
            uid = (lambda v: v) if self.retain_uids else self.uid
            cleaned = clean_csa(blob, uid, self._text_cleaner(ctx))
            if len(self._csa_cache) > 64:
                self._csa_cache.clear()
            self._csa_cache[key] = cleaned
        if cleaned is None:
            del elems[tag]
        elif cleaned != blob:
            put(ds, tag, "UN" if vr_of(elems[tag]) == "UN" else "OB", cleaned)

    def _may_hold(self, ids: Identifiers, blob: bytes) -> bool:
        """Whether ``blob`` may hold one of ``ids`` (a plain substring test, cheaper than the
        scrubber's patterns on a 10 KB header that holds none, as most image headers do)."""
        needles = self._needles.get(id(ids))
        if needles is None or needles[0] is not ids:
            values = {v.lower() for v in ids.values if len(v) >= 3}
            found = tuple({v.encode(c, "ignore") for v in values for c in ("latin-1", "utf-8")})
            needles = self._needles[id(ids)] = (ids, found)
            if len(self._needles) > 16:
                self._needles = {id(ids): needles}
        low = blob.lower()
        return any(n and n in low for n in needles[1])

    def _stamp(self, ds: Dataset, participant: str, event: str | None, had_reason: bool) -> None:
        s = self.settings
        put(ds, 0x00100010, "PN", participant)
        put(ds, 0x00100020, "LO", participant)
        put(ds, 0x00120062, "CS", "YES")
        put(ds, 0x00120063, "LO", self.method)
        put(ds, 0x00120064, "SQ", Sequence([_code_item(v, m, ds) for v, m in self.profile.codes()]))
        put(
            ds,
            0x00280303,
            "CS",
            {"shift": "MODIFIED", "keep": "UNMODIFIED", "remove": "REMOVED"}[s.date_mode],
        )
        put(ds, 0x00120010, "LO", (s.sponsor or s.project)[:64])
        put(ds, 0x00120020, "LO", s.project[:64])
        put(ds, 0x00120021, "LO", s.project[:64])
        put(ds, 0x00120040, "LO", participant)
        if s.site_id is not None:
            put(ds, 0x00120030, "LO", s.site_id)
        if s.site_name is not None:
            put(ds, 0x00120031, "LO", s.site_name)
        if event:
            text = f"EventName:{event}"[:64]
            put(ds, 0x00120050, "LO", event[:64])
            put(ds, 0x00120051, "ST", event)
            put(ds, 0x00080090, "PN", text)
            put(ds, 0x00402001, "LO", text)  # created if missing (FIONA)
            if had_reason:  # replaced only if present in the input (FIONA)
                put(ds, 0x00401002, "LO", text)
        meta = getattr(ds, "file_meta", None)
        if meta is not None:
            if 0x00080018 in elements_of(ds):
                # no validation: FIONA UIDs may have a leading-zero component, as upstream's do
                put(meta, 0x00020003, "UI", ds.SOPInstanceUID)
            for tag in (0x00020016, 0x00020017, 0x00020018, 0x00020100, 0x00020102):
                if tag in meta:  # AE titles and private information of the sender
                    del meta[tag]
            # this file is written by us (pydicom's writer), not by the sender's software
            put(meta, 0x00020012, "UI", PYDICOM_IMPLEMENTATION_UID)
            put(meta, 0x00020013, "SH", _VERSION_NAME)


def _interpret_un(ds: Dataset, tag: int) -> None:
    """A public element stored as UN, re-read with the dictionary's VR (unknown: left as UN).

    UN holds the value's bytes as the implicit little-endian encoding would: the same bytes
    for any other VR, and a sequence's items in implicit VR."""
    elems = elements_of(ds)
    elem = elems[tag]
    vr = dictionary_vr(tag)
    if vr is None or not isinstance(elem, RawDataElement):
        return
    vr = vr.split(" or ")[0]
    elems[tag] = elem._replace(VR=vr, is_implicit_VR=True if vr == "SQ" else elem.is_implicit_VR)


def _code_item(value: str, meaning: str, parent: Dataset) -> Dataset:
    item = Dataset()
    # encoded like its parent, so put can make raw elements (cheap, written as they are)
    item.set_original_encoding(*parent.original_encoding, parent.original_character_set)
    put(item, 0x00080100, "SH", value)
    put(item, 0x00080102, "SH", "DCM")
    put(item, 0x00080104, "LO", meaning)
    return item
