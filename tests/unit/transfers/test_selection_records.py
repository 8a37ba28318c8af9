"""Transfer selection reads each series record once, through the series JSON reader."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from fionagw.config.projects import FEATURES, Project
from fionagw.organize.series_json import write_series
from fionagw.paths import SitePaths
from fionagw.transfers.selection import plan_series

STUDY = "1.2.3"


def test_plans_follow_records_and_a_bad_record_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    paths = SitePaths(tmp_path / "data")
    paths.create()
    archive = tmp_path / "archive"
    archive.mkdir()
    for series, record in (
        ("1.2.3.1", {"Modality": ["MR"], "ClassifyType": ["mr"], "SeriesDescription": "t1"}),
        ("1.2.3.2", {"Modality": ["PR"], "ClassifyType": []}),
        ("1.2.3.3", {"Modality": ["OT"], "ClassifyType": ["CHECKBURNEDINFO"]}),
        ("1.2.3.4", None),  # its JSON is cut off
    ):
        folder = paths.raw_series_dir(STUDY, series)
        folder.mkdir(parents=True)
        (archive / series).write_bytes(b"x")
        (folder / f"{series}.9").symlink_to(archive / series)
        if record is None:
            paths.series_json(STUDY, series).write_text('{"PatientName": "Doe')
        else:
            write_series(paths.series_json(STUDY, series), record, tmpdir=paths.temp)
    project = Project(
        "P",
        ".*",
        features={FEATURES["remove_presentation_states"]},
        deid={"pixels": {"enabled": False}},  # pixel cleaning off: CHECKBURNEDINFO held back
    )
    with caplog.at_level(logging.WARNING):
        plans = plan_series(paths.raw_study_dir(STUDY), project)
    assert [(p.series_uid, p.modality, p.description, p.sends) for p in plans] == [
        ("1.2.3.1", "MR", "t1", True),
        ("1.2.3.2", "PR", "", False),
        ("1.2.3.3", "OT", "", False),
        ("1.2.3.4", "OT", "", True),  # without its record: planned as an unclassified series
    ]
    assert plans[1].skip.startswith("presentation state") and plans[2].hold.startswith("held back")
    assert [len(p.files) for p in plans] == [1, 1, 1, 1]
    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [Path(r.file).name for r in warned] == ["1.2.3.4.json"] and "Doe" not in caplog.text
