"""Settings page in Chromium: the effective configuration with secrets masked; a test button per
destination."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fionagw.web.masking import MASK
from support.site import free_port, wait_for
from support.web import WebSite, screenshot, serve_site, stop_web, web_config

pytestmark = pytest.mark.slow

TOKEN = "0123456789abcdef0123456789ABCDEF"


SMTP_PASSWORD = "hunter2-hunter2"


URL_PASSWORD = "s3cr3t-in-url"


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def research_pacs() -> Iterator[int]:
    """dcmtk's storescp as the research PACS a destination points at (answers C-ECHO)."""
    exe = shutil.which("storescp")
    assert exe, "dcmtk is not installed: run ./tests/run, which installs it"
    port = free_port()
    proc = subprocess.Popen(
        [exe, "-aet", "RESEARCH", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for(lambda: _listening(port), 15, "storescp listening")
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def settings_site(tmp_path: Path, research_pacs: int) -> Iterator[WebSite]:
    secrets = tmp_path / "secrets.json"
    secrets.write_text(json.dumps({"tokens": {"Incoming": TOKEN}}))
    secrets.chmod(0o600)
    config = web_config(
        tmp_path,
        tracker={
            "backend": "local",
            "projects_file": str(tmp_path / "projects.yml"),
            "secrets_file": str(secrets),
        },
        destinations={
            "research-pacs": {
                "type": "dicom",
                "host": "127.0.0.1",
                "port": research_pacs,
                "called_aetitle": "RESEARCH",
                "timeout": 5,
                "reconnects": 0,
            },
            "closed-pacs": {
                "type": "dicom",
                "host": "127.0.0.1",
                "port": free_port(),
                "called_aetitle": "NOBODY",
                "timeout": 5,
                "reconnects": 0,
            },
            "outbox": {"type": "folder", "path": str(tmp_path / "outbox")},
        },
        notify={
            "smtp_password": SMTP_PASSWORD,
            "webhook_url": f"https://bot:{URL_PASSWORD}@hooks.example.org/x",
            "api_key": "abcdefgh-1234",
            "note": f"copied token {TOKEN}",
        },
    )
    site = serve_site(config)
    try:
        yield site
    finally:
        stop_web(site.proc)


def test_settings_masks_secrets_and_tests_destinations(settings_site: WebSite, page: Any) -> None:
    from support.web import login

    login(page, settings_site.url)
    page.goto(settings_site.url + "settings/")
    text = page.inner_text("main")
    for secret in (TOKEN, TOKEN.lower(), SMTP_PASSWORD, URL_PASSWORD, "abcdefgh-1234"):
        assert secret not in text
        assert secret not in page.content()
    raw = json.loads(page.inner_text("#raw-config"))
    assert raw["notify"] == {
        "smtp_password": MASK,
        "webhook_url": f"https://bot:{MASK}@hooks.example.org/x",
        "api_key": MASK,
        "note": MASK,
    }
    assert raw["DICOMAETITLE"] == "FIONA"  # not a secret: shown
    effective = json.loads(page.inner_text("#effective"))
    assert effective["tracker"]["secrets_file"].endswith("secrets.json")  # a path, not the secret
    assert effective["web"]["session_minutes"] == 60 and effective["arrival"]["quiet_seconds"] == 16
    screenshot(page, "settings")

    page.click('tr[data-destination="research-pacs"] button')
    flash = page.inner_text("p.flash")
    assert flash.startswith("research-pacs: OK: dicom RESEARCH@127.0.0.1:") and "C-ECHO OK" in flash
    page.click('tr[data-destination="closed-pacs"] button')
    flash = page.inner_text("p.flash.error")
    assert flash.startswith("closed-pacs: FAILED: ") and "NOBODY@127.0.0.1" in flash
    screenshot(page, "settings-check-failed")
    page.click('tr[data-destination="outbox"] button')
    assert "outbox: OK: folder " in page.inner_text("p.flash") and "writable" in page.inner_text(
        "p.flash"
    )
