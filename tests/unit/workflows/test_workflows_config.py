"""config.json Streams and workflows: FIONA's shape accepted, every mistake one line naming the
key, and `fiona check-config` refusing what the programs would."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fionagw.config import ConfigError, load_config
from support.site import run_bin, write_config

FIONA_STREAM = {  # the shape of FIONA's Workflows php/config.json
    "log": "/var/www/html/applications/Workflows/logs/mriqc.log",
    "name": "mriqc",
    "description": "MRI quality control",
    "trigger": {"AETitleCalled": "^MYALGORITHM$"},
    "trigger-study": [{"type": "exec", "cmd": ["/usr/bin/ror", "trigger", "@PATH@"]}],
    "trigger-series": [],
}


def _load(tmp_path: Path, **extra: object):  # type: ignore[no-untyped-def]
    return load_config(write_config(tmp_path, **extra))


def test_fiona_stream_is_read_with_defaults(tmp_path: Path) -> None:
    cfg = _load(tmp_path, Streams=[FIONA_STREAM])
    stream = cfg.workflows.streams["mriqc"]
    assert stream.trigger.text("AETitleCalled") == "^MYALGORITHM$"
    assert stream.study_steps[0].cmd == ("/usr/bin/ror", "trigger", "@PATH@")
    assert stream.limits == cfg.workflows.limits  # the section's limits apply
    assert (cfg.workflows.max_concurrent, cfg.workflows.runtime) == (2, "auto")
    assert cfg.warnings == ()  # Streams and workflows are known keys


def test_container_step_and_limits(tmp_path: Path) -> None:
    stream = {
        "name": "seg",
        "trigger": {"AETitleCalled": "^SEG$", "project": "ALPHA", "ClassifyType": "T1"},
        "limits": {"memory_mb": 512},
        "trigger-series": [
            {
                "type": "container",
                "image": "localhost/seg:2.1",
                "cmd": ["/seg"],
                "environment": {"A": "1"},
            }
        ],
    }
    cfg = _load(tmp_path, workflows={"limits": {"cpus": 2}}, Streams=[stream])
    s = cfg.workflows.streams["seg"]
    assert (s.project, s.image, s.limits.memory_mb, s.limits.cpus) == (
        "ALPHA",
        "localhost/seg:2.1",
        512,
        2.0,
    )
    assert s.limits.network is False


@pytest.mark.parametrize(
    ("change", "key", "problem"),
    [
        (
            {"trigger": {"AETitleCalled": "^(MY$"}},
            "Streams[0].trigger.AETitleCalled",
            "not a regular expression",
        ),
        (
            {"trigger": {"CalledAE": "X"}},
            "Streams[0].trigger.CalledAE",
            "unknown key for a trigger",
        ),
        (
            {"trigger-study": [{"type": "docker"}]},
            "Streams[0].trigger-study[0].type",
            "must be one of exec, container",
        ),
        (
            {"trigger-study": [{"type": "exec", "cmd": []}]},
            "Streams[0].trigger-study[0].cmd",
            "needs a command",
        ),
        (
            {"trigger-study": [{"type": "container", "image": "a b", "cmd": []}]},
            "Streams[0].trigger-study[0].image",
            "not an image reference",
        ),
        (
            {"trigger-study": []},
            "Streams[0].trigger-study",
            "needs trigger-study or trigger-series",
        ),
        ({"limits": {"memory_mb": 2}}, "Streams[0].limits.memory_mb", "at least 6"),
        ({"destination": "nowhere"}, "Streams[0].destination", "unknown destination 'nowhere'"),
        (
            {"features_only": "research-folder"},
            "Streams[0].features_only",
            "is not an https destination",
        ),
        ({"name": "a b"}, "Streams[0].name", "a stream name has"),
    ],
)
def test_mistakes_are_one_line_naming_the_key(
    tmp_path: Path, change: dict, key: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, Streams=[{**FIONA_STREAM, **change}])
    assert info.value.key == key and problem in info.value.problem, str(info.value)
    assert "\n" not in str(info.value)


def test_two_streams_of_one_name_and_bad_runtime(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"Streams\[1\]\.name: a second stream named 'mriqc'"):
        _load(tmp_path, Streams=[FIONA_STREAM, FIONA_STREAM])
    with pytest.raises(ConfigError, match="workflows.runtime: must be one of auto, podman, docker"):
        _load(tmp_path, workflows={"runtime": "lxc"})


@pytest.mark.slow  # runs bin/fiona
def test_check_config_refuses_a_bad_stream(tmp_path: Path) -> None:
    config = write_config(tmp_path, Streams=[{**FIONA_STREAM, "trigger": {"AETitleCalled": "("}}])
    r = run_bin("fiona", "check-config", config=config)
    assert r.returncode == 2, r
    assert "Streams[0].trigger.AETitleCalled: not a regular expression" in r.stderr
    assert "Traceback" not in r.stderr
    assert json.loads(config.read_text())["Streams"]  # the file is untouched


@pytest.mark.slow  # runs bin/fiona
def test_check_config_warns_when_container_steps_have_no_runtime(tmp_path: Path) -> None:
    import sys

    stream = {**FIONA_STREAM, "trigger-study": [{"type": "container", "image": "x:1", "cmd": []}]}
    config = write_config(tmp_path, Streams=[stream])
    only_python = tmp_path / "path"
    only_python.mkdir()
    (only_python / "python3").symlink_to(sys.executable)
    r = run_bin("fiona", "check-config", config=config, env={"PATH": str(only_python)})
    assert r.returncode == 0, r.stderr
    assert (
        "fiona: warning: Streams: container steps cannot run: no container runtime works"
        " (install Podman or Docker): podman: not installed; docker: not installed"
    ) in r.stderr
    assert "workflow streams: mriqc" in r.stdout
