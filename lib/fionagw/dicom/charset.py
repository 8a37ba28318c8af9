"""Python encodings of a raw (0008,0005) Specific Character Set value, as pydicom derives them."""

from __future__ import annotations

from functools import lru_cache

from pydicom.charset import convert_encodings
from pydicom.values import convert_string


def python_encodings(value: bytes | None, little: bool = True) -> list[str]:
    """The Python codecs for the raw value (pydicom warns once about an unknown term)."""
    return list(_cached(value or b"", little))  # a copy: pydicom keeps it on the dataset


@lru_cache(maxsize=64)  # a site sees a handful of distinct values
def _cached(value: bytes, little: bool) -> tuple[str, ...]:
    return tuple(convert_encodings(convert_string(value, little)))
