"""Invalid configuration stops a program (run as cron or a shell would) with one line naming the
file, the key and the problem."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from support.site import ROOT, read_log, run_bin, write_config

pytestmark = pytest.mark.slow  # each test runs bin/ programs (about 1 s each)


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


def _config_error(result) -> str:  # type: ignore[no-untyped-def]
    """The ``file: key: problem`` of a program's one-line config error."""
    return one_error_line(result).split("config error: ", 1)[1]


BROKEN_PROJECTS = {
    "invalid YAML": ("projects:\n  ALPHA: [\n", "", "invalid YAML: line 3"),
    "bad regex": (
        "projects:\n  ALPHA:\n    participant_id: '^ALPHA[0-9'\n",
        "projects.ALPHA.participant_id",
        "not a valid regular expression",
    ),
    "events not a list": (
        "projects:\n  ALPHA:\n    participant_id: '^A'\n    events: baseline\n",
        "projects.ALPHA.events",
        "expected a list",
    ),
    "unknown destination": (
        "projects:\n  ALPHA:\n    participant_id: '^A'\n    destination: nowhere\n",
        "projects.ALPHA.destination",
        "unknown destination 'nowhere'",
    ),
}


@pytest.mark.parametrize(
    ("case", "settings", "file", "words"),
    [
        ("web port", {"web": {"port": "8080x"}}, "config.json", "web.port: expected an integer"),
        (
            "session minutes",
            {"web": {"session_minutes": "sixty"}},
            "config.json",
            'web.session_minutes: expected an integer, got "sixty"',
        ),
        *(
            (name, {"projects": text}, "projects.yml", f"{key}: {words}" if key else words)
            for name, (text, key, words) in BROKEN_PROJECTS.items()
        ),
    ],
    ids=lambda v: v if isinstance(v, str) and " " in v else None,
)
def test_check_config_refuses_what_the_programs_refuse(
    tmp_path: Path, case: str, settings: dict, file: str, words: str
) -> None:
    """check-config, `fiona web` and `fiona run` give the very same one-line error."""
    projects = tmp_path / "projects.yml"
    projects.write_text(settings.pop("projects", "projects: {}\n"))
    config = write_config(tmp_path, tracker={"projects_file": str(projects)}, **settings)
    check = _config_error(run_bin("fiona", "check-config", config=config))
    assert check.startswith(str(tmp_path / file) + ": ") and words in check, check
    assert _config_error(run_bin("fiona", "web", config=config)) == check
    assert _config_error(run_bin("fiona", "run", config=config, timeout=120)) == check
    assert _config_error(run_bin("storectl", "start", config=config)) == check


def _warnings(result) -> list[str]:  # type: ignore[no-untyped-def]
    return [ln for ln in result.stderr.splitlines() if ln.startswith("fiona: warning: ")]


def test_unknown_keys_are_warned_about_at_every_level(tmp_path: Path) -> None:
    projects = tmp_path / "projects.yml"  # the default tracker.projects_file
    projects.write_text(
        "projects:\n  ALPHA:\n    participant_id: '^A'\n    evnts: [baseline]\n"
        "    routing:\n      - {called_aetitle: ALPHA, patient_idd: '.*'}\n"
    )
    config = write_config(
        tmp_path,
        DICOMPORTT=11112,  # a typo of DICOMPORT
        DATADIR_GROUP="",  # known
        SCANNERIP="10.0.0.1",  # FIONA's, unused by us: known
        _comment="comments are fine",
        receiver={"alowed_ips": ["10.0.0.0/8"]},
        heartbeat={"echo_timeout": 5},
        logging={"level": "DEBUG", "colour": True},
        SITES={"B": {"DATADIR": str(tmp_path / "b"), "dicomport": 11113, "arival": {}}},
    )
    result = run_bin("fiona", "check-config", config=config)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(": OK - ") == 2, result.stdout
    got = _warnings(result)
    expected = [
        f"{config}: DICOMPORTT: unknown key, ignored (did you mean DICOMPORT?)",
        f"{config}: receiver.alowed_ips: unknown key, ignored (did you mean allowed_ips?)",
        f"{config}: heartbeat.echo_timeout: unknown key, ignored (did you mean echo_timeout_s?)",
        f"{config}: logging.colour: unknown key, ignored",
        # SCANNERIP alone: a query/retrieve source lacks its port and AE title (config/pacs.py)
        f"{config}: SCANNERIP: scanner not used as a PACS source: SCANNERPORT, SCANNERAETITLE"
        " not set",
        f"{config}: SITES.B.arival: unknown key, ignored (did you mean arrival?)",
        f"{config}: SITES.B.dicomport: unknown key, ignored (did you mean DICOMPORT?)",
        f"{projects}: projects.ALPHA.evnts: unknown key, ignored (did you mean events?)",
        f"{projects}: projects.ALPHA.routing[0].patient_idd: unknown key, ignored"
        " (did you mean patient_id?)",
    ]
    assert sorted(w.removeprefix("fiona: warning: ") for w in got) == sorted(expected), got
    assert len(got) == len(set(got))  # the top level's warnings once, not once per site


def test_a_daemon_logs_config_warnings_once_at_start(tmp_path: Path) -> None:
    config = write_config(tmp_path, DICOMPORTT=11112)
    try:
        r = run_bin("storectl", "start", config=config)
        assert r.returncode == 0, r.stdout + r.stderr
        assert run_bin("storectl", "start", config=config).returncode == 0  # already running
        entries = read_log(tmp_path / "data" / "logs" / "storescpd.log")
        warned = [e for e in entries if e.get("msg", e.get("message")) == "config warning"]
        assert len(warned) == 1, entries
        assert (
            warned[0]["key"] == "DICOMPORTT" and "did you mean DICOMPORT?" in warned[0]["problem"]
        )
        assert warned[0]["level"] == "WARNING"
    finally:
        run_bin("storectl", "stop", config=config)
