"""The archive file name prefix per SOP Class equals the one dcmtk's storescp uses."""

from __future__ import annotations

import ctypes
import ctypes.util

from pydicom.uid import UID_dictionary

from fionagw.receive.modality import SOP_CLASS_PREFIX, UNKNOWN, modality_prefix


def test_modality_table_equals_installed_dcmtk() -> None:
    """Every SOP Class pydicom knows gets the prefix dcmtk's own function returns."""
    name = ctypes.util.find_library("dcmdata")
    assert name, "libdcmdata (dcmtk) not found"
    lib = ctypes.CDLL(name)
    to_modality = (
        lib._Z24dcmSOPClassUIDToModalityPKcS0_
    )  # dcmSOPClassUIDToModality(const char*, const char*)
    to_modality.restype = ctypes.c_char_p
    to_modality.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    for uid in UID_dictionary:
        theirs = to_modality(uid.encode(), UNKNOWN.encode()).decode()
        assert modality_prefix(uid) == theirs, uid
    assert len(SOP_CLASS_PREFIX) > 150
    assert modality_prefix("1.2.840.10008.5.1.4.1.1.88.11") == "SRt"
    assert modality_prefix("1.3.12.2.1107.5.9.1") == UNKNOWN
