"""The PS3.15 Annex E attribute table (Table E.1-1, all rows) and the profile options.

``Profile(options, composite)`` resolves every row to one of the single actions
D (dummy), Z (zero length), X (remove), K (keep), C (clean), U (replace UID) for the
selected options, and answers ``action(tag)`` for any tag (None: not in the table, keep).

Option precedence on a row that several selected options override (the table has such
rows: device identity + dates, patient characteristics + clean descriptors): clean
options first, then the retain options, then the two date options last, so a calibration
date with Retain Device Identity *and* Modified Dates is shifted like every other date.

Composite codes (Table E.1-1a: use the weaker action unless the IOD needs the stronger one).
Without per-IOD attribute types the engine decides by ``composite``:

* ``"valid"`` (default): an attribute that is present stays present, so no IOD is made
  invalid: X/Z -> Z, X/D -> D, X/Z/D -> D, Z/D -> D, X/Z/U* -> U (sequence kept, the UIDs in
  its items replaced, the rest of the items de-identified).
* ``"minimal"``: the weakest action: X/Z, X/D, X/Z/D, X/Z/U* -> X; Z/D -> Z.

Reference sequences (``REFERENCE_SEQUENCES``: Referenced Study, Source Image, Request
Attributes, ...) whose row says X or Z become U: their items are references (UIDs) that are
remapped like every other UID, the rest of each item de-identified by the table, so an object
keeps the links a viewer or pipeline follows (Retain UIDs keeps them as they are).

Wildcard rows: (50xx,xxxx) curve data and (60xx,3000)/(60xx,4000) overlay data/comments
match every even group 5000-50FF / 6000-60FF; the private row (gggg,eeee) with gggg odd is
reported by ``private_action`` (the engine keeps allow-listed private elements instead).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from fionagw.deid.table_ps315 import EDITION, OPTIONS, ROWS

ACTIONS = frozenset("DZXKCU")
BASIC_CODE = ("113100", "Basic Application Confidentiality Profile")
# option -> (DCM code value, code meaning); PS3.16 CID 7050
OPTION_CODES = {
    "clean_pixel_data": ("113101", "Clean Pixel Data Option"),
    "clean_recognizable_visual_features": ("113102", "Clean Recognizable Visual Features Option"),
    "clean_graphics": ("113103", "Clean Graphics Option"),
    "clean_structured_content": ("113104", "Clean Structured Content Option"),
    "clean_descriptors": ("113105", "Clean Descriptors Option"),
    "retain_full_dates": ("113106", "Retain Longitudinal Temporal Information Full Dates Option"),
    "retain_modified_dates": (
        "113107",
        "Retain Longitudinal Temporal Information Modified Dates Option",
    ),
    "retain_patient_characteristics": ("113108", "Retain Patient Characteristics Option"),
    "retain_device_identity": ("113109", "Retain Device Identity Option"),
    "retain_uids": ("113110", "Retain UIDs Option"),
    "retain_safe_private": ("113111", "Retain Safe Private Option"),
    "retain_institution_identity": ("113112", "Retain Institution Identity Option"),
}
# Later entries win when several selected options override one row (see module docstring).
PRECEDENCE = (
    "clean_descriptors",
    "clean_structured_content",
    "clean_graphics",
    "retain_safe_private",
    "retain_uids",
    "retain_patient_characteristics",
    "retain_institution_identity",
    "retain_device_identity",
    "retain_full_dates",
    "retain_modified_dates",
)
assert set(PRECEDENCE) == set(OPTIONS)

_COMPOSITE = {
    "valid": {"X/Z": "Z", "X/D": "D", "X/Z/D": "D", "Z/D": "D", "X/Z/U*": "U"},
    "minimal": {"X/Z": "X", "X/D": "X", "X/Z/D": "X", "Z/D": "Z", "X/Z/U*": "X"},
}
PRIVATE_ROW = "GGGGEEEE"
# The project default (projects.yml without ``options``): what research needs of a study,
# its descriptions and the patient's sex, age, size and weight, cleaned of identifiers.
DEFAULT_OPTIONS = frozenset(
    {"clean_descriptors", "retain_patient_characteristics", "clean_structured_content"}
)
# sequences of references: remapped (U), never emptied or removed (module docstring)
REFERENCE_SEQUENCES = frozenset(
    {
        0x00081110,  # Referenced Study Sequence
        0x00081111,  # Referenced Performed Procedure Step Sequence
        0x00081115,  # Referenced Series Sequence
        0x00081140,  # Referenced Image Sequence
        0x00082112,  # Source Image Sequence
        0x00400275,  # Request Attributes Sequence
        0x0008114A,  # Referenced Instance Sequence
        0x00081199,  # Referenced SOP Sequence
    }
)


@dataclass(frozen=True)
class Row:
    tag: str  # 8 hex digits, X wildcards, or GGGGEEEE
    name: str
    in_std_iod: bool
    basic: str
    options: dict[str, str] = field(default_factory=dict)

    def resolve(self, options: Iterable[str] = (), composite: str = "valid") -> str:
        selected = set(options)
        code = self.basic
        for opt in PRECEDENCE:
            if opt in selected and opt in self.options:
                code = self.options[opt]
        return _COMPOSITE[composite].get(code, code)


TABLE: tuple[Row, ...] = tuple(Row(*r) for r in ROWS)


def validate_options(options: Iterable[str]) -> frozenset[str]:
    opts = frozenset(options)
    unknown = opts - set(OPTION_CODES)
    if unknown:
        raise ValueError(f"unknown de-identification option(s): {', '.join(sorted(unknown))}")
    if {"retain_full_dates", "retain_modified_dates"} <= opts:
        raise ValueError("retain_full_dates and retain_modified_dates exclude each other")
    return opts


class Profile:
    """The table resolved for one option set: ``exact`` maps tag ints to actions."""

    def __init__(self, options: Iterable[str] = (), composite: str = "valid") -> None:
        if composite not in _COMPOSITE:
            raise ValueError(f"composite must be one of {', '.join(_COMPOSITE)}")
        self.options = validate_options(options)
        self.composite = composite
        self.edition = EDITION
        self.exact: dict[int, str] = {}
        self.curve = self.overlay_data = self.overlay_comments = "X"
        self.private_action = "X"
        for row in TABLE:
            action = row.resolve(self.options, composite)
            if row.tag == PRIVATE_ROW:
                self.private_action = action
            elif row.tag == "50XXXXXX":
                self.curve = action
            elif row.tag == "60XX3000":
                self.overlay_data = action
            elif row.tag == "60XX4000":
                self.overlay_comments = action
            else:
                tag = int(row.tag, 16)
                if tag in REFERENCE_SEQUENCES and action in ("X", "Z"):
                    action = "U"
                self.exact[tag] = action

    def action(self, tag: int) -> str | None:
        """The action for a public tag, or None when the table does not list it."""
        action = self.exact.get(tag)
        if action is not None:
            return action
        group = tag >> 16
        if group & 1:
            return self.private_action
        if 0x5000 <= group <= 0x50FF:
            return self.curve
        if 0x6000 <= group <= 0x60FF:
            element = tag & 0xFFFF
            if element == 0x3000:
                return self.overlay_data
            if element == 0x4000:
                return self.overlay_comments
        return None

    def codes(self) -> list[tuple[str, str]]:
        """(code value, meaning) for DeidentificationMethodCodeSequence: basic + options."""
        return [BASIC_CODE] + [
            OPTION_CODES[o] for o in sorted(self.options, key=lambda o: OPTION_CODES[o][0])
        ]
