"""Invalid configuration stops a program (run as cron or a shell would) with one line naming the
file, the key and the problem."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from support.site import ROOT, run_bin, write_config


def one_error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != 0
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_check_config_ok(site_config: Path) -> None:
    result = run_bin("fiona", "check-config", config=site_config)
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout and "classification rules" in result.stdout
    assert (site_config.parent / "data" / "site" / "archive").is_dir()


def test_bad_json_names_file_line_and_column(tmp_path: Path) -> None:
    cfg = tmp_path / "config.json"
    cfg.write_text('{\n  "DATADIR": "/tmp/x",\n  "DICOMPORT": 11112,,\n}\n')
    line = one_error_line(run_bin("fiona", "check-config", config=cfg))
    assert str(cfg) in line and "line 3" in line and "invalid JSON" in line


def test_missing_key(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    data = json.loads(cfg.read_text())
    del data["DICOMAETITLE"]
    cfg.write_text(json.dumps(data))
    line = one_error_line(run_bin("storectl", "start", config=cfg))
    assert str(cfg) in line and "DICOMAETITLE" in line and "missing" in line


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("DICOMPORT", "eleven", "expected an integer"),
        ("DICOMPORT", 70000, "1-65535"),
        ("DICOMAETITLE", "A" * 17, "1-16 characters"),
        ("DICOMIP", 12, "expected a string"),
        ("SITES", [], "expected an object"),
    ],
)
def test_wrong_type_or_value(tmp_path: Path, key: str, value: object, words: str) -> None:
    cfg = write_config(tmp_path, **{key: value})
    line = one_error_line(run_bin("fiona", "check-config", config=cfg))
    assert str(cfg) in line and key in line and words in line


def test_unwritable_datadir(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a regular file where DATADIR's parent should be")
    cfg = write_config(tmp_path, DATADIR=str(blocker / "data"))
    line = one_error_line(run_bin("fiona", "check-config", config=cfg))
    assert "DATADIR" in line and "not writable" in line and str(cfg) in line


def test_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        cfg = write_config(tmp_path, DICOMPORT=s.getsockname()[1])
        line = one_error_line(run_bin("storectl", "start", config=cfg))
    assert "DICOMPORT" in line and "not available" in line and str(cfg) in line


def test_config_from_environment(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    result = run_bin("fiona", "check-config", env={"FIONA_CONFIG": str(cfg)})
    assert result.returncode == 0, result.stderr
    assert str(cfg) in result.stdout


def test_programs_run_from_crons_bare_environment(site_config: Path) -> None:
    """cron gives no PATH, no virtualenv: bin/ programs must find their own."""
    import subprocess

    result = subprocess.run(
        ["env", "-i", str(ROOT / "bin" / "fiona"), "--config", str(site_config), "check-config"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


def test_storectl_start_with_datadir_under_a_regular_file_fails_with_one_line(
    tmp_path: Path,
) -> None:
    (tmp_path / "afile").write_text("not a directory")
    config = write_config(tmp_path, DATADIR=str(tmp_path / "afile" / "data"))
    result = run_bin("storectl", "start", config=config, timeout=30)
    line = one_error_line(result)
    assert "DATADIR" in line and "Traceback" not in result.stderr
