"""cli/common.py: the one way a program ends on a config problem."""

from __future__ import annotations

import pytest

from fionagw.cli.common import config_errors
from fionagw.config import ConfigError


def _fail() -> int:
    raise ConfigError("/etc/fiona/config.json", "DICOMPORT", "expected an integer")


def test_block_prints_one_line_and_exits_2(capsys) -> None:
    with pytest.raises(SystemExit) as stop, config_errors("storectl"):
        _fail()
    assert stop.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "storectl: config error: /etc/fiona/config.json: DICOMPORT: expected an integer\n"


def test_decorator_and_another_exit_code(capsys) -> None:
    @config_errors("fiona web", code=1)
    def run() -> int:
        return _fail()

    with pytest.raises(SystemExit) as stop:
        run()
    assert stop.value.code == 1
    assert capsys.readouterr().err.startswith("fiona web: config error: /etc/fiona/config.json: ")


def test_no_error_passes_the_result_through(capsys) -> None:
    @config_errors("fiona")
    def run() -> int:
        return 7

    assert run() == 7 and run() == 7  # reusable as a decorator
    assert capsys.readouterr() == ("", "")
