"""Header reading: the elements of an image up to its pixels, for the series record.

The record built from them is in classify/record.py; its file in organize/series_json.py.
"""

from __future__ import annotations

import logging
import struct
import warnings
from pathlib import Path
from typing import BinaryIO, NamedTuple

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from fionagw.dicom.errors import CodecError, TruncatedError
from fionagw.dicom.raw import read_part10
from fionagw.dicom.tags import PIXEL_TAGS

LOGGER = logging.getLogger(__name__)

REQUIRED = (
    ("StudyInstanceUID", 0x0020000D),
    ("SeriesInstanceUID", 0x0020000E),
    ("SOPInstanceUID", 0x00080018),
)
# A dataset without the Part-10 preamble still starts with a group 0x0002 or 0x0008 tag.
_BARE_START = (b"\x02\x00", b"\x08\x00")


class NotDicomError(Exception):
    """The file is not DICOM or is broken; str() is the reason, which names tags, types and
    offsets but never a value of the file (it goes into logs: ops/log_filter.py trusts it)."""


class Connection(NamedTuple):
    calling: str
    called: str
    ip: str


def read_header(path: Path | str) -> Dataset:
    """Read the header of a DICOM file, stopping before the pixel data.

    Raises NotDicomError for a file that is not DICOM, is truncated/garbled, or lacks one of
    StudyInstanceUID, SeriesInstanceUID, SOPInstanceUID. OSError (missing file, permissions)
    passes through: that is not a property of the file's content.
    """
    path = Path(path)
    with open(path, "rb") as f:
        ds = _fast_read(f, str(path))
        if ds is None:
            ds = _pydicom_read(f)
    for keyword, tag in REQUIRED:
        try:
            elem = ds.get_item(tag)
            value = elem.value if elem is not None else None
        except Exception as exc:
            # the exception's text may quote the value: its type is the reason
            raise NotDicomError(f"broken: cannot read {keyword} ({type(exc).__name__})") from None
        if isinstance(value, bytes):
            value = value.strip(b"\0 ")
        if not value or not str(value).strip():
            raise NotDicomError(f"broken: missing {keyword}")
    return ds


def _pydicom_read(f: BinaryIO) -> Dataset:
    f.seek(0)
    # pydicom logs its complaints about odd files too; the warnings would only duplicate them
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return _pydicom_read_file(f)


def _pydicom_read_file(f: BinaryIO) -> Dataset:
    try:
        try:
            return pydicom.dcmread(f, stop_before_pixels=True)
        except InvalidDicomError:
            f.seek(0)
            if f.read(2) not in _BARE_START:
                raise NotDicomError("not DICOM: no 'DICM' preamble and no dataset start") from None
            f.seek(0)
            return pydicom.dcmread(f, stop_before_pixels=True, force=True)
    except (NotDicomError, OSError):
        raise
    except (
        EOFError,
        struct.error,
        ValueError,
        KeyError,
        TypeError,
        NotImplementedError,
        AttributeError,
        IndexError,
        OverflowError,
        UnicodeError,
    ) as exc:
        # pydicom's messages quote the bytes they choke on: the type and the offset only
        raise NotDicomError(
            f"unreadable DICOM: {type(exc).__name__} near byte {_offset(f)}"
        ) from None


def _offset(f: BinaryIO) -> str:
    try:
        return str(f.tell())
    except (OSError, ValueError):
        return "?"


# --- fast path -------------------------------------------------------------------------
# pydicom's reader costs ~1 ms per MR header. The codec reads the common case (a Part-10
# file, not deflated) into the same raw elements pydicom would keep (values stay undecoded
# until used; sequences too). Anything unusual returns None and pydicom reads it.

_CHUNK = 1 << 16  # most headers end before this; the rest of the file is read if not


def _fast_read(f: BinaryIO, name: str) -> Dataset | None:
    data = f.read(_CHUNK)
    complete = len(data) < _CHUNK
    while True:
        try:
            return read_part10(data, name, lazy_sequences=True, stop=PIXEL_TAGS)
        except TruncatedError:
            if complete:
                return None  # a truncated file: pydicom decides what it holds
            data += f.read()
            complete = True
        except CodecError:
            return None
