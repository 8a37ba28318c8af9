"""Tag changes: DICOMAnonymizer's ``--tagchange`` and ``--regtagchange`` as project rules.

``"gggg,eeee=VALUE"`` replaces the rule for one public tag (or adds one). VALUE is, as upstream:

* an action: ``remove``, ``empty``, ``keep``, ``hash``, ``hashuid``, ``hashuid+PROJECTNAME``,
  ``incrementdate``, ``incrementdatetime`` (see fiona_rules.py for what each does);
* a keyword: ``PROJECTNAME``/``ProjectName``, ``PATIENTID``/``PatientID`` (the participant ID),
  ``EVENTNAME``/``EventName``, ``SITENAME``, ``SITEID`` (ours): that value;
* ``BODYPART`` on BodyPartExamined (0018,0015): the body-part allow-list;
* anything else: written literally (truncated to the VR's maximum length; pydicom pads an odd
  length with a space when it writes, as upstream does). FIONA itself passes
  ``0008,0080=PROJECTNAME`` and, with an event, ``EventName:<event>`` for (0040,2001),
  (0040,1002) and (0008,0090).

``"gggg,eeee=REGEX"`` (a regex tag change; FIONA's import rule 1) keeps the capture groups of
the first match in the tag's original value, each followed by one space; no match, or a pattern
without groups, gives ``FIONA: no match on regular expression``. Upstream uses C++ ECMAScript
``std::regex_search``; this uses Python's ``re.search``, which agrees on ordinary patterns.

Where a change applies and when it creates a missing element: fiona_rules.py. Changes that
would undo the pseudonym or cannot take effect are refused here with a one-line reason:
PatientName/PatientID (they always carry the participant ID), private tags (private elements
follow the private allow-list), file meta and command groups, UIDs set to a value, and values
on sequences.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydicom.datadict import dictionary_VR

NO_MATCH = "FIONA: no match on regular expression"
# DICOMAnonymizer's action words (rule table and tag-change values)
ACTIONS = frozenset(
    {
        "remove",
        "empty",
        "keep",
        "hash",
        "hashuid",
        "hashuid+PROJECTNAME",
        "incrementdate",
        "incrementdatetime",
    }
)
# value keyword -> source of the value
KEYWORDS = {
    "PROJECTNAME": "project",
    "ProjectName": "project",
    "PATIENTID": "participant",
    "PatientID": "participant",
    "EVENTNAME": "event",
    "EventName": "event",
    "SITENAME": "site_name",
    "SITEID": "site_id",
}
BODY_PART_TAG = 0x00180015
PATIENT_TAGS = frozenset({0x00100010, 0x00100020})
_SPEC = re.compile(r"^\s*([0-9A-Fa-f]{4}),([0-9A-Fa-f]{4})\s*=(.*)$", re.DOTALL)


@dataclass(frozen=True)
class Rule:
    """What happens to one tag.

    action: one of ACTIONS, or ``set`` (value = literal text), ``keyword`` (value = a source of
    KEYWORDS), ``regex`` (value = pattern), ``bodypart``, ``temporal`` (MODIFIED per date
    mode), ``method`` / ``codes`` (the de-identification markers), ``private`` (a private rule of
    the upstream table: the element goes, as upstream removes its own 0013 block).
    create: also written when the element is missing (upstream ``createIfMissing``).
    """

    action: str
    value: str = ""
    create: bool = False


@dataclass(frozen=True)
class TagChange:
    tag: int
    value: str
    regex: bool = False


def value_rule(tag: int, value: str, *, create: bool) -> Rule:
    """The rule a tag-change VALUE stands for (the vocabulary of the module docstring)."""
    if value in ACTIONS:
        return Rule(value, "", create)
    if value in KEYWORDS:
        return Rule("keyword", KEYWORDS[value], create)
    if value == "BODYPART" and tag == BODY_PART_TAG:
        return Rule("bodypart", "", create)
    return Rule("set", value, create)


def parse_tag_change(text: str, *, regex: bool = False) -> TagChange:
    """Parse and check one ``"gggg,eeee=VALUE"``; ValueError with a one-line reason."""
    if not isinstance(text, str):
        raise ValueError(f'expected a string "gggg,eeee=VALUE", got {text!r}')
    m = _SPEC.match(text)
    if not m:
        raise ValueError(f'expected "gggg,eeee=VALUE" (hexadecimal group,element), got {text!r}')
    tag = int(m.group(1) + m.group(2), 16)
    value = m.group(3)
    where = f"({m.group(1)},{m.group(2)})"
    group = tag >> 16
    if group & 1:
        raise ValueError(
            f"{where} is private: private elements follow the private allow-list "
            "(private_keep), they cannot be changed"
        )
    if group in (0x0000, 0x0002, 0xFFFE):
        raise ValueError(f"{where} is a command, file-meta or item tag, not a dataset element")
    if tag in PATIENT_TAGS:
        raise ValueError(f"{where}: PatientName and PatientID always carry the participant ID")
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        raise ValueError(f"{where} is not a DICOM tag of the data dictionary") from None
    if regex:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"{where}: not a valid regular expression: {exc}") from None
        if vr in ("SQ", "UI"):
            raise ValueError(f"{where}: a regular expression cannot set a {vr} element")
        return TagChange(tag, value, True)
    action = value_rule(tag, value, create=False).action
    if vr == "SQ" and action not in ("remove", "empty", "keep"):
        raise ValueError(f"{where} is a sequence: only remove, empty or keep apply")
    if vr == "UI" and action not in ("remove", "empty", "keep", "hashuid", "hashuid+PROJECTNAME"):
        raise ValueError(
            f"{where} is a UID: only remove, empty, keep, hashuid or hashuid+PROJECTNAME apply"
        )
    return TagChange(tag, value, False)


def regex_value(pattern: str, text: str) -> str:
    """DICOMAnonymizer's regtagchange result for the original value ``text``."""
    m = re.search(pattern, text)
    if m is None or not m.re.groups:
        return NO_MATCH
    return "".join((group or "") + " " for group in m.groups())
