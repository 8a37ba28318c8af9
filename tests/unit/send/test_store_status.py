"""C-STORE response status codes and what the dicom destination makes of them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fionagw.send.dicom import store_status

if TYPE_CHECKING:
    pass


def test_store_status_meanings():
    assert store_status(0x0000) == ("success", "")
    for code in (0xB000, 0xB006, 0xB007):
        outcome, text = store_status(code)
        assert outcome == "warning" and text.startswith(f"stored with warning 0x{code:04X} (")
    assert store_status(0xA701, "disk\nfull") == (
        "failure",
        "refused with status 0xA701 (Refused: Out of Resources): disk full",
    )
    assert store_status(0xC123)[0] == "failure" and store_status(0x0001)[0] == "failure"
    assert (
        store_status(0x0122)[1] == "refused with status 0x0122 (Refused: SOP Class Not Supported)"
    )
