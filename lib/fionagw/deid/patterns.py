"""Identifier patterns: values that identify a person wherever they stand, and the forms in
which a known date is written.

* ``PATTERNS``: named national identifier formats, found in any text without knowing the
  value. ``no_fodselsnummer`` is the Norwegian fodselsnummer (and D-/H-number): 11 digits,
  DDMMYY + individual number + two mod-11 check digits, so a random 11-digit run (a
  timestamp, a count) matches only when both check digits and the date agree.
  ``DEFAULT_PATTERNS`` are the ones the release check and the scrubber use unless told
  otherwise (``Identifiers(patterns=...)``); a new format is one more ``IdPattern``.
* ``date_forms(yyyymmdd)``: a date as people write it in free text: ISO 1979-02-28 (also
  with / and .), 19790228, local 28.02.1979 / 28/02/1979 / 28-02-1979 (also without leading
  zeros, and 28.02.79 / 28/02/79), US 02/28/1979, and with the month's name (28 Feb 1979,
  28. februar 1979, February 28, 1979), English and Norwegian.
* ``DATE_LIKE``: any date-like string in text (the scrubber removes them from retained text:
  an examination date in a description dates the patient even when shifted elsewhere).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

_MONTHS = (
    ("january", "januar", "jan"),
    ("february", "februar", "feb", "febr"),
    ("march", "mars", "mar"),
    ("april", "apr"),
    ("may", "mai"),
    ("june", "juni", "jun"),
    ("july", "juli", "jul"),
    ("august", "aug"),
    ("september", "sep", "sept"),
    ("october", "oktober", "oct", "okt"),
    ("november", "nov"),
    ("december", "desember", "dec", "des"),
)
_MONTH_WORD = "|".join(sorted({w for names in _MONTHS for w in names}, key=len, reverse=True))


@dataclass(frozen=True)
class IdPattern:
    """A national identifier format: a regex over case-folded text, and a check of a match."""

    name: str
    kind: str  # the kind a hit is reported as
    regex: re.Pattern[str]
    valid: Callable[[str], bool]
    # where a match can start, in the buffer's shape (digits as 0, space and dot kept, all
    # else x): found with bytes.find at C speed before the regex runs (None: regex only)
    shapes: tuple[bytes, ...] | None = None

    def find(self, text: str) -> list[tuple[int, int]]:
        """(start, end) of every valid match in ``text``."""
        return [m.span() for m in self.regex.finditer(text) if self.valid(m.group())]

    def find_bytes(self, data: bytes, shape: bytes | None = None) -> list[int]:
        """Start of every valid match in ASCII-compatible ``data`` (the release check's
        buffer), without decoding it; ``shape``: ``shape_of(data)`` if already made."""
        regex = _bytes_regex(self.regex.pattern)
        if self.shapes is None:
            return [m.start() for m in regex.finditer(data) if self.valid(m.group().decode())]
        shape = shape if shape is not None else shape_of(data)
        starts = set()
        for needle in self.shapes:
            pos = shape.find(needle)
            while pos >= 0:
                if not pos or shape[pos - 1] != 0x30:  # the start of a run of digits
                    starts.add(pos)
                pos = shape.find(needle, pos + 1)
        found = []
        for pos in sorted(starts):
            m = regex.match(data, pos)
            if m is not None and self.valid(m.group().decode()):
                found.append(pos)
        return found


_SHAPE = bytes(0x30 if 0x30 <= c <= 0x39 else c if c in b" ." else 0x78 for c in range(256))


def shape_of(data: bytes) -> bytes:
    """``data`` with every digit as 0, spaces and dots kept, every other byte as x."""
    return data.translate(_SHAPE)


@lru_cache(maxsize=16)
def _bytes_regex(pattern: str) -> re.Pattern[bytes]:
    return re.compile(pattern.encode("ascii"))


_W1 = (3, 7, 6, 1, 8, 9, 4, 5, 2)
_W2 = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)


def valid_fodselsnummer(text: str) -> bool:
    """An 11-digit Norwegian fodselsnummer, D-number (day + 40) or H-number (month + 40),
    synthetic test numbers (month + 80) included: a real date and both mod-11 check digits."""
    d = [int(c) for c in text if c.isdigit()]
    if len(d) != 11:
        return False
    day, month = d[0] * 10 + d[1], d[2] * 10 + d[3]
    day -= 40 if day > 40 else 0
    month -= 80 if month > 80 else 40 if month > 40 else 0
    try:
        dt.date(2000, month, day)  # a leap year: 29 February is a date
    except ValueError:
        return False
    k1 = 11 - sum(w * x for w, x in zip(_W1, d, strict=False)) % 11
    k2 = 11 - sum(w * x for w, x in zip(_W2, d, strict=False)) % 11
    return (k1 % 11) == d[9] and k1 != 10 and (k2 % 11) == d[10] and k2 != 10


PATTERNS: dict[str, IdPattern] = {
    "no_fodselsnummer": IdPattern(
        "no_fodselsnummer",
        "national_id",
        # not a component of a dotted UID or version number
        re.compile(r"(?<![0-9.])[0-9]{6}[ ]?[0-9]{5}(?![0-9]|\.[0-9])"),
        valid_fodselsnummer,
        (b"0" * 11, b"0" * 6 + b" " + b"0" * 5),
    ),
}
DEFAULT_PATTERNS: tuple[str, ...] = ("no_fodselsnummer",)


def id_patterns(names: tuple[str, ...]) -> tuple[IdPattern, ...]:
    """The patterns named (ValueError naming an unknown one)."""
    unknown = [n for n in names if n not in PATTERNS]
    if unknown:
        raise ValueError(
            f"unknown identifier pattern {unknown[0]!r} (known: {', '.join(PATTERNS)})"
        )
    return tuple(PATTERNS[n] for n in names)


def parse_date(value: str) -> dt.date | None:
    """A DA value (YYYYMMDD, also YYYY.MM.DD of old ACR-NEMA) as a date, else None."""
    text = value.strip().replace(".", "").replace("-", "")
    if len(text) != 8 or not text.isdigit():
        return None
    try:
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return None


def date_forms(value: str) -> list[str]:
    """The case-folded ways ``value`` (a DA) is written in text; [value] if it is no date."""
    day = parse_date(value)
    if day is None:
        return [value.strip().casefold()] if value.strip() else []
    y, m, d = day.year, day.month, day.day
    yy = f"{y % 100:02d}"
    forms = {f"{y:04d}{m:02d}{d:02d}", f"{y:04d}-{m:02d}-{d:02d}", f"{y:04d}/{m:02d}/{d:02d}"}
    forms |= {f"{y:04d}.{m:02d}.{d:02d}"}
    for dd, mm in ((f"{d:02d}", f"{m:02d}"), (str(d), str(m))):
        for sep in ".", "/", "-":
            forms.add(f"{dd}{sep}{mm}{sep}{y:04d}")
        forms |= {f"{dd}.{mm}.{yy}", f"{dd}/{mm}/{yy}", f"{mm}/{dd}/{y:04d}"}  # US order
    for name in _MONTHS[m - 1]:
        for dd in {str(d), f"{d:02d}"}:
            forms |= {f"{dd} {name} {y}", f"{dd}. {name} {y}", f"{name} {dd}, {y}"}
    return sorted(forms, key=len, reverse=True)


# Any date in text: ISO/compact with a 19xx/20xx year, day-month-year with separators, and
# dates with a month's name. A compact 8-digit run must be a real date to count.
DATE_LIKE = re.compile(
    r"(?<![0-9.])(?:"
    r"(?:19|20)[0-9]{2}[-./](?:0?[1-9]|1[0-2])[-./](?:0?[1-9]|[12][0-9]|3[01])"
    r"|(?:0?[1-9]|[12][0-9]|3[01])[-./](?:0?[1-9]|1[0-2])[-./](?:[0-9]{4}|[0-9]{2})"
    r"|(?:0?[1-9]|1[0-2])/(?:0?[1-9]|[12][0-9]|3[01])/[0-9]{4}"
    r"|(?:19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])"
    rf"|(?:0?[1-9]|[12][0-9]|3[01])\.?[ -]?(?:{_MONTH_WORD})\.?[ -]?(?:[0-9]{{4}}|[0-9]{{2}})"
    rf"|(?:{_MONTH_WORD})\.? (?:0?[1-9]|[12][0-9]|3[01]),? [0-9]{{4}}"
    r")(?![0-9]|\.[0-9])",
    re.IGNORECASE,
)
