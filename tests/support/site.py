"""A throw-away site (config.json + DATADIR) and the programs the tests run against it:
our bin/ programs as cron or a shell runs them, and dcmtk's storescu/echoscu as peers."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / "bin"
SHARED = ROOT.parent / "shared"  # the fixtures beside the checkout (tests only, never at run time)

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(directory: Path, **overrides: object) -> Path:
    """A config.json for a site under ``directory`` (DATADIR = directory/data)."""
    cfg = {
        "DATADIR": str(directory / "data"),
        "DICOMIP": "127.0.0.1",
        "DICOMPORT": free_port(),
        "DICOMAETITLE": "FIONA",
        "PROCESSING_USER": "",
        "CLASSIFY_RULES": str(ROOT / "config" / "classifyRules.json"),
        "logging": {"level": "DEBUG"},
    }
    cfg.update(overrides)
    path = directory / "config.json"
    path.write_text(json.dumps(cfg, indent=2))
    return path


def run_bin(
    program: str,
    *args: str,
    config: Path | None = None,
    timeout: float = 60,
    check: bool = False,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """Run a bin/ program the way cron or a shell would."""
    cmd = [str(BIN / program)]
    if config is not None:
        cmd += ["--config", str(config)]
    cmd += list(args)
    return subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
        env={**os.environ, **(env or {})},
    )


def storescu(
    port: int,
    *paths: Path | str,
    aet: str = "STORESCU",
    aec: str = "FIONA",
    extra: tuple[str, ...] = (),
    timeout: float = 600,
) -> subprocess.CompletedProcess:
    """dcmtk's storescu: send files/folders (recursively) to 127.0.0.1:port."""
    exe = shutil.which("storescu")
    assert exe, "dcmtk is not installed: run ./tests/run, which installs it"
    cmd = [
        exe,
        "-aet",
        aet,
        "-aec",
        aec,
        "+sd",
        "+r",
        *extra,
        "127.0.0.1",
        str(port),
        *map(str, paths),
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def echoscu(port: int, aec: str = "FIONA", aet: str = "ECHOSCU") -> subprocess.CompletedProcess:
    exe = shutil.which("echoscu")
    assert exe, "dcmtk is not installed: run ./tests/run, which installs it"
    return subprocess.run(
        [exe, "-aet", aet, "-aec", aec, "127.0.0.1", str(port)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def pydicom_test_file(name: str) -> Path:
    """A file bundled with pydicom's wheel (no download)."""
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name)
    assert path, f"pydicom test file {name} missing"
    return Path(path)


def wait_for(predicate: Callable[[], T], timeout: float = 60.0, what: str = "condition") -> T:
    """Poll ``predicate`` until it returns something true; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def raw_links(datadir: Path) -> list[Path]:
    """The image links of a DATADIR's raw/<Study>/<Series>/ tree."""
    raw = datadir / "site" / "raw"
    return [p for p in raw.glob("*/*/*") if p.is_symlink()]


def read_log(path: Path) -> list[dict]:
    """The entries of a JSON-lines log the gateway wrote (one object per line)."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
