"""What happens to a public attribute that PS3.15 Table E.1-1 does not list: safe by default.

The table lists what the standard's authors knew to be identifying; a newer, retired or rare
attribute (SecondaryReviewerName, PatientBirthDateInAlternativeCalendar, an overlay's
description, DocumentTitle, ...) is not in it. Such an attribute is judged by its VR
(``unlisted_action``):

* text (LO, SH, ST, LT, UT, UC): cleaned by the scrubber where free text is retained (Clean
  Descriptors, or inside a cleaned sequence), else removed;
* person names (PN) and URIs (UR): removed;
* UIDs: replaced like every other instance UID (registry UIDs under 1.2.840.10008 stay);
* dates and times: the project's date mode; AE titles: the keyed pseudonym;
* ``REMOVE`` (dates in an alternative calendar, issuers of identifiers) and an unknown public
  tag (not in the data dictionary, no VR to judge by): removed;
* everything else (codes CS, numbers, binary values, sequences, whose items are judged the same
  way) is kept: these describe the acquisition.

``KEEP`` is the reviewed keep-list (``CLEANED``: kept, and scrubbed of the study's
identifiers, Code Meaning): unlisted text attributes that describe the equipment,
the acquisition or a coded concept, never a person, and that analysis needs (dcm2niix, BIDS
converters, the classifier rules at the research PACS). A project extends it with
``keep: ["gggg,eeee", ...]`` in its deid block (project_settings.py); docs/deidentification.md
lists it.
"""

from __future__ import annotations

from types import MappingProxyType

KEEP_DOC = MappingProxyType(
    {
        # equipment (make and model; serial numbers and station names are in the table)
        0x00080070: "Manufacturer",
        0x00081090: "Manufacturer's Model Name",
        0x00181020: "Software Versions",
        0x00181251: "Transmit Coil Name",
        0x00181250: "Receive Coil Name",
        0x00180085: "Imaged Nucleus",
        0x00181016: "Secondary Capture Device Manufacturer",
        0x00181018: "Secondary Capture Device Manufacturer's Model Name",
        0x00181019: "Secondary Capture Device Software Versions",
        # acquisition and reconstruction
        0x00180024: "Sequence Name",
        0x00189005: "Pulse Sequence Name",
        0x00181210: "Convolution Kernel",
        0x00181160: "Filter Type",
        0x00541103: "Reconstruction Method",
        0x00180031: "Radiopharmaceutical",
        0x00181040: "Contrast/Bolus Route",
        0x00281054: "Rescale Type",
        0x00281055: "Window Center & Width Explanation",
        0x00283003: "LUT Explanation",
        0x00283004: "Modality LUT Type",
        0x00409210: "LUT Label",
        0x00185020: "Processing Function",
        0x00541101: "Attenuation Correction Method",
        0x00541104: "Detector Lines of Response Used",
        0x00541105: "Scatter Correction Method",
        # coded concepts (code sequence items: anatomy, SR concept names, units); a URN code
        # value names a concept of a registry, never a person
        0x00080100: "Code Value",
        0x00080102: "Coding Scheme Designator",
        0x00080103: "Coding Scheme Version",
        0x00080104: "Code Meaning",
        0x00080119: "Long Code Value",
        0x00080120: "URN Code Value",
    }
)
KEEP = frozenset(KEEP_DOC)
# kept, but cleaned by the scrubber in every mode: the meaning of a local code is typed by a
# person (a DCMTK report's "Report Text" beside an observer called "Enter text"), so a name
# of the study can stand there; the release check scans it as text
CLEANED = frozenset({0x00080104})
# unlisted attributes removed whatever their VR: dates in another calendar, which neither the
# date mode nor the scrubber can recognise, and the issuers of identifiers
REMOVE = frozenset(
    {
        0x00100033,  # Patient's Birth Date in Alternative Calendar
        0x00100034,  # Patient's Death Date in Alternative Calendar
        0x00100035,  # Patient's Alternative Calendar
        # the issuer of an ID (an order's, an accession's, a patient's: the hospital system
        # that numbers them), inside Order Placer/Filler Identifier and Issuer sequences
        0x00400031,  # Local Namespace Entity ID
        0x00400032,  # Universal Entity ID
    }
)

_TEXT = frozenset({"LO", "SH", "ST", "LT", "UT", "UC"})
_REMOVE = frozenset({"PN", "UR"})


def unlisted_action(vr: str | None, clean: bool) -> str | None:
    """The action for an unlisted, not keep-listed public element of VR ``vr`` (None: no VR
    known); ``clean``: free text is retained here. X remove, C clean, U new UID, None keep;
    dates, times and AE titles answer C (the engine's date mode and AE pseudonym)."""
    if vr is None or vr in _REMOVE:
        return "X"
    if vr in _TEXT:
        return "C" if clean else "X"
    if vr == "UI":
        return "U"
    if vr in ("DA", "DT", "TM", "AE"):
        return "C"
    return None
