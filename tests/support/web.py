"""Fixtures for the web tests: a site served by the real server, users with roles, Chromium pages.

tests/conftest.py loads it as a plugin (the fixtures below); tests import the helpers
(``login``, ``screenshot``, ``WebSite``...) from ``support.web``.

    web_site       a fresh site (config.json, projects.yml with DEMO and OTHER, DATADIR) served by
                   `fiona web` (gunicorn) on a free port; an admin account ADMIN / ADMIN_PASSWORD.
                   web_site.url, .config, .cfg, .users (UserStore), .add_user(name, pw, roles),
                   .restart()
    browser        one headless Chromium (/usr/bin/chromium) for the session
    page           a fresh browser context + page (HTTPS errors ignored: self-signed test certs)
    admin_page     ``page`` logged in to ``web_site`` as the admin
    app_client     (Flask app, test client) of ``web_site``'s config, in-process (security tests)

Screenshots: ``screenshot(page, "name")`` writes tests/artifacts/<name>.png (full page).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from fionagw.config import SiteConfig, load_config
from fionagw.web.users import UserStore
from support.site import ROOT, free_port, write_config

ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ADMIN, ADMIN_PASSWORD = "admin", "admin-password-1"

PROJECTS_YML = """\
projects:
  DEMO:
    title: Demo project
    participant_id: '^DEMO[0-9]{3}$'
    events: [baseline, followup]
    active: true
  OTHER:
    title: Another project
    participant_id: '^OTH[0-9]{4}$'
    events: [visit1]
    active: true
"""


def web_config(directory: Path, *, web: dict[str, Any] | None = None, **overrides: Any) -> Path:
    """A config.json with a "web" section on a free port and a projects.yml with DEMO and OTHER."""
    projects = directory / "projects.yml"
    if not projects.exists():
        projects.write_text(PROJECTS_YML)
    section = {"host": "127.0.0.1", "port": free_port(), "session_minutes": 60, **(web or {})}
    overrides.setdefault("tracker", {"backend": "local", "projects_file": str(projects)})
    return write_config(directory, web=section, **overrides)


def start_web(config: Path, log: Path, timeout: float = 30.0) -> subprocess.Popen:
    """Run `fiona web` (python -m fionagw.cli.fiona_web) and wait until its login page answers."""
    ws = load_config(config).web
    # the caller's PYTHONPATH after lib/ (it may name where this checkout's fionaweb is)
    path = os.pathsep.join(p for p in (str(ROOT / "lib"), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "PYTHONPATH": path}
    out = open(log, "ab")  # noqa: SIM115 - the child writes to it for its whole life
    proc = subprocess.Popen(
        [sys.executable, "-m", "fionagw.cli.fiona_web", "--config", str(config)],
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        cwd=str(config.parent),
    )
    out.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"fiona web exited with {proc.returncode}:\n{log.read_text(errors='replace')}"
            )
        try:
            with (
                warnings.catch_warnings()
            ):  # readiness probe only: the TLS test checks the certificate
                warnings.simplefilter("ignore")
                r = requests.get(ws.url + "login", timeout=2, verify=False)  # noqa: S501
            if r.status_code == 200:
                return proc
        except requests.RequestException:
            pass
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(
        f"fiona web did not answer within {timeout} s:\n{log.read_text(errors='replace')}"
    )


def stop_web(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class WebSite:
    config: Path
    cfg: SiteConfig
    url: str  # ends with "/"
    proc: subprocess.Popen
    log: Path
    users: UserStore = field(init=False)

    def __post_init__(self) -> None:
        self.users = UserStore.for_site(self.cfg)

    def add_user(self, name: str, password: str, roles: list[tuple[str, str]] = ()) -> None:  # type: ignore[assignment]
        """Create an account with roles [(role, project)], project "" for admin."""
        self.users.add_user(name, password)
        for role, project in roles:
            self.users.grant(name, role, project)

    def restart(self) -> None:
        stop_web(self.proc)
        self.proc = start_web(self.config, self.log)


def serve_site(config: Path) -> WebSite:
    cfg = load_config(config)
    store = UserStore.for_site(cfg)
    if store.get_user(ADMIN) is None:
        store.add_user(ADMIN, ADMIN_PASSWORD)
        store.grant(ADMIN, "admin")
    log = config.parent / "fiona-web.out"
    proc = start_web(config, log)
    return WebSite(config, cfg, cfg.web.url, proc, log)


@pytest.fixture
def web_site(tmp_path: Path) -> Iterator[WebSite]:
    site = serve_site(web_config(tmp_path))
    try:
        yield site
    finally:
        stop_web(site.proc)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(ignore_https_errors=True, viewport={"width": 1366, "height": 900})
    context.set_default_timeout(15_000)
    p = context.new_page()
    try:
        yield p
    finally:
        context.close()


def login(page: Any, base_url: str, name: str = ADMIN, password: str = ADMIN_PASSWORD) -> None:
    """Log in through the login form; asserts the login worked."""
    page.goto(base_url + "login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert "/login" not in page.url, f"login as {name} failed: {page.inner_text('main')}"


@pytest.fixture
def admin_page(web_site: WebSite, page: Any) -> Any:
    login(page, web_site.url)
    return page


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page screenshot as tests/artifacts/<name>.png (a test artifact)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture
def app_client(tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    """An in-process app of a fresh site (no server) and its Flask test client, admin account made."""
    from fionaweb import create_app

    cfg = load_config(web_config(tmp_path))
    store = UserStore.for_site(cfg)
    store.add_user(ADMIN, ADMIN_PASSWORD)
    store.grant(ADMIN, "admin")
    app = create_app(cfg)
    app.config["TESTING"] = False  # errors go through the error pages, as in production
    yield app, app.test_client()


def client_login(client: Any, name: str = ADMIN, password: str = ADMIN_PASSWORD) -> Any:
    """Log a Flask test client in (GET the form for the CSRF token, then POST it)."""
    token = csrf_from(client.get("/login").get_data(as_text=True))
    r = client.post("/login", data={"username": name, "password": password, "csrf_token": token})
    assert r.status_code == 302, r.get_data(as_text=True)
    return r


def csrf_from(html: str) -> str:
    """The CSRF token of a page (the hidden form field or the meta tag)."""
    import re

    m = re.search(r'name="csrf_token" value="([^"]+)"', html) or re.search(
        r'<meta name="csrf-token" content="([^"]+)"', html
    )
    assert m, "no CSRF token on the page"
    return m.group(1)
