"""organize/series_json: the read policy, the atomic write, the study listing, the value readers."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from fionagw.organize import series_json
from fionagw.organize.series_json import SeriesJSONError, read_series, write_series
from fionagw.paths import SitePaths

STUDY = "1.2.826.0.1.3680043.8.498.1"
PATIENT = "Doe^Jane"  # a value of the file: it must never reach an error or a log line


@pytest.fixture
def paths(tmp_path: Path) -> SitePaths:
    p = SitePaths(tmp_path / "data")
    p.create()
    return p


def record(series_uid: str, number: str = "1", **more: object) -> dict:
    return {
        "SeriesInstanceUID": series_uid,
        "SeriesNumber": number,
        "NumFiles": "12",
        "ClassifyType": ["mr", "T1"],
        "Modality": ["MR"],
        "PatientName": PATIENT,
        "IncomingConnection": {
            "AETitleCaller": "SCANNER",
            "AETitleCalled": "FIONA",
            "CallerIP": "10.0.0.7",
        },
        **more,
    }


def put(paths: SitePaths, series_uid: str, content: str | bytes) -> Path:
    path = paths.series_json(STUDY, series_uid)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)
    return path


# -- read policy ------------------------------------------------------------------------------


def test_round_trip_keeps_fiona_types(paths: SitePaths) -> None:
    path = paths.series_json(STUDY, "1.2.3.4")
    path.parent.mkdir(parents=True)
    write_series(path, record("1.2.3.4"), tmpdir=paths.temp)
    back = read_series(path)
    assert back == record("1.2.3.4")
    assert back["NumFiles"] == "12" and isinstance(back["ClassifyType"], list)
    # FIONA's layout: indent 2, sorted keys
    assert path.read_text() == json.dumps(record("1.2.3.4"), indent=2, sort_keys=True)


def test_missing_file_is_an_error_marked_missing(paths: SitePaths) -> None:
    path = paths.series_json(STUDY, "1.2.3.4")
    with pytest.raises(SeriesJSONError) as caught:
        read_series(path)
    assert caught.value.missing and caught.value.path == path
    assert str(caught.value) == f"{path}: no such file"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        # cut off mid-write by a tool that does not write atomically
        ('{\n  "NumFiles": "12",\n', "not valid JSON (line 3, column 1)"),
        ("", "not valid JSON (line 1, column 1)"),
        (f'["{PATIENT}"]', "not a JSON object (a JSON list)"),
        ('"12"', "not a JSON object (a JSON str)"),
        ("null", "not a JSON object (a JSON NoneType)"),
        (b'{"PatientName": "\xff' + PATIENT.encode() + b'"}', "not UTF-8 text"),
    ],
    ids=["truncated", "empty", "list", "string", "null", "not-utf8"],
)
def test_unusable_content_is_one_error_without_values(
    paths: SitePaths, content: str | bytes, reason: str
) -> None:
    path = put(paths, "1.2.3.4", content)
    with pytest.raises(SeriesJSONError) as caught:
        read_series(path)
    assert caught.value.reason == reason and not caught.value.missing
    assert PATIENT not in str(caught.value) and "Doe" not in str(caught.value)


def test_unreadable_file_is_the_same_error(paths: SitePaths) -> None:
    path = paths.series_json(STUDY, "1.2.3.4")
    path.mkdir(parents=True)  # a folder where the file should be: reading it fails
    with pytest.raises(SeriesJSONError) as caught:
        read_series(path)
    assert caught.value.reason == "cannot read: Is a directory" and not caught.value.missing


# -- atomic write ----------------------------------------------------------------------------


def test_write_replaces_whole_and_leaves_no_temp_file(paths: SitePaths) -> None:
    path = paths.series_json(STUDY, "1.2.3.4")
    path.parent.mkdir(parents=True)
    write_series(path, record("1.2.3.4"), tmpdir=paths.temp)
    inode = path.stat().st_ino
    write_series(path, record("1.2.3.4", NumFiles="13"), tmpdir=paths.temp)
    assert read_series(path)["NumFiles"] == "13"
    assert path.stat().st_ino != inode  # a new file renamed over the old one, never rewritten
    assert os.listdir(path.parent) == [path.name] and os.listdir(paths.temp) == []


def test_failed_write_keeps_the_old_record(paths: SitePaths) -> None:
    path = paths.series_json(STUDY, "1.2.3.4")
    path.parent.mkdir(parents=True)
    write_series(path, record("1.2.3.4"), tmpdir=paths.temp)
    with pytest.raises(ValueError):  # a circular record cannot be encoded
        bad = record("1.2.3.4")
        bad["self"] = bad
        write_series(path, bad, tmpdir=paths.temp)
    assert read_series(path) == record("1.2.3.4") and os.listdir(paths.temp) == []


# -- listing a study --------------------------------------------------------------------------


def test_study_series_skips_bad_records_with_one_line_each(
    paths: SitePaths, caplog: pytest.LogCaptureFixture
) -> None:
    put(paths, "1.2.3.9", json.dumps(record("1.2.3.9", "9")))
    put(paths, "1.2.3.10", json.dumps(record("1.2.3.10", "10"))[:50])
    put(paths, "1.2.3.2", f'["{PATIENT}"]')
    put(paths, "1.2.3.1", json.dumps(record("1.2.3.1", "1")))
    paths.raw_series_dir(STUDY, "1.2.3.1").mkdir()  # the folder of links is no record
    (paths.raw_study_dir(STUDY) / ".tmp-123.json").write_text("{}")  # nor a dot file
    with caplog.at_level(logging.WARNING, logger="fionagw.organize.series_json"):
        found = series_json.study_series(paths, STUDY)
    assert [p.name for p, _ in found] == ["1.2.3.1.json", "1.2.3.9.json"]
    assert [r["SeriesNumber"] for _, r in found] == ["1", "9"]
    skipped = [r for r in caplog.records if r.getMessage() == "series JSON skipped"]
    assert sorted(Path(r.file).name for r in skipped) == ["1.2.3.10.json", "1.2.3.2.json"]
    assert PATIENT not in caplog.text


def test_study_without_folder_has_no_series(paths: SitePaths) -> None:
    assert series_json.study_series(paths, STUDY) == []
    assert series_json.series_files(paths.raw_study_dir(STUDY)) == []


def test_raw_study_dirs_lists_folders_only(paths: SitePaths, tmp_path: Path) -> None:
    (paths.raw / "1.2.2").mkdir()
    (paths.raw / "1.2.1").mkdir()
    (paths.raw / "stray.txt").write_text("x")
    (paths.raw / "1.2.3").symlink_to(tmp_path)
    assert series_json.raw_study_dirs(paths) == [paths.raw / "1.2.1", paths.raw / "1.2.2"]


# -- values -----------------------------------------------------------------------------------


def test_num_files_is_stored_as_text_and_read_as_a_number() -> None:
    assert series_json.num_files({"NumFiles": "12"}) == 12
    assert series_json.num_files({"NumFiles": " 7 "}) == 7
    assert series_json.num_files({"NumFiles": 5}) == 5  # an int from another writer
    assert series_json.num_files({"NumFiles": "many"}) == 0
    assert series_json.num_files({}) == 0


def test_value_readers() -> None:
    r = record("1.2.3.4")
    assert series_json.classify_types(r) == ["mr", "T1"]
    assert series_json.classify_types({"ClassifyType": "mr"}) == ["mr"]
    assert series_json.classify_types({}) == []
    assert series_json.modalities(r) == ["MR"] and series_json.modalities({"Modality": "CT"}) == [
        "CT"
    ]
    assert series_json.incoming_connection(r) == ("SCANNER", "FIONA", "10.0.0.7")
    assert series_json.incoming_connection({"IncomingConnection": "x"}) == ("", "", "")
    assert series_json.text_of(r, "SeriesNumber") == "1"
    assert series_json.text_of({"ImageType": ["ORIGINAL", "PRIMARY"]}, "ImageType") == (
        "ORIGINAL\\PRIMARY"
    )
    assert series_json.text_of(r, "Absent") == ""
