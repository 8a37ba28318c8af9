"""The free-text scrubber, and the one tokenization it shares with the release check.

An identifying value of a study becomes one or more *needles*: the lower-cased forms it is
looked for in, each with a match rule (``mode``):

* ``WORD``: a whole word: no ASCII letter, digit or underscore right before or after (an
  underscore joins a token, as in protocol names: a patient called OB is not in
  OB_GENERAL). Names (the whole name and each part of 2 or more characters, titles such as
  Dr or Jr aside), institution, address and its parts, device names. Only ASCII letters and
  digits make words, so a Japanese or Chinese name, written without spaces, matches inside
  the text around it.
* ``ID``: also inside a longer token ("PID12345678901", "RP-112234x"), but never inside a
  longer run of digits (a UID, a number): IDs and accession numbers of 5 or more characters.
  Shorter ones are ``WORD``.
* ``DATE``: no digit before or after (a birth date in each of its written forms,
  patterns.date_forms); ``DATE_START``: no digit before (the compact 19790228, also found at
  the start of a DT such as 19790228103000).
* ``PHONE``: the digits of a phone number of 6 or more digits, with any of ``space - . / ( )``
  between them and an optional leading +.

``scrub_text(text, needles_sets)`` replaces every match with ``***``, then every national
identifier of patterns.PATTERNS and every date-like string (patterns.DATE_LIKE): dates in
retained text go, shifted or not. It works on decoded text: the engine hands it the value
pydicom decoded with the element's character set (ISO 2022 with its escapes, GB18030,
UTF-8, or Latin-1 when none is declared), and the release check decodes the output's raw
values with the same character sets before it looks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from fionagw.deid.patterns import DATE_LIKE, IdPattern, date_forms

REPLACEMENT = "***"
WORD, ID, DATE, DATE_START, PHONE = "word", "id", "date", "date_start", "phone"

NAME_KINDS = frozenset({"patient_name", "person_name"})
ID_KINDS = frozenset({"patient_id", "other_patient_id", "accession_number", "study_id", "visit_id"})
DATE_KINDS = frozenset({"birth_date"})
PHONE_KINDS = frozenset({"phone"})
ADDRESS_KINDS = frozenset({"address", "institution_address"})

MIN_LEN = 3  # values shorter than this are not looked for (name parts: MIN_NAME_PART)
MIN_NAME_PART = 2  # "Ek" is a name; single letters (initials) are not looked for
MIN_ID_INNER = 5
MIN_PHONE_DIGITS = 6
# titles and markers that are no part of anybody's name (and the engine's own dummies)
NAME_STOP = frozenset(
    {"MR", "MRS", "MS", "DR", "PROF", "PHD", "MD", "JR", "SR", "II", "III", "IV"}
    | {"ANONYMIZED", "ANONYMOUS", "REMOVED", "UNKNOWN"}
)
# values the engine writes itself (profile dummies): never identifying when found again
DUMMIES = frozenset({"anonymized", "anonymous", "19000101", "000y", "urn:anonymized", "0"})
_ADDRESS_SPLIT = re.compile(r"[,;\r\n^\\]+")
_NAME_SPLIT = re.compile(r"[\^=\s,.]+")
_PHONE_SEPARATORS = r"[\s\-./()]*"


def needles(kind: str, value: str) -> list[str]:
    """The lower-cased forms a value of ``kind`` is looked for as (their mode: mode_of)."""
    value = value.strip().strip("\0").strip()
    low = value.lower()
    if not value or low in DUMMIES:
        return []
    if kind in NAME_KINDS:
        forms = {low, low.replace("^", " ").strip()}
        for group in value.split("="):  # alphabetic, ideographic, phonetic
            parts = group.split("^")
            forms.add(" ".join(p for p in parts if p).strip().lower())
            for part in parts[:3]:  # family, given, middle; prefix and suffix are titles
                forms |= {p.lower() for p in _NAME_SPLIT.split(part)}
        return sorted(f for f in forms if len(f) >= MIN_NAME_PART and f.upper() not in NAME_STOP)
    if kind in DATE_KINDS:
        return date_forms(value)
    if kind in PHONE_KINDS:
        out = [low] if len(low) >= MIN_LEN else []
        for number in re.split(r"[\\,;/]", value):
            digits = re.sub(r"[^0-9]", "", number)
            if len(digits) >= MIN_PHONE_DIGITS:
                out.append(digits)
            if number.strip().startswith(("+", "00")):  # also without the country code
                lead = 2 if number.strip().startswith("00") else 0
                for cc in (1, 2, 3):
                    if len(digits) - lead - cc >= 8:
                        out.append(digits[lead + cc :])
        return out
    if len(low) < MIN_LEN:
        return []
    if kind in ADDRESS_KINDS:
        parts = {p.strip() for p in _ADDRESS_SPLIT.split(low)}
        return [low] + sorted(p for p in parts if len(p) >= 5 and p != low)
    return [low]


def mode_of(kind: str, form: str) -> str:
    """How a needle of ``kind`` is matched (see the module docstring)."""
    if kind in DATE_KINDS:
        return DATE_START if form.isdigit() else DATE
    if kind in PHONE_KINDS and form.isdigit():
        return PHONE
    if kind in ID_KINDS and len(form) >= MIN_ID_INNER:
        return ID
    return WORD


def needle_regex(items: Iterable[tuple[str, str]]) -> re.Pattern[str] | None:
    """One case-insensitive regex for (form, mode) pairs, with the boundaries of each mode."""
    by_mode: dict[str, set[str]] = {}
    for form, mode in items:
        by_mode.setdefault(mode, set()).add(form)
    alts = []

    def alt(forms: set[str]) -> str:
        return "|".join(map(re.escape, sorted(forms, key=len, reverse=True)))

    if WORD in by_mode:
        alts.append(rf"(?<![0-9a-zA-Z_])(?:{alt(by_mode[WORD])})(?![0-9a-zA-Z_])")
    if ID in by_mode:
        for form in sorted(by_mode[ID], key=len, reverse=True):
            left = "(?<![0-9])" if form[0].isdigit() else ""
            right = "(?![0-9])" if form[-1].isdigit() else ""
            alts.append(f"{left}{re.escape(form)}{right}")
    if DATE in by_mode:
        alts.append(rf"(?<![0-9])(?:{alt(by_mode[DATE])})(?![0-9])")
    if DATE_START in by_mode:
        alts.append(rf"(?<![0-9])(?:{alt(by_mode[DATE_START])})")
    for digits in sorted(by_mode.get(PHONE, ()), key=len, reverse=True):
        alts.append(r"(?<![0-9])\+?" + _PHONE_SEPARATORS.join(digits) + r"(?![0-9])")
    return re.compile("|".join(alts), re.IGNORECASE) if alts else None


@lru_cache(maxsize=256)
def _cached_regex(items: frozenset[tuple[str, str]]) -> re.Pattern[str] | None:
    return needle_regex(items)


def regex_for(items: frozenset[tuple[str, str]]) -> re.Pattern[str] | None:
    """needle_regex, cached: a study's needles come back with each of its files."""
    return _cached_regex(items)


def scrub_text(
    text: str,
    regexes: Iterable[re.Pattern[str] | None],
    patterns: Iterable[IdPattern] = (),
    *,
    dates: bool = True,
) -> str:
    """``text`` with every needle match, national identifier and (``dates``) date-like
    string replaced by ``***``."""
    for regex in regexes:
        if regex is not None:
            text = regex.sub(REPLACEMENT, text)
    for pattern in patterns:
        spans = pattern.find(text)
        for start, end in reversed(spans):
            text = text[:start] + REPLACEMENT + text[end:]
    if dates:
        text = DATE_LIKE.sub(REPLACEMENT, text)
    return text
