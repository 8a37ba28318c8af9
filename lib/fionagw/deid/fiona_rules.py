"""FIONA mode (DICOMAnonymizer's rule table) and project tag changes, applied by the engine.

A project migrated from FIONA gets what ``anonymize -j P --tagchange "0008,0080=PROJECTNAME"
--patientid <participant> -b -m [--eventname E ...] [--regtagchange T=RE]`` gives: the 276
rules of ``table_fiona.py`` (generated from the upstream table by
tools/generate_deid_tables.py). ``FionaRules`` is the engine's rule set (ruleset.py) for
FIONA mode and for tag changes in any mode; factory.deidentifier_for chooses it.

How the two tables combine: for a tag of the FIONA table the FIONA rule decides (keep means
keep); every other attribute follows the PS3.15 basic profile of the engine (with Retain
Longitudinal Modified Dates, so unlisted dates move by the same +42 days, and the private
allow-list), so nothing identifying that the FIONA table does not list can leak. The rules
apply at every nesting level (upstream only replaces hashuid+PROJECTNAME inside sequences);
missing elements are created (createIfMissing) at the top level only.

Rule actions (``tagchange.Rule``):

* ``remove``: the element goes. Public tags are removed too: upstream HEAD (786cfce) only
  removes private tags, a regression that is not reproduced here.
* ``keep`` (and upstream ``process``): unchanged; a sequence's items are still processed.
* ``empty``: zero length (a sequence: no items).
* ``hashuid+PROJECTNAME``: the engine's UID scheme; in FIONA mode ``fiona_uid``: SHA-256 of the
  value with its NUL pad plus the project name, nibbles as digits ``0123456789012345``, prefix
  ``1.3.6.1.4.1.45037.``, 63 characters. Mapped per value (upstream hashes a multi-valued
  element whole; only single-valued tags have this rule).
* ``hashuid``: the 64-digit decimalized SHA-256 of the padded value, no root, no project
  (other UID schemes: the engine's UID). UIDs under 1.2.840.10008 are never replaced.
* ``hash``: the same decimalized hash of the padded value, cut to the VR's maximum (16 for
  AccessionNumber, SH); an empty value stays empty (upstream would give every empty accession
  the same fake number). StudyID is always the hash of StudyInstanceUID + project, i.e. digits
  19-34 of the new StudyInstanceUID. An accession number is guessable, so in keyed projects
  (a ``hash`` tag change) the hash is an HMAC with the project key instead.
* ``incrementdate``: YYYYMMDD + the project's shift (+42 in FIONA). An unparseable or empty
  StudyDate becomes ``1970MM01``, where upstream's random month is here derived from the
  study UID and project, so a resend gives the same date; any other unparseable date becomes
  empty. ``incrementdatetime``: YYYY, YYYYMM, YYYYMMDD and YYYYMMDD+time+offset keep their
  precision and time; unparseable becomes empty. Times are kept (cleaned only when the
  project sets ``times: clean``). With ``date_mode: keep`` dates stay, with ``remove`` they
  become empty.
* BodyPartExamined: kept when it is a keyword of the CID 4031 allow-list (542 entries),
  otherwise ``BODYPART``.
* values: ``Re-Mapped`` / ``PatientID`` = participant, ``ProjectName`` = project (also
  InstitutionName), ``EventName`` = event (empty without one), literals such as ``YES``;
  LongitudinalTemporalInformationModified = ``MODIFIED`` (the engine writes it always, as
  PS3.15 asks when dates move); DeidentificationMethod = ``{Per DICOM PS 3.15 AnnexE}``
  followed by our own method values (edition, options); DeIdentificationMethodCodeSequence =
  one item, CodeValue ``github.com/mmiv-center/DICOMAnonymizer``, CodeMeaning ``Software``.
  FIONA's per-event tag changes (``EventName:<event>`` in (0008,0090), (0040,2001) created,
  (0040,1002) only when present) are the engine's stamps; beyond upstream the engine also
  writes Clinical Trial Sponsor Name (0012,0010) and, when configured, site ID and name.
* private rules: Sectra (0009,1001/1002), MITRA (0033,10xx) and the CTP-like 0013 block are
  removed (as upstream finally does); SIEMENS MED PT (0071,xx22), matched by its private
  creator, is kept and date-shifted as DT. Other private elements follow the allow-list
  (the diffusion list and the project's private_keep).

Where this departs from upstream on purpose (FIONA's leaks and losses, fixed):

* references are remapped, not deleted: upstream removes SourceImageSequence,
  RequestAttributesSequence and ReferencedPerformedProcedureStepSequence and empties the SR
  ContentSequence; here those rows are left to the profile, which keeps the items with their
  UIDs replaced (profile.REFERENCE_SEQUENCES) and cleans SR content (Clean Structured Content);
* device identity is not kept: upstream keeps DeviceSerialNumber, PerformedStationName,
  PerformedStationAETitle, station and plate IDs; every row that PS3.15 covers by Retain
  Device Identity is left to the profile, so it goes unless the project retains it;
* kept free text is cleaned: a ``keep`` rule on a text element (LO, SH, ST, LT, UT, UC) that the
  profile would not keep as it is (descriptions, comments) scrubs it like Clean Descriptors
  (the engine's scrubber), so the wording stays and the study's identifiers go.

Project tag changes (tagchange.py) replace the rule of their tag in either mode; as upstream,
a change of a tag in the FIONA table also creates it when missing, other tags are only
replaced when present. They are applied last, so they win over the engine's stamps.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from dataclasses import dataclass, field

from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement, empty_value_for_VR
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.valuerep import MAX_VALUE_LEN

from fionagw.deid.elements import ascii_values, element_value, elements_of, put, values
from fionagw.deid.engine import TEXT_VRS, Deidentifier, DeidSettings, nibble_digits, shift_dt
from fionagw.deid.profile import REFERENCE_SEQUENCES, TABLE
from fionagw.deid.release import STANDARD_UID_ROOT, vr_of
from fionagw.deid.ruleset import ObjectContext, RuleSet
from fionagw.deid.table_fiona import BODY_PARTS, RULES, SOURCE
from fionagw.deid.tagchange import Rule, TagChange, parse_tag_change, regex_value, value_rule

FIONA_METHOD = "{Per DICOM PS 3.15 AnnexE}"
FIONA_CODE_VALUE = "github.com/mmiv-center/DICOMAnonymizer"
STUDY_UID, STUDY_DATE, STUDY_ID = 0x0020000D, 0x00080020, 0x00200010
METHOD_TAG, CODES_TAG, TEMPORAL_TAG = 0x00120063, 0x00120064, 0x00280303
SIEMENS_PT_DATE = (0x0071, "SIEMENS MED PT", 0x22)
ALLOWED_BODY_PARTS = frozenset(keyword for *_, keyword in BODY_PARTS)
FIONA_TAGS = frozenset(tag for tag, *_ in RULES)
MAX_LEN = {**MAX_VALUE_LEN, "AS": 4, "DA": 8, "DT": 26, "TM": 16, "PN": 64}
_ASCII_VRS = frozenset({"UI", "DA", "DT", "TM", "AS", "CS", "DS", "IS", "AE"})
_DATE = re.compile(r"^\s*(\d{4})(\d{2})(\d{2})")
CONTENT_SEQUENCE = 0x0040A730
# upstream rows the PS3.15 profile decides instead (module docstring: departures)
DEVICE_IDENTITY_TAGS = frozenset(
    int(row.tag, 16)
    for row in TABLE
    if "retain_device_identity" in row.options and "X" not in row.tag and row.tag != "GGGGEEEE"
)
PROFILE_DECIDES = REFERENCE_SEQUENCES | DEVICE_IDENTITY_TAGS | {CONTENT_SEQUENCE}
# actions whose result depends on the original value (the others skip converting it)
_READS_VALUE = frozenset(
    {
        "hash",
        "hashuid",
        "hashuid+PROJECTNAME",
        "incrementdate",
        "incrementdatetime",
        "bodypart",
        "regex",
    }
)


# --- values (pure functions) ---------------------------------------------------------------


def decimal_digest(data: bytes) -> str:
    """SHA-256 as 64 digits: each hex nibble written with ``0123456789012345`` (upstream toDec)."""
    return nibble_digits(hashlib.sha256(data).hexdigest())


def padded(text: str, vr: str) -> bytes:
    """The value as it is encoded: even length, NUL pad for UI, space pad otherwise."""
    raw = text.encode("utf-8")
    return raw + (b"\0" if vr == "UI" else b" ") if len(raw) % 2 else raw


def hash_value(text: str, vr: str) -> str:
    """DICOMAnonymizer's ``hash``/``hashuid``: decimalized hash cut to the VR's maximum."""
    return decimal_digest(padded(text, vr))[: MAX_LEN.get(vr, 64)]


def keyed_hash(key: bytes, text: str, vr: str) -> str:
    """``hash`` for keyed projects: HMAC-SHA256 with the project key, digits as upstream."""
    digest = hmac.new(key, b"hash\0" + padded(text, vr), hashlib.sha256).hexdigest()
    return nibble_digits(digest)[: MAX_LEN.get(vr, 64)]


def study_id(study_uid: str, project: str) -> str:
    """StudyID: hash of StudyInstanceUID + project (SH, 16 digits)."""
    return decimal_digest(padded(study_uid, "UI") + project.encode("utf-8"))[:16]


def fallback_study_date(study_uid: str, project: str) -> str:
    """``1970MM01`` for a StudyDate that cannot be shifted; the month is a function of the study."""
    month = hashlib.sha256(f"{study_uid}\0{project}".encode()).digest()[0] % 12 + 1
    return f"1970{month:02d}01"


def increment_date(value: str, days: int) -> str:
    """YYYYMMDD (anything after the day is dropped, as upstream) + days; unparseable -> ''."""
    m = _DATE.match(value)
    if not m:
        return ""
    try:
        day = dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3))) + dt.timedelta(days=days)
    except (ValueError, OverflowError):
        return ""
    return day.strftime("%Y%m%d")


def limit(text: str, vr: str) -> str:
    n = MAX_LEN.get(vr)
    return text[:n] if n else text


_BINARY_NUMBERS = {"US": int, "SS": int, "UL": int, "SL": int, "UV": int, "SV": int}
_BINARY_NUMBERS.update({"FL": float, "FD": float})


def fit(text: str, vr: str) -> object:
    """A tag change's text as a value of ``vr``: cut to the VR's maximum; for a number VR
    (IS, DS, US, FL, ...) the numbers it holds, or empty when it holds none (a regex with no
    match on Rows cannot write "FIONA: no match ..." there; upstream wrote a broken value)."""
    if vr not in _BINARY_NUMBERS and vr not in ("IS", "DS"):
        return limit(text, vr)
    parts = [p.strip() for p in text.split("\\")]
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        return ""
    if vr in ("IS", "DS"):
        if vr == "IS" and not all(n.is_integer() for n in numbers):
            return ""
        return element_value([limit(p, vr) for p in parts])
    kind = _BINARY_NUMBERS[vr]
    if kind is int and not all(n.is_integer() for n in numbers):
        return ""
    return element_value([kind(n) for n in numbers])


def table_rule(tag: int, name: str, action: str, create: bool) -> Rule:
    """The meaning of one upstream table row (see the module docstring)."""
    if tag >> 16 & 1:
        return Rule("private", action, create)
    if action == "Re-Mapped":
        return Rule("keyword", "participant", create)
    if action == "process":
        return Rule("keep", "", create)
    if tag == TEMPORAL_TAG:
        return Rule("temporal", action, True)
    if tag == METHOD_TAG:
        return Rule("method", action, create)
    if tag == CODES_TAG:
        return Rule("codes", action, create)
    return value_rule(tag, action, create=create)


def parse_changes(settings: DeidSettings) -> list[TagChange]:
    """The settings' tag changes, then regex tag changes (ValueError on a bad one)."""
    return [parse_tag_change(t) for t in settings.tag_changes] + [
        parse_tag_change(t, regex=True) for t in settings.regex_tag_changes
    ]


