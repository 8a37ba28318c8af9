"""populateIncoming's scan of raw/: settled records only, a bad record skipped with one line."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import pytest

from fionagw.organize.series_json import write_series
from fionagw.paths import SitePaths
from fionagw.routing.populate import settled_series


def test_settled_series_waits_and_skips_bad_records(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    paths = SitePaths(tmp_path / "data")
    paths.create()
    old = time.time() - 120

    def put(study: str, series: str, content: dict | str, mtime: float = old) -> Path:
        path = paths.series_json(study, series)
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, dict):
            write_series(path, content, tmpdir=paths.temp)
        else:
            path.write_text(content)
        os.utime(path, (mtime, mtime))
        return path

    put("1.1", "1.1.2", {"SeriesInstanceUID": "1.1.2", "NumFiles": "3"})
    put("1.1", "1.1.1", {"SeriesInstanceUID": "1.1.1", "NumFiles": "2"})
    put("1.1", "1.1.3", {"SeriesInstanceUID": "1.1.3"}, mtime=time.time())  # still growing
    bad = put("1.2", "1.2.1", '{"PatientName": "Doe^J')
    (paths.raw / "1.3").symlink_to(paths.raw / "1.1")  # a link is no study of its own
    with caplog.at_level(logging.WARNING):
        found = settled_series(paths, 60.0)
    assert {uid: [r["SeriesInstanceUID"] for r in rs] for uid, rs in found.items()} == {
        "1.1": ["1.1.1", "1.1.2"]
    }
    skipped = [r for r in caplog.records if r.getMessage() == "series JSON skipped"]
    assert [r.file for r in skipped] == [str(bad)] and "Doe" not in caplog.text
    assert json.loads(paths.series_json("1.1", "1.1.1").read_text())["NumFiles"] == "2"
