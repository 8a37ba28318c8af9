"""`fiona workflow` in-process: run queues, list and status show the job, cancel and retry
change it, and every mistake is one line on stderr with exit 1."""

from __future__ import annotations

from pathlib import Path

import pytest

from fionagw.cli.fiona import main
from fionagw.config import load_config
from support.site import write_config

STUDY = "1.2.826.0.1.3680043.8.498.1"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = write_config(
        tmp_path,
        Streams=[
            {
                "name": "count",
                "description": "counts",
                "trigger": {"project": "ALPHA"},
                "trigger-study": [{"type": "exec", "cmd": ["true"]}],
            }
        ],
    )
    cfg = load_config(path)
    (cfg.paths.raw_series_dir(STUDY, STUDY + ".1")).mkdir(parents=True)
    return path


def _fiona(capsys, config: Path, *args: str) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    code = main(["--config", str(config), "workflow", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_run_list_status_cancel_retry(capsys, config: Path) -> None:  # type: ignore[no-untyped-def]
    assert _fiona(capsys, config, "run", "count", STUDY) == (
        0,
        "fiona workflow: queued job 1 (count)\n",
        "",
    )
    code, out, _ = _fiona(capsys, config, "list")
    assert code == 0
    assert out.splitlines() == [
        "stream count (study, project ALPHA): counts",
        f"    1 queued    count (ALPHA) study {STUDY}",
    ]
    assert _fiona(capsys, config, "cancel", "1")[1] == "fiona workflow: job 1 cancelled\n"
    code, out, _ = _fiona(capsys, config, "status", "1")
    assert code == 0 and "cancelled" in out and "cancelled by" in out
    assert _fiona(capsys, config, "retry", "1")[1] == "fiona workflow: job 1 queued again\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("run", "nope", STUDY), "fiona workflow: no stream 'nope' (streams: count)\n"),
        (("run", "count", "1.2.3"), "fiona workflow: study 1.2.3 is not in raw/ of this site\n"),
        (
            ("run", "count", STUDY, "--project", "BETA"),
            "fiona workflow: stream 'count' serves project 'ALPHA', not 'BETA'\n",
        ),
        (("status", "9"), "fiona workflow: no workflow job 9\n"),
        (("retry", "9"), "fiona workflow: no workflow job 9\n"),
    ],
)
def test_mistakes_are_one_line(capsys, config: Path, args: tuple[str, ...], message: str) -> None:  # type: ignore[no-untyped-def]
    assert _fiona(capsys, config, *args) == (1, "", message)


def test_retry_of_a_queued_job_is_refused(capsys, config: Path) -> None:  # type: ignore[no-untyped-def]
    _fiona(capsys, config, "run", "count", STUDY)
    assert _fiona(capsys, config, "retry", "1") == (
        1,
        "",
        "fiona workflow: job 1 is queued: only failed or cancelled jobs are retried\n",
    )
