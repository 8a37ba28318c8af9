"""The Destinations page in-process: a destination added by type is in config.json as the
jobs load it, a bad value is shown at its field with nothing written, an edit, and the test
button against the saved file (a closed port fails)."""

from __future__ import annotations

import json
import re
from typing import Any

from fionagw.admin import audit
from fionagw.config import load_config
from support.site import free_port
from support.web import client_login, csrf_from


def _post(client: Any, path: str, data: dict[str, str]) -> Any:
    token = csrf_from(client.get("/destinations/").get_data(as_text=True))
    return client.post(path, data={**data, "csrf_token": token})


def test_add_edit_and_test_a_destination(app_client: tuple[Any, Any]) -> None:
    app, client = app_client
    cfg = app.config["FIONA_CFG"]
    client_login(client)
    before = cfg.config_file.read_bytes()
    closed = free_port()
    bad = {"new": "1", "name": "pacs2", "type": "dicom", "host": "127.0.0.1", "port": "abc",
           "called_aetitle": "PACS"}  # fmt: skip
    r = _post(client, "/destinations/save", bad)
    html = r.get_data(as_text=True)
    assert r.status_code == 400
    field = re.search(r'id="new-destination".*?data-field="port">(.*?)</div>', html, re.S)
    assert field and "field-error" in field.group(1), html[-4000:]
    assert 'value="abc"' in field.group(1)  # as typed
    assert cfg.config_file.read_bytes() == before
    r = _post(client, "/destinations/save", {**bad, "port": str(closed), "timeout": "3"})
    assert r.status_code == 303, r.get_data(as_text=True)
    spec = json.loads(cfg.config_file.read_text())["destinations"]["pacs2"]
    assert spec == {"type": "dicom", "host": "127.0.0.1", "port": closed,
                    "called_aetitle": "PACS", "timeout": 3}  # fmt: skip
    assert "pacs2" in load_config(cfg.config_file).destinations
    r = _post(client, "/destinations/test/pacs2", {})
    assert r.status_code == 303
    assert "pacs2: FAILED" in client.get("/destinations/").get_data(as_text=True)
    r = _post(client, "/destinations/save", {"name": "pacs2", "host": "127.0.0.1",
                                             "port": str(closed), "called_aetitle": "PACS2",
                                             "timeout": "3"})  # fmt: skip
    assert r.status_code == 303
    assert (
        json.loads(cfg.config_file.read_text())["destinations"]["pacs2"]["called_aetitle"]
        == "PACS2"
    )
    acts = [(x["action"], x["object"]) for x in audit.search(cfg)][::-1]
    assert acts == [("destination-add", "pacs2"), ("destination-test", "pacs2"),
                    ("destination-change", "pacs2")]  # fmt: skip
    assert len(list(cfg.config_file.parent.glob("config.json.2*"))) == 2


def test_each_type_has_its_own_form_with_typed_fields(
    app_client: tuple[Any, Any], tmp_path: Any
) -> None:
    """The new-destination forms are per type (only the keys fionagw.send reads for it); the
    values are written as their kinds (port and bandwidth numbers, verify true/false) and a
    value of the wrong kind is shown at its field with nothing written."""
    from fionagw.admin.destinations import form_fields

    app, client = app_client
    cfg = app.config["FIONA_CFG"]
    client_login(client)
    page = client.get("/destinations/").get_data(as_text=True)
    forms = dict(
        re.findall(r'<details class="new-type" data-type="(\w+)"(.*?)</details>', page, re.S)
    )
    assert set(forms) == {"dicom", "folder", "sftp", "https"}
    fields = {t: re.findall(r'data-field="([\w.]+)"', html) for t, html in forms.items()}
    assert fields["folder"] == ["name", "path"]
    assert fields["sftp"][:8] == ["name", "host", "port", "user", "remote_dir", "known_hosts",
                                  "key_file", "password_file"]  # fmt: skip
    assert {"url", "ca_file", "chunk_mb"} <= set(fields["https"]) and "host" not in fields["https"]
    assert {"host", "port", "called_aetitle", "verify"} <= set(fields["dicom"])
    assert all(f.key != "type" for t in fields for f in form_fields(t))
    before = cfg.config_file.read_bytes()
    known = tmp_path / "known_hosts"
    known.write_text("")
    sftp = {"new": "1", "name": "archive", "type": "sftp", "host": "127.0.0.1", "port": "2222",
            "user": "fiona", "remote_dir": "in", "known_hosts": str(known),
            "password_file": str(tmp_path / "pw"), "bandwidth_mb_s": "fast"}  # fmt: skip
    r = _post(client, "/destinations/save", sftp)
    html = r.get_data(as_text=True)
    assert r.status_code == 400
    block = re.search(
        r'data-type="sftp" open>.*?data-field="bandwidth_mb_s">(.*?)</div>', html, re.S
    )
    assert block and "not a number" in block.group(1) and 'value="fast"' in block.group(1)
    assert cfg.config_file.read_bytes() == before
    r = _post(client, "/destinations/save", {**sftp, "bandwidth_mb_s": "12.5"})
    assert r.status_code == 303, r.get_data(as_text=True)
    spec = json.loads(cfg.config_file.read_text())["destinations"]["archive"]
    assert spec["port"] == 2222 and spec["bandwidth_mb_s"] == 12.5 and spec["user"] == "fiona"
    assert "archive" in load_config(cfg.config_file).destinations
    r = _post(client, "/destinations/save", {"new": "1", "name": "pacs3", "type": "dicom",
                                             "host": "127.0.0.1", "port": "11112",
                                             "called_aetitle": "PACS", "verify": "false"})  # fmt: skip
    assert r.status_code == 303, r.get_data(as_text=True)
    assert json.loads(cfg.config_file.read_text())["destinations"]["pacs3"]["verify"] is False
    page = client.get("/destinations/").get_data(as_text=True)
    mine = page[page.index('id="destination-pacs3"') :]
    assert re.search(r'data-field="verify">.*?<option selected>false', mine, re.S)
