"""load_config builds every typed section (web, sending, destinations) and validates the local
tracker's projects.yml, so `fiona check-config` refuses exactly what the programs would refuse:
each bad input is one line ``file: key: problem``, from load_config and from check-config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fionagw.config import (
    DEFAULT_DESTINATION,
    ConfigError,
    SendingSettings,
    WebSettings,
    load_config,
)
from fionagw.config.projects import ProjectsError
from support.site import run_bin, write_config

PROJECTS_OK = "projects:\n  P1:\n    participant_id: '^P1[0-9]{3}$'\n"


def _site(tmp_path: Path, projects: str = PROJECTS_OK, **overrides: object) -> tuple[Path, Path]:
    projects_file = tmp_path / "projects.yml"
    projects_file.write_text(projects)
    overrides.setdefault("tracker", {"backend": "local", "projects_file": str(projects_file)})
    return write_config(tmp_path, **overrides).resolve(), projects_file.resolve()


# (case id, config.json overrides, projects.yml, which file is named, key, problem)
BAD = [
    (
        "web port 8080x",
        {"web": {"port": "8080x"}},
        PROJECTS_OK,
        "config",
        "web.port",
        'expected an integer port 1-65535, got "8080x"',
    ),
    (
        "session minutes sixty",
        {"web": {"session_minutes": "sixty"}},
        PROJECTS_OK,
        "config",
        "web.session_minutes",
        'expected an integer, got "sixty"',
    ),
    (
        "invalid YAML",
        {},
        "projects:\n  P1: {participant_id: x\n",
        "projects",
        "",
        "invalid YAML: line 3 column 1: ",
    ),
    (
        "bad regex",
        {},
        "projects:\n  P1: {participant_id: '^P1(['}\n",
        "projects",
        "projects.P1.participant_id",
        "not a valid regular expression: ",
    ),
    (
        "events not a list",
        {},
        "projects:\n  P1: {participant_id: x, events: baseline}\n",
        "projects",
        "projects.P1.events",
        'expected a list, got "baseline"',
    ),
    (
        "unknown destination",
        {},
        "projects:\n  P1: {participant_id: x, destination: research-pacs}\n",
        "projects",
        "projects.P1.destination",
        "unknown destination 'research-pacs' (config.json destinations: research-folder)",
    ),
]


@pytest.mark.slow  # runs bin/fiona check-config once per case (about 1.4 s each)
@pytest.mark.parametrize(
    ("overrides", "projects", "named", "key", "problem"),
    [case[1:] for case in BAD],
    ids=[case[0] for case in BAD],
)
def test_bad_input_is_one_line_from_load_config_and_check_config(
    tmp_path: Path, overrides: dict, projects: str, named: str, key: str, problem: str
) -> None:
    config, projects_file = _site(tmp_path, projects, **overrides)
    expected = f"{config if named == 'config' else projects_file}: "
    expected += f"{key}: {problem}" if key else problem
    with pytest.raises(ConfigError) as err:
        load_config(config)
    assert str(err.value).startswith(expected), str(err.value)
    assert "\n" not in str(err.value) and err.value.key == key

    result = run_bin("fiona", "check-config", config=config)
    assert result.returncode == 2
    assert result.stderr.strip() == f"fiona: config error: {err.value}", result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_projects_errors_are_config_errors(tmp_path: Path) -> None:
    config, _ = _site(tmp_path, "projects:\n  P1: {participant_id: x, events: baseline}\n")
    with pytest.raises(ProjectsError):  # what the tracker's callers catch
        load_config(config)


def test_sections_have_their_defaults(tmp_path: Path) -> None:
    cfg = load_config(write_config(tmp_path))
    assert cfg.web == WebSettings() and cfg.web.url == "http://127.0.0.1:8080/"
    assert cfg.sending == SendingSettings()
    assert list(cfg.destinations) == [DEFAULT_DESTINATION]
    assert cfg.destinations[DEFAULT_DESTINATION].path == cfg.paths.outbox


def test_sections_are_typed_and_a_site_overrides_them(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        web={"host": "::1", "port": "8443", "session_minutes": 30, "max_upload_mb": 10},
        sending={"max_attempts": 2},
        SITES={"B": {"web": {"enabled": False}, "sending": {"retry_base_seconds": 5}}},
    )
    cfg = load_config(config)
    assert (cfg.web.host, cfg.web.port, cfg.web.session_minutes) == ("::1", 8443, 30)
    assert cfg.web.url == "http://[::1]:8443/" and cfg.web.max_upload_mb == 10
    assert cfg.sending.max_attempts == 2 and cfg.sending.retry_base_seconds == 60
    site = load_config(config, "B")  # a SITES entry replaces a whole section, as FIONA's keys
    assert site.web == WebSettings(enabled=False) and site.sending.retry_base_seconds == 5
    assert site.sending.max_attempts == 5


def test_source_is_the_file_as_read_for_the_settings_page(tmp_path: Path) -> None:
    config = write_config(tmp_path, notify={"note": "x"}, SITES={"B": {"DICOMAETITLE": "SITEB"}})
    data = json.loads(config.read_text())
    assert load_config(config).source == data
    assert load_config(config, "B").source == {**data, "DICOMAETITLE": "SITEB"}


def test_projects_naming_configured_destinations_load(tmp_path: Path) -> None:
    config, _ = _site(
        tmp_path,
        "projects:\n  P1: {participant_id: x, destination: out}\n  P2: {participant_id: y}\n",
        destinations={"out": {"type": "folder", "path": "out"}},
    )
    assert list(load_config(config).destinations) == ["out"]


def test_redcap_projects_are_not_read_at_load(tmp_path: Path) -> None:
    """With the redcap tracker the projects come from REDCap when the tracker runs."""
    config, _ = _site(
        tmp_path,
        "projects: [not, a, mapping]\n",
        tracker={
            "backend": "redcap",
            "redcap_url": "https://redcap.invalid/api/",
            "secrets_file": str(tmp_path / "secrets.json"),
            "projects_file": str(tmp_path / "projects.yml"),
        },
    )
    assert load_config(config).tracker.backend == "redcap"


def test_a_missing_projects_file_means_no_projects(tmp_path: Path) -> None:
    config = write_config(tmp_path, tracker={"projects_file": str(tmp_path / "none.yml")})
    assert load_config(config).tracker.projects_file == tmp_path / "none.yml"


def test_a_refused_unknown_key_suggests_the_known_one(tmp_path: Path) -> None:
    config, _ = _site(tmp_path, web={"sesion_minutes": 5})
    with pytest.raises(
        ConfigError, match=r"web\.sesion_minutes: unknown key \(did you mean session_minutes\?\)"
    ):
        load_config(config)


def test_unknown_keys_are_warnings_not_errors(tmp_path: Path) -> None:
    config, _ = _site(tmp_path, DICOMAETITEL="X", tracker={"backnd": "local"}, DATADIR_GROUP="")
    cfg = load_config(config)
    assert [str(w) for w in cfg.warnings] == [
        f"{config}: DICOMAETITEL: unknown key, ignored (did you mean DICOMAETITLE?)",
        f"{config}: tracker.backnd: unknown key, ignored (did you mean backend?)",
    ]


def test_every_documented_project_key_is_known(tmp_path: Path) -> None:
    """resend_missing (and every key a project reads) is no 'unknown key' for check-config."""
    from fionagw.config.projects import load_projects

    file = tmp_path / "projects.yml"
    file.write_text(
        "projects:\n  ALPHA:\n    participant_id: '^A[0-9]$'\n    resend_missing: true\n"
    )
    warnings: list = []
    projects, _ = load_projects(file, warnings)
    assert projects["ALPHA"].resend_missing is True and warnings == []
