"""Administration in Chromium against a gateway under `fiona run`: an admin changes the
receiver's port and sees the restart prompt, restarts from the page and storescu reaches the
new port; an invalid value shows its error at the field and changes nothing on disk; a
destination test succeeds against Orthanc and fails against a closed port; an account made on
the Users page must change its password at its first login; every act leaves one audit record,
and one edited byte makes `fiona audit verify` name the record.

One `fiona run`, one Orthanc and one browser context for the module."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread

from fionagw.admin import audit
from fionagw.config import SiteConfig, load_config
from fionagw.web.users import UserStore
from support.orthanc_peer import OrthancPeer
from support.site import (
    BIN,
    echoscu,
    free_port,
    pydicom_test_file,
    run_bin,
    storescu,
    wait_for,
)
from support.web import ADMIN, ADMIN_PASSWORD, login, screenshot, web_config

pytestmark = pytest.mark.slow


class Gateway:
    def __init__(self, config: Path, cfg: SiteConfig, proc: subprocess.Popen, url: str) -> None:
        self.config, self.cfg, self.proc, self.url = config, cfg, proc, url


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, orthanc_server: OrthancPeer
) -> Iterator[Gateway]:
    import requests

    orthanc_server.start()
    root = tmp_path_factory.mktemp("admin")
    closed = free_port()
    config = web_config(
        root,
        metrics={"enabled": False},
        destinations={
            "pacs": {"type": "dicom", "host": "127.0.0.1", "port": orthanc_server.dicom_port,
                     "called_aetitle": orthanc_server.aet},
            "closed": {"type": "dicom", "host": "127.0.0.1", "port": closed,
                       "called_aetitle": "NOBODY", "timeout": 3},
        },
    )  # fmt: skip
    cfg = load_config(config)
    store = UserStore.for_site(cfg)
    store.add_user(ADMIN, ADMIN_PASSWORD)
    store.grant(ADMIN, "admin")
    out = open(root / "fiona-run.out", "w+")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [str(BIN / "fiona"), "--config", str(config), "run"],
        stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    url = cfg.web.url.rstrip("/") + "/"

    def web_up() -> bool:
        try:
            return requests.get(url + "login", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    try:
        wait_for(web_up, 90, "fiona run's web pages")
        wait_for(lambda: echoscu(cfg.dicom_port).returncode == 0, 60, "the receiver")
        yield Gateway(config, cfg, proc, url)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        out.close()


@pytest.fixture(scope="module")
def admin(gateway: Gateway, browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    context.set_default_timeout(20_000)
    page = context.new_page()
    login(page, gateway.url)
    try:
        yield page
    finally:
        context.close()


def _field(page: Any, key: str) -> Any:
    return page.locator(f'.field[data-field="{key}"]')


def test_an_invalid_port_is_shown_at_the_field_and_nothing_changes(
    gateway: Gateway, admin: Any
) -> None:
    before = gateway.config.read_bytes()
    admin.goto(gateway.url + "settings/")
    _field(admin, "DICOMPORT").locator("input").fill("99999")
    admin.click("#save-settings")
    error = _field(admin, "DICOMPORT").locator(".field-error")
    assert "1-65535" in error.inner_text()
    assert _field(admin, "DICOMPORT").locator("input").input_value() == "99999"  # as typed
    screenshot(admin, "admin-settings-invalid")
    assert gateway.config.read_bytes() == before
    assert not list(gateway.config.parent.glob("config.json.2*"))


def test_a_new_receiver_port_after_the_restart_prompt_takes_storescu(
    gateway: Gateway, admin: Any
) -> None:
    old, new = gateway.cfg.dicom_port, free_port()
    admin.goto(gateway.url + "settings/")
    assert admin.locator("#restart-prompt").count() == 0
    _field(admin, "DICOMPORT").locator("input").fill(str(new))
    admin.click("#save-settings")
    assert "Saved: DICOMPORT" in admin.inner_text(".flash.ok")
    prompt = admin.locator("#restart-prompt")
    assert "the DICOM receiver" in prompt.inner_text()
    screenshot(admin, "admin-settings-restart-prompt")
    assert json.loads(gateway.config.read_text())["DICOMPORT"] == new
    assert echoscu(old).returncode == 0  # not applied until the restart
    prompt.locator("#restart-now").click()
    assert "Restart requested: the DICOM receiver" in admin.inner_text(".flash.ok")
    assert admin.locator("#restart-prompt").count() == 0
    wait_for(lambda: echoscu(new).returncode == 0, 90, "the receiver on its new port")
    r = storescu(new, pydicom_test_file("CT_small.dcm"))
    assert r.returncode == 0, r.stderr
    archived = gateway.cfg.paths.archive
    assert [p for p in archived.rglob("*") if p.is_file()], "nothing archived"
    assert echoscu(old).returncode != 0


def test_destination_tests_against_orthanc_and_a_closed_port(gateway: Gateway, admin: Any) -> None:
    admin.goto(gateway.url + "destinations/")
    admin.locator('section[data-destination="pacs"] button.test-destination').click()
    assert "pacs: OK" in admin.inner_text(".flash.ok")
    admin.locator('section[data-destination="closed"] button.test-destination').click()
    assert "closed: FAILED" in admin.inner_text(".flash.error")
    screenshot(admin, "admin-destination-test")


def test_a_project_made_on_the_page_takes_a_study_on_assign(gateway: Gateway, admin: Any) -> None:
    """The study storescu sent above, assigned on Assign to a project created on Projects."""
    from fionagw.tracking.factory import open_tracker

    admin.goto(gateway.url + "projects/")
    form = admin.locator("#new-project form")
    form.locator("input[name=name]").fill("STUDY1")
    form.locator("input[name=participant_id]").fill("^S1-[0-9]{4}$")
    assert "S1-0000" in wait_for(
        lambda: form.locator(".id-example").inner_text(), 20, "the live example"
    )
    form.locator("input[name=events]").fill("baseline")
    form.locator("button.save-project").click()
    assert "Project STUDY1 created" in admin.inner_text(".flash.ok")

    def listed() -> bool:
        admin.goto(gateway.url + "assign/")
        return admin.locator("tr.study").count() > 0

    wait_for(listed, 120, "the study on the incoming list")
    admin.locator("tr.study").first.locator("a", has_text="Open").click()
    admin.select_option("#project-select", "STUDY1")
    admin.click("button:has-text('Next')")
    admin.fill("input[name=new_participant]", "S1-0001")
    admin.select_option("select[name=event]", "baseline")
    admin.click("button:has-text('Assign')")
    admin.click("#confirm-assign")
    admin.wait_for_load_state()
    assert "Requested: transfer to STUDY1 as S1-0001" in admin.inner_text("main")
    tracker = open_tracker(gateway.cfg)
    try:
        [t] = tracker.transfers(project="STUDY1")
        assert (t.transfer_name, t.transfer_event_name) == ("S1-0001", "baseline")
    finally:
        tracker.close()


def test_an_account_made_on_the_users_page_changes_its_password_first(
    gateway: Gateway, admin: Any, browser: Any
) -> None:
    admin.goto(gateway.url + "users/")
    form = admin.locator("#add-user form")
    form.locator("input[name=name]").fill("una")
    form.locator("input[name=password]").fill("given-password-1")
    form.locator("input[name=repeat_password]").fill("given-password-1")
    form.locator("button").click()
    assert "Added una" in admin.inner_text(".flash.ok")
    assert "must change" in admin.locator('tr[data-user="una"]').inner_text()
    context = browser.new_context()
    try:
        una = context.new_page()
        una.set_default_timeout(20_000)
        login(una, gateway.url, "una", "given-password-1")
        assert una.url.endswith("/account") and una.locator("#must-change").count() == 1
        una.goto(gateway.url + "status/")
        assert una.url.endswith("/account")  # nothing else before a new password
        una.fill("input[name=old_password]", "given-password-1")
        una.fill("input[name=new_password]", "una-own-password")
        una.fill("input[name=repeat_password]", "una-own-password")
        una.click("main form button[type=submit]")
        assert "Password changed" in una.inner_text(".flash.ok")
        una.goto(gateway.url + "status/")
        assert una.url.endswith("/status/")
        assert una.goto(gateway.url + "settings/").status == 403
    finally:
        context.close()


def test_a_non_admin_gets_403_on_every_administration_route(gateway: Gateway, browser: Any) -> None:
    """Every rule of the app's url_map under an admin-only tab, each of its methods, asked by
    Chromium with a non-admin's session and CSRF token."""
    import re

    from fionaweb import create_app
    from fionaweb.applications import APPLICATIONS

    store = UserStore.for_site(gateway.cfg)
    store.add_user("vic", "vic-password-1")
    store.grant("vic", "assign", "*")
    store.grant("vic", "admin", "DEMO")  # a project's admin is not the site's
    admin_blueprints = {a.blueprint.name for a in APPLICATIONS if a.role == "admin"}
    routes = []
    for rule in create_app(gateway.cfg).url_map.iter_rules():
        if rule.endpoint.split(".")[0] in admin_blueprints:
            path = rule.rule
            for arg in rule.arguments:
                path = re.sub(rf"<(?:[^:<>]+:)?{arg}>", "x", path)
            routes += [(m, path) for m in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    assert len(routes) >= 20 and ("POST", "/settings/restart") in routes
    context = browser.new_context()
    try:
        vic = context.new_page()
        login(vic, gateway.url, "vic", "vic-password-1")
        token = vic.locator("meta[name=csrf-token]").get_attribute("content") or ""
        refused = []
        for method, path in routes:
            r = vic.request.fetch(
                gateway.url.rstrip("/") + path,
                method=method,
                headers={"X-CSRF-Token": token},
                form={"csrf_token": token} if method == "POST" else None,
                max_redirects=0,
            )
            refused.append((method, path, r.status))
        assert all(status == 403 for _, _, status in refused), refused
    finally:
        context.close()
    store.remove_user("vic")


def test_every_act_left_one_record_and_an_edited_byte_is_named(gateway: Gateway) -> None:
    cfg = gateway.cfg
    study_uid = dcmread(pydicom_test_file("CT_small.dcm")).StudyInstanceUID
    acts = [(r["action"], r["object"], r["who"]) for r in audit.search(cfg)][::-1]
    assert acts == [
        ("settings-change", "config.json", ADMIN),
        ("restart", "storectl", ADMIN),
        ("destination-test", "pacs", ADMIN),
        ("destination-test", "closed", ADMIN),
        ("project-add", "STUDY1", ADMIN),
        ("assign", study_uid, ADMIN),
        ("user-add", "una", ADMIN),
        ("user-passwd", "una", "una"),
    ]
    assert all(r["from"] == "127.0.0.1" for r in audit.search(cfg))
    assert audit.verify(cfg) == (8, [])
    path = audit.audit_file(cfg)
    data = bytearray(path.read_bytes())
    third = [i for i, b in enumerate(data) if b == 0x0A][1] + 1  # start of record 3
    at = third + data[third:].index(b'"pacs"') + 2
    data[at] = ord("q")  # "pacs" -> "pqcs"
    path.write_bytes(bytes(data))
    r = run_bin("fiona", "audit", "verify", config=gateway.config)
    assert r.returncode == 1 and "record 3: edited" in r.stderr, r.stdout + r.stderr
