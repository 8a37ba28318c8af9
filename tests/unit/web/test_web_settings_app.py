"""Settings page in-process: for admins only, and the masking rules for secrets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fionagw.config import load_config
from fionagw.web.masking import MASK, masked, secret_values
from support.web import client_login, web_config

TOKEN = "0123456789abcdef0123456789ABCDEF"


def test_settings_is_for_admins_only(app_client: tuple[Any, Any]) -> None:
    app, client = app_client
    store = app.extensions["fiona_users"]
    store.add_user("ivan", "ivan-password-1")
    store.grant("ivan", "assign", "*")
    client_login(client, "ivan", "ivan-password-1")
    assert client.get("/settings/").status_code == 403


def test_masking_rules(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.json"
    secrets.write_text(
        json.dumps({"tokens": {"Incoming": TOKEN}, "sftp": {"password": "pw-from-secrets"}})
    )
    cfg = load_config(
        web_config(tmp_path, tracker={"backend": "local", "secrets_file": str(secrets)})
    )
    values, problem = secret_values(cfg)
    assert problem == "" and values == {TOKEN, "pw-from-secrets"}
    data = {
        "password": "",
        "PASSWD": "x",
        "tls_key": "/etc/k.pem",
        "secrets_file": "/etc/s.json",
        "hmac_secret": 12345,
        "sftp": {"user": "u", "host": "pw-from-secrets.example.org"},
        "list": ["ok", f"Bearer {TOKEN}"],
        "port": 104,
    }
    assert masked(data, values) == {
        "password": "",
        "PASSWD": MASK,
        "tls_key": MASK,
        "secrets_file": "/etc/s.json",
        "hmac_secret": MASK,
        "sftp": {"user": "u", "host": MASK},
        "list": ["ok", MASK],
        "port": 104,
    }
    # an unreadable secrets file is reported, not shown
    secrets.write_text("{not json")
    assert secret_values(cfg)[1].startswith(f"{secrets}: cannot read")
