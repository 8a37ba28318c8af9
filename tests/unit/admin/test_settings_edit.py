"""The Settings page's editing in-process: a valid change is written (previous file kept,
audited, restart asked for), an invalid one shows its error at the field and leaves the file
alone, secrets are write-only."""

from __future__ import annotations

import json
import re
import stat
from typing import Any

from fionagw.admin import audit, settings
from fionagw.config import load_config
from support.site import free_port
from support.web import client_login, csrf_from


def _post(client: Any, path: str, data: dict[str, str]) -> Any:
    token = csrf_from(client.get("/settings/").get_data(as_text=True))
    return client.post(path, data={**data, "csrf_token": token})


def test_a_valid_change_is_saved_with_a_backup_and_a_restart_prompt(
    app_client: tuple[Any, Any],
) -> None:
    app, client = app_client
    cfg = app.config["FIONA_CFG"]
    client_login(client)
    before = cfg.config_file.read_bytes()
    port = free_port()
    r = _post(client, "/settings/", {"DICOMPORT": str(port), "sending.max_attempts": "7",
                                     "receiver.allowed_ips": "127.0.0.1\n10.0.0.0/8"})  # fmt: skip
    assert r.status_code == 303, r.get_data(as_text=True)
    data = json.loads(cfg.config_file.read_text())
    assert data["DICOMPORT"] == port and data["sending"] == {"max_attempts": 7}
    assert data["receiver"]["allowed_ips"] == ["127.0.0.1", "10.0.0.0/8"]
    assert data["logging"] == {"level": "DEBUG"}  # untouched keys stay
    [backup] = cfg.config_file.parent.glob("config.json.2*")
    assert backup.read_bytes() == before
    assert load_config(cfg.config_file).dicom_port == port
    page = client.get("/settings/").get_data(as_text=True)
    assert 'id="restart-prompt"' in page and "the DICOM receiver" in page
    assert settings.restart_needed(cfg) == ["storectl"]
    [rec] = audit.search(cfg, action="settings-change")
    assert rec["who"] == "admin" and rec["from"] == "127.0.0.1"
    assert rec["changed"]["DICOMPORT"]["new"] == port and rec["backup"] == backup.name
    # without fiona run the restart cannot be done here: the page says what to run instead
    r = _post(client, "/settings/restart", {"service": "storectl"})
    assert "fiona run does not serve this site" in client.get("/settings/").get_data(as_text=True)
    assert not settings.restart_request_file(cfg).exists()


def test_an_invalid_value_is_shown_at_its_field_and_nothing_written(
    app_client: tuple[Any, Any],
) -> None:
    app, client = app_client
    cfg = app.config["FIONA_CFG"]
    client_login(client)
    before = cfg.config_file.read_bytes()
    for form, key, text in (
        ({"DICOMPORT": "70000"}, "DICOMPORT", "1-65535"),
        ({"DICOMPORT": "abc"}, "DICOMPORT", "not a whole number"),
        ({"receiver.allowed_ips": "not-an-ip", "arrival.incoming_days": "3"},
         "receiver.allowed_ips", "not an address or network"),
        ({"arrival.quiet_seconds": "0"}, "arrival.quiet_seconds", "at least 1"),
    ):  # fmt: skip
        r = _post(client, "/settings/", form)
        html = r.get_data(as_text=True)
        assert r.status_code == 400, html
        field = re.search(rf'data-field="{re.escape(key)}">(.*?)</div>', html, re.S)
        assert field and "field-error" in field.group(1) and text in field.group(1), (key, html)
        assert cfg.config_file.read_bytes() == before
    assert not list(cfg.config_file.parent.glob("config.json.2*"))
    assert audit.search(cfg, action="settings-change") == []


def test_secrets_are_write_only(app_client: tuple[Any, Any], tmp_path: Any) -> None:
    app, client = app_client
    cfg = app.config["FIONA_CFG"]
    client_login(client)
    # the fixture's site has no secrets file: set one on the page's own config first
    data = json.loads(cfg.config_file.read_text())
    data["tracker"]["secrets_file"] = str(tmp_path / "secret" / "secrets.json")
    cfg.config_file.write_text(json.dumps(data))
    cfg2 = load_config(cfg.config_file)
    app.config["FIONA_CFG"] = cfg2
    token = "0123456789abcdef0123456789ABCDEF"
    r = _post(client, "/settings/secret", {"kind": "tokens", "name": "Incoming", "value": token})
    assert r.status_code == 303
    path = cfg2.tracker.secrets_file
    assert json.loads(path.read_text())["tokens"]["Incoming"] == token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    page = client.get("/settings/").get_data(as_text=True)
    assert token not in page and "Incoming" in page
    assert token not in audit.audit_file(cfg2).read_text()
    r = _post(client, "/settings/secret", {"kind": "tokens", "name": "Incoming", "value": "short"})
    assert "32 hexadecimal" in client.get("/settings/").get_data(as_text=True)
    assert [x["action"] for x in audit.search(cfg2)] == ["secret-set"]


def test_the_scheduler_settings_are_saved_and_checked_at_the_field(
    app_client: tuple[Any, Any],
) -> None:
    """The Scheduler section (heartbeat's kill grace, receiver restart and C-ECHO, the
    workflow runner's concurrency and runtime): cron jobs read them, so no restart prompt."""
    app, client = app_client
    cfg = app.config["FIONA_CFG"]
    client_login(client)
    before = cfg.config_file.read_bytes()
    for form, key, text in (
        ({"workflows.max_concurrent": "99"}, "workflows.max_concurrent", "1-64"),
        ({"workflows.runtime": "lxc"}, "workflows.runtime", "auto, podman, docker"),
        ({"heartbeat.grace_seconds": "0"}, "heartbeat.grace_seconds", "positive"),
    ):
        r = _post(client, "/settings/", form)
        html = r.get_data(as_text=True)
        assert r.status_code == 400, html
        field = re.search(rf'data-field="{re.escape(key)}">(.*?)</div>', html, re.S)
        assert field and text in field.group(1), (key, html)
        assert cfg.config_file.read_bytes() == before
    r = _post(client, "/settings/", {"workflows.max_concurrent": "4", "workflows.runtime": "Podman",
                                     "heartbeat.grace_seconds": "2.5",
                                     "heartbeat.restart.present": "1"})  # fmt: skip
    assert r.status_code == 303, r.get_data(as_text=True)
    new = load_config(cfg.config_file)
    assert new.workflows.max_concurrent == 4 and new.workflows.runtime == "podman"
    assert new.heartbeat.grace_seconds == 2.5 and new.heartbeat.restart is False
    assert settings.restart_needed(cfg) == []
    page = client.get("/settings/").get_data(as_text=True)
    assert re.search(r'data-field="workflows.runtime">.*?<option selected>podman', page, re.S)
