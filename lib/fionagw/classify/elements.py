"""Element values for the classifier, converted by pydicom once per distinct raw value.

Classifying an image reads a few dozen header values (the rules' tags, the series record's
fields), and converting each raw element through pydicom was the largest cost per image.
Most of these values are the same bytes in every image of a series (ImageType, the
sequence names, the descriptions), so the converted value is kept, keyed by everything
the conversion depends on: tag, explicit VR, raw bytes, byte order and character set.
Elements whose conversion depends on more (implicit or UN VR: the dictionary and private
creators decide; sequences) are converted every time. The values are shared between
images: callers only read them.
"""

from __future__ import annotations

from typing import Any

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset

MAX_VALUE_BYTES = 256  # longer values (texts, CSA blobs) are rarely repeated: not kept
MAX_ENTRIES = 4096  # the cache is emptied when full (a new series refills it at once)
_UNCACHED_VRS = frozenset(("SQ", "UN"))
_cache: dict[tuple, Any] = {}
_ABSENT = object()


def element_value(ds: Dataset, tag: int) -> Any:
    """The value of element ``tag`` of ``ds``; KeyError when absent. A malformed element
    raises whatever pydicom raises when converting it."""
    raw = ds._dict.get(tag)
    if raw is None:
        raise KeyError(tag)
    if type(raw) is RawDataElement:
        value, vr = raw.value, raw.VR
        encoding = ds._read_charset
        if (
            vr is not None
            and vr not in _UNCACHED_VRS
            and type(value) is bytes
            and len(value) <= MAX_VALUE_BYTES
            and encoding
        ):
            key = (
                tag,
                vr,
                value,
                raw.is_little_endian,
                encoding if isinstance(encoding, str) else tuple(encoding),
            )
            converted = _cache.get(key, _ABSENT)
            if converted is _ABSENT:
                converted = ds[tag].value
                if len(_cache) >= MAX_ENTRIES:
                    _cache.clear()
                _cache[key] = converted
            return converted
    return ds[tag].value
