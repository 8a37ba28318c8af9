"""safe_uid: UIDs from the network become file names that stay inside the archive."""

from __future__ import annotations

import pytest

from fionagw.paths import MAX_UID_COMPONENT, safe_uid


def test_safe_uid() -> None:
    assert safe_uid("1.2.840.10008.1") == "1.2.840.10008.1"
    assert safe_uid("1.2.3\0") == "1.2.3"
    assert safe_uid("../x/y") == ".._x_y"
    assert "/" not in safe_uid("a/" * 200)
    assert len(safe_uid("1" * 500)) == MAX_UID_COMPONENT
    for bad in ("", "..", ".", " \0"):
        with pytest.raises(ValueError):
            safe_uid(bad)
