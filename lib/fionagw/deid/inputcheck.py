"""Is a DICOM object read from disk whole? A truncated file must fail, not be de-identified.

pydicom reads a file that ends inside an element (typically the pixel data of a copy that was
cut short) without an error: the element just holds fewer bytes than its length says. Written
out again, such an object would go to a research PACS with broken pixels and no warning.
"""

from __future__ import annotations

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset

from fionagw.deid.elements import elements_of
from fionagw.dicom.syntax import syntax_of

UNDEFINED = 0xFFFFFFFF


def truncated_tag(ds: Dataset, file_size: int | None = None) -> int | None:
    """The first top-level element holding fewer bytes than its length, or None.

    With ``file_size``, elements whose reading was deferred (``dcmread(defer_size=...)``, a
    cheap way to look at a file without reading its pixels) must also end inside the file;
    not in a deflated dataset, whose offsets count the inflated bytes (a deferred value past
    the file's size is normal there; a stream cut short fails when it is inflated)."""
    meta = getattr(ds, "file_meta", None)
    if file_size is not None and meta is not None:
        if syntax_of(str(meta.get("TransferSyntaxUID", "")).rstrip("\0 ")).deflated:
            file_size = None
    for tag, elem in elements_of(ds).items():
        if not isinstance(elem, RawDataElement) or elem.length == UNDEFINED:
            continue
        if elem.value is None:
            if file_size is not None and elem.value_tell + elem.length > file_size:
                return int(tag)
        elif len(elem.value) < elem.length:
            return int(tag)
    return None


def incomplete_reason(ds: Dataset, file_size: int | None = None) -> str | None:
    """One line for a report when ``ds`` is not a whole DICOM object (no value in it)."""
    tag = truncated_tag(ds, file_size)
    if tag is not None:
        return f"truncated file: ({tag >> 16:04X},{tag & 0xFFFF:04X}) is cut short"
    for keyword, name in (
        ("SOPInstanceUID", "SOP Instance UID"),
        ("SeriesInstanceUID", "Series Instance UID"),
    ):
        if keyword not in ds:
            return f"not a DICOM object (no {name})"
    return None
