"""gunicorn's own error log goes through the PHI filter like every other handler."""

from __future__ import annotations

import pytest
from gunicorn.config import Config

from fionagw.cli.fiona_web import FilteredGunicornLogger, gunicorn_options

MARKER = "ZQXWEBPHI^Patient"


def test_gunicorn_uses_the_filtered_logger(site_config) -> None:
    from fionagw.config import load_config

    opts = gunicorn_options(load_config(site_config))
    assert opts["logger_class"] == "fionagw.cli.fiona_web.FilteredGunicornLogger"
    cfg = Config()
    cfg.set("logger_class", opts["logger_class"])
    assert cfg.logger_class is FilteredGunicornLogger


def test_a_worker_traceback_in_the_error_log_carries_no_value(
    capsys: pytest.CaptureFixture[str],
) -> None:
    cfg = Config()
    cfg.set("errorlog", "-")
    log = FilteredGunicornLogger(cfg)
    try:
        raise ValueError(f"bad value {MARKER!r} in request")
    except ValueError:
        log.exception("Error handling request")
    err = capsys.readouterr().err
    assert "Error handling request" in err
    assert "ValueError" in err  # the type and the place stay
    assert "ZQXWEBPHI" not in err
