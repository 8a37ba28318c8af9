"""Fixtures for the whole suite, and the layer markers: a test under tests/integration/ is marked
``integration`` and one under tests/browser/ ``browser`` (``slow`` is set on the tests).

Helpers live in the support package (``from support.site import write_config``); the fixture
plugins below make the Orthanc, web and REDCap double fixtures available to every test.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.register_assert_rewrite("support")  # helper asserts explain their failures too

pytest_plugins = ["support.orthanc_peer", "support.web", "support.redcap_double.fixtures"]

TESTS = Path(__file__).resolve().parent
LAYERS = ("integration", "browser")  # folders whose name is their tests' marker

# dcmtk enables TCP_NODELAY only when asked; without it loopback runs ~70x slower.
os.environ.setdefault("TCP_NODELAY", "1")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(item.path).resolve()
        if path.is_relative_to(TESTS) and path.relative_to(TESTS).parts[0] in LAYERS:
            item.add_marker(path.relative_to(TESTS).parts[0])


@pytest.fixture
def site_config(tmp_path: Path) -> Path:
    """Path of a fresh config.json whose DATADIR is inside tmp_path."""
    from support.site import write_config  # after register_assert_rewrite above

    return write_config(tmp_path)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--soak-minutes",
        type=float,
        default=0,
        help="tests/soak: repeat soak rounds (new studies, the same faults) for this many minutes",
    )