# --- the rule set ---------------------------------------------------------------------------


@dataclass
class RuleState:
    """Per object: what the rules need from the original (top-level) dataset."""

    study_uid: str
    participant: str
    event: str
    originals: dict[int, list[str] | None] = field(default_factory=dict)


class FionaRules(RuleSet):
    """The public-tag rules of one project (FIONA table and/or tag changes) for ``engine``."""

    def __init__(self, engine: Deidentifier) -> None:
        self.engine = engine
        s = self.settings = engine.settings
        self.fiona = s.table == "fiona"
        rules: dict[int, Rule] = {}
        if self.fiona:
            for tag, name, action, create in RULES:
                rule = table_rule(tag, name, action, create)
                if rule.action == "private" or tag in PROFILE_DECIDES:
                    continue  # private: the allow-list; the others: the profile
                if rule.action == "keep" and engine.profile.action(tag) not in ("K", None):
                    rule = Rule("keep", "clean", create)  # free text: scrubbed when text
                rules[tag] = rule
        changes = parse_changes(s)
        for change in changes:
            create = change.tag in FIONA_TAGS
            rules[change.tag] = (
                Rule("regex", change.value, create)
                if change.regex
                else value_rule(change.tag, change.value, create=create)
            )
        self.rules = rules
        self.changed = tuple(dict.fromkeys(c.tag for c in changes))
        self.creates = tuple(t for t, r in rules.items() if r.create and t not in self.changed)
        self.method = [
            FIONA_METHOD,
            f"DICOMAnonymizer rules {SOURCE.split('@')[1].split()[0]}",
            *engine.method,
        ]
        # private elements with a rule that keeps them: (group, creator, offset) -> VR
        self.private_dates = {SIEMENS_PT_DATE: "DT"} if self.fiona else {}

    @property
    def tags(self) -> dict[int, Rule]:
        return self.rules

    # --- per object ---------------------------------------------------------------------------

    def begin(self, ds: Dataset, participant: str, event: str | None) -> RuleState:
        elems = elements_of(ds)
        study = ascii_values(elems[STUDY_UID]) if STUDY_UID in elems else []
        state = RuleState(study[0] if study else "", participant, event or "")
        for tag in self.changed:
            state.originals[tag] = _text_values(ds, tag) if tag in elems else None
        return state

    def apply(self, ds: Dataset, tag: int, ctx: ObjectContext) -> None:
        """The rule of ``tag`` on the element present in ``ds`` (any nesting level)."""
        rule = self.rules[tag]
        elems = elements_of(ds)
        if rule.action == "remove":
            del elems[tag]
            return
        vr = _vr(tag, elems[tag])
        if vr == "SQ":
            self._sequence(ds, tag, rule, ctx)
            return
        if rule.action == "keep":  # most rules: leave the raw element unconverted
            if vr == "TM" and self.settings.times == "clean":  # the project asked for it
                self.engine.apply_date_mode(ds, tag, vr, ctx, unlisted=False)
            elif rule.value == "clean" and vr in TEXT_VRS:
                self.engine.clean_text(ds, tag, ctx)
            return
        old = _text_values(ds, tag) if rule.action in _READS_VALUE else []
        new = self.value(rule, tag, vr, old, ctx)
        if new is not None:
            put(ds, tag, vr, new)

    def finish(self, ds: Dataset, ctx: ObjectContext) -> None:
        """Top level, after the engine's stamps: markers, createIfMissing, tag changes."""
        elems = elements_of(ds)
        if self.fiona:
            put(ds, METHOD_TAG, "LO", [limit(v, "LO") for v in self.method])
            put(ds, CODES_TAG, "SQ", fiona_codes())
        for tag in self.creates:
            if tag not in elems:
                self._create(ds, tag, self.rules[tag], ctx)
        state: RuleState = ctx.rule_state
        for tag in self.changed:  # from the original value, so a change wins over the stamps
            rule = self.rules[tag]
            original = state.originals[tag]
            if rule.action == "remove":
                elems.pop(tag, None)
            elif original is not None:
                vr = _vr(tag, elems[tag]) if tag in elems else dictionary_VR(tag).split(" or ")[0]
                if vr == "SQ":
                    if tag in elems:
                        self._sequence(ds, tag, rule, ctx)
                    continue
                new = self.value(rule, tag, vr, original, ctx)
                if new is not None:
                    put(ds, tag, vr, new)
            elif rule.create:
                self._create(ds, tag, rule, ctx)

    # --- values ---------------------------------------------------------------------------

    def value(
        self, rule: Rule, tag: int, vr: str, old: list[str], ctx: ObjectContext
    ) -> object | None:
        """The new value for the original values ``old`` ([] when missing); None: keep as is."""
        a = rule.action
        s = self.settings
        state: RuleState = ctx.rule_state
        if a == "keep":
            return None
        if a == "empty":
            return empty_value_for_VR(vr)
        if a in ("hashuid", "hashuid+PROJECTNAME"):
            if self.engine.retain_uids:
                return None
            return element_value([limit(self._uid(v, a), vr) for v in old])
        if a == "hash":
            if s.uid_scheme != "fiona":  # keyed: a guessable value must not be recoverable
                text = state.study_uid if tag == STUDY_ID else "\\".join(old)
                return keyed_hash(s.key, text, vr) if text.strip() else ""
            if tag == STUDY_ID:
                return study_id(state.study_uid, s.project)
            text = "\\".join(old)
            return hash_value(text, vr) if text.strip() else ""
        if a in ("incrementdate", "incrementdatetime"):
            return self._dates(a, tag, old, ctx)
        if a == "bodypart":
            return None if (old[0].strip() if old else "") in ALLOWED_BODY_PARTS else "BODYPART"
        if a == "set":
            return fit(rule.value, vr)
        if a == "keyword":
            return fit(self.keyword(rule.value, state), vr)
        if a == "regex":
            return fit(regex_value(rule.value, "\\".join(old)), vr)
        if a == "temporal":
            return {"shift": "MODIFIED", "keep": "UNMODIFIED", "remove": "REMOVED"}[s.date_mode]
        if a == "method":
            return [limit(v, "LO") for v in self.method]
        raise ValueError(f"rule {a!r} does not apply to ({tag >> 16:04X},{tag & 0xFFFF:04X})")

    def keyword(self, source: str, state: RuleState) -> str:
        s = self.settings
        return {
            "project": s.project,
            "participant": state.participant,
            "event": state.event,
            "site_name": s.site_name or "",
            "site_id": s.site_id or "",
        }[source]

    def _uid(self, value: str, action: str) -> str:
        if not value or value.startswith(STANDARD_UID_ROOT):
            return value
        if action == "hashuid" and self.settings.uid_scheme == "fiona":
            return hash_value(value, "UI")
        return self.engine.uid(value)

    def _dates(self, action: str, tag: int, old: list[str], ctx: ObjectContext) -> object | None:
        s = self.settings
        if s.date_mode == "keep":
            return None
        days = ctx.days
        if days is None:  # date_mode remove
            return ""
        if action == "incrementdate":
            new = [increment_date(v, days) for v in old]
            if tag == STUDY_DATE and not any(new):
                return fallback_study_date(ctx.rule_state.study_uid, s.project)
        else:
            new = [shift_dt(v, days, s.times == "clean") for v in old]
        return element_value(new)

    def _sequence(self, ds: Dataset, tag: int, rule: Rule, ctx: ObjectContext) -> None:
        if rule.action == "empty":
            put(ds, tag, "SQ", Sequence())
        elif rule.action == "codes":
            put(ds, tag, "SQ", fiona_codes())
        else:  # keep / process: the items are de-identified like the rest
            self.engine.walk_items(ds[tag].value, ctx, clean=False)

    def _create(self, ds: Dataset, tag: int, rule: Rule, ctx: ObjectContext) -> None:
        if rule.action == "remove":
            return
        vr = dictionary_VR(tag).split(" or ")[0]
        if vr == "SQ":
            put(ds, tag, "SQ", fiona_codes() if rule.action == "codes" else Sequence())
            return
        new = self.value(rule, tag, vr, [], ctx)
        put(ds, tag, vr, empty_value_for_VR(vr) if new is None else new)


def fiona_codes() -> Sequence:
    """DeIdentificationMethodCodeSequence as DICOMAnonymizer writes it."""
    item = Dataset()
    put(item, 0x00080100, "SH", FIONA_CODE_VALUE)
    put(item, 0x00080104, "LO", "Software")
    return Sequence([item])


def _vr(tag: int, elem: DataElement | RawDataElement) -> str:
    vr = vr_of(elem)
    if vr == "UN":
        try:
            vr = dictionary_VR(tag)
        except KeyError:
            pass
    return vr.split(" or ")[0]


def _text_values(ds: Dataset, tag: int) -> list[str]:
    """An element's values as text (PN as ``Family^Given``); [] when empty."""
    elem = elements_of(ds)[tag]
    if _vr(tag, elem) in _ASCII_VRS:
        return ascii_values(elem)
    value = ds[tag].value
    if isinstance(value, bytes | bytearray):
        text = bytes(value).decode("latin-1").strip("\0 ")
        return [text] if text else []
    return [str(v) for v in values(value)]
