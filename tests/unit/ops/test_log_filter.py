"""The PHI filter every log handler goes through: tracebacks keep their frames and types but
lose the messages (except the project's PHI-free errors), and value-like text is redacted."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from fionagw.classify import NotDicomError, RulesError
from fionagw.config import load_config
from fionagw.ops.log import console_handler, setup_logging
from fionagw.ops.log_filter import format_exception_safe, redact, safe_exception_text
from support.site import ROOT, write_config

MARK = "ZQXPHI4242"


@pytest.fixture
def site_log(tmp_path: Path):  # type: ignore[no-untyped-def]
    cfg = load_config(write_config(tmp_path))
    setup_logging(cfg, "unit")
    yield cfg.paths.logfile("unit")
    logging.captureWarnings(False)  # pytest restores warnings.showwarning after each test
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
        h.close()


def entries(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _raise_value_error() -> None:
    raise ValueError(f"Invalid value {MARK!r} in (0010,0020)")


def test_traceback_keeps_frames_and_type_not_the_message(site_log: Path) -> None:
    try:
        _raise_value_error()
    except ValueError:
        logging.getLogger("fionagw.x").exception("processing failed")
    text = site_log.read_text()
    assert MARK not in text
    (entry,) = entries(site_log)
    exc = entry["exception"]
    assert exc.startswith("Traceback (most recent call last):")
    assert "in _raise_value_error" in exc and "test_log_filter.py" in exc
    assert exc.rstrip().endswith("ValueError: <message withheld: may quote data>")
    assert "raise ValueError" not in exc  # no source lines either


def test_chained_exceptions_and_os_errors(site_log: Path) -> None:
    try:
        try:
            open(f"/nonexistent/{MARK}")
        except OSError as exc:
            raise KeyError(MARK) from exc
    except KeyError:
        logging.getLogger("fionagw.x").error("failed", exc_info=True)
    (entry,) = entries(site_log)
    assert MARK not in json.dumps(entry)
    exc = entry["exception"]
    assert "FileNotFoundError: [Errno 2 ENOENT]" in exc  # errno stays, the file name does not
    assert "direct cause" in exc and exc.rstrip().endswith(
        "KeyError: <message withheld: may quote data>"
    )


def test_project_errors_keep_their_messages() -> None:
    for exc in (NotDicomError("broken: missing SOPInstanceUID"), RulesError("rule 3: bad op")):
        try:
            raise exc
        except Exception as caught:
            text = safe_exception_text(caught)
            assert str(exc) in text and "test_log_filter.py" in text
            assert str(exc) in format_exception_safe(caught)


def test_messages_and_extra_fields_are_redacted(site_log: Path) -> None:
    log = logging.getLogger("somelib.fake")
    log.warning("Invalid value for VR DA: %r", MARK)
    log.warning("(0010,0010) Patient's Name  PN: 'X%s'", MARK)
    log.warning("received b'%s\\x00' with length 11", MARK)
    log.warning("patient Doe^%s", MARK, extra={"detail": f"name Smith^{MARK}"})
    log.warning("error", extra={"error": ValueError(MARK)})
    text = site_log.read_text()
    assert MARK not in text
    messages = [e["message"] for e in entries(site_log)]
    assert messages[0] == "Invalid value for VR DA: '<redacted>'"
    assert messages[1] == "(0010,0010) Patient's Name  PN: <redacted>"
    assert "(0010,0010)" in messages[1]


def test_redact_leaves_ordinary_lines_alone() -> None:
    for line in (
        "study complete",
        "reconcile processed files that had no raw/ link",
        "rule '^T1' matched series 1.2.840.113619.2.1",
        "queued 3 file(s) for MR.1.2.3",
        "C-STORE from STORESCU to FIONA at 127.0.0.1: Success",
    ):
        assert redact(line) == line


def test_console_handler_goes_through_the_filter(capsys: pytest.CaptureFixture[str]) -> None:
    log = logging.getLogger("fionagw.console-test")
    log.propagate = False
    handler = console_handler("unit")
    log.addHandler(handler)
    try:
        try:
            _raise_value_error()
        except ValueError:
            log.exception("failed")
    finally:
        log.removeHandler(handler)
    err = capsys.readouterr().err
    assert "failed" in err and "ValueError" in err and MARK not in err


def test_an_uncaught_exception_is_logged_safely(tmp_path: Path) -> None:
    """A program that dies of an exception prints one safe line and logs the frames."""
    config = write_config(tmp_path)
    script = f"""
import sys
sys.path.insert(0, {str(ROOT / "lib")!r})
from fionagw.config import load_config
from fionagw.ops.log import setup_logging
setup_logging(load_config({str(config)!r}), "dying")
def explode():
    raise RuntimeError("value {MARK}")
explode()
"""
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert MARK not in r.stderr and "Traceback" not in r.stderr
    assert r.stderr.startswith("dying: unexpected error: RuntimeError: <message withheld")
    assert "in explode" in r.stderr and r.stderr.count("\n") == 1
    log = load_config(config).paths.logfile("dying")
    (entry,) = entries(log)
    assert entry["level"] == "CRITICAL" and "in explode" in entry["exception"]
    assert MARK not in log.read_text()


def test_non_conformant_uids_are_hashed_or_redacted(site_log: Path) -> None:
    log = logging.getLogger("fionagw.x")
    log.info(
        "series complete",
        extra={
            "study_uid": "1.2.840.10008.1",
            "series_uid": f"1.2.{MARK}",
            "study": MARK,
            "path": f"/data/site/archive/scp_1.2.3/MR.1.2.{MARK}",
            "tgz": "/data/quarantine/1.2.3_1.2.4.tgz",
            "other": f"/data/quarantine/1.2.3_1.2.{MARK}.tgz",
        },
    )
    (entry,) = entries(site_log)
    assert MARK not in json.dumps(entry)
    assert entry["study_uid"] == "1.2.840.10008.1"
    assert entry["series_uid"].startswith("<non-conformant UID sha256:")
    assert entry["series_uid"] != entry["study"]
    assert entry["path"] == "/data/site/archive/scp_1.2.3/MR.1.2.<redacted>"
    assert entry["tgz"] == "/data/quarantine/1.2.3_1.2.4.tgz"


def test_warnings_go_through_the_filter(site_log: Path) -> None:
    """A library's warning (pydicom's quote the value) is logged, filtered, not printed."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn(f"Invalid value for VR PN: '{MARK}'", UserWarning, stacklevel=1)
    (entry,) = entries(site_log)
    assert entry["level"] == "WARNING" and "Invalid value for VR PN" in entry["message"]
    assert MARK not in site_log.read_text()


def test_a_program_without_its_log_prints_one_safe_line() -> None:
    """What the launcher installs for every bin/ program before anything else: standard
    library only, no log yet."""
    script = f"""
import sys
sys.path.insert(0, {str(ROOT / "lib")!r})
from fionagw.ops.log_filter import install_excepthooks
install_excepthooks(program="fiona")
import threading
t = threading.Thread(target=lambda: {{}}["{MARK}"])
t.start(); t.join()
raise KeyError("{MARK}")
"""
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and MARK not in r.stderr and "Traceback" not in r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 2 and all(
        line.startswith("fiona: unexpected error: KeyError") for line in lines
    )
