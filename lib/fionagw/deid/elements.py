"""Reading and replacing the elements of a Dataset, for the engine and for rule sets.

The per-element loops read pydicom's element dict directly: raw elements stay unconverted
(most of them are only looked at by tag), and the public accessors' keyword and tag
conversion would cost more than the work itself. ``elements_of`` is where the engine and the
rule sets get that dict from pydicom.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydicom import config
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag
from pydicom.valuerep import PersonName

from fionagw.deid.writer import raw_text_element


def elements_of(ds: Dataset) -> dict[BaseTag, DataElement | RawDataElement]:
    """The elements of ``ds`` by tag, as stored (deleting from it removes the element)."""
    return ds._dict


def put(ds: Dataset, tag: int, vr: str, value: object) -> None:
    """Replace an element by a new one (never mutate: a snapshot of the old one stays valid)."""
    key = BaseTag(tag)
    elements_of(ds)[key] = (
        raw_text_element(ds, key, vr, value)  # ASCII text: cheap, written as is
        or DataElement(key, vr, value, validation_mode=config.IGNORE)
    )


def values(value: object) -> list:
    """An element value as a list of values ([] when empty)."""
    if value is None or value == "":
        return []
    if isinstance(value, str | bytes | PersonName) or not isinstance(value, Iterable):
        return [value]
    return list(value)


def ascii_values(elem: DataElement | RawDataElement) -> list[str]:
    """The values of an ASCII-only element (UI, DA, DT, TM, AE), raw or converted."""
    value = elem.value
    if isinstance(value, bytes | bytearray):
        text = bytes(value).decode("ascii", "replace").strip("\0 ")
        return [v.strip("\0 ") for v in text.split("\\")] if text else []
    return [str(v).strip() for v in values(value)]


def element_value(new: list) -> object:
    """What to store for a list of new values: "" for none, the value for one, else the list."""
    if not new:
        return ""
    return new[0] if len(new) == 1 else new
