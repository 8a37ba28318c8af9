"""The Assign page's Resend from PACS button: shown for an assigned study whose images were
cleared from the gateway when a PACS source is configured, to users with the assign role on
its project; the POST lists the study for moveFromScanner (resend) and writes the audit line."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fionagw.config import load_config
from fionagw.web.users import UserStore
from support.assign_seed import seed
from support.web import ADMIN, ADMIN_PASSWORD, client_login, csrf_from, web_config

pytestmark = pytest.mark.slow  # an app per test (about 2-3 s each)

PACS = {"sources": {"clinical": {"host": "127.0.0.1", "port": 11112, "called_aetitle": "CLINICAL"}}}


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Any, Any, list[str]]]:
    from fionaweb import create_app

    cfg = load_config(web_config(tmp_path, pacs=PACS))
    store = UserStore.for_site(cfg)
    store.add_user(ADMIN, ADMIN_PASSWORD)
    store.grant(ADMIN, "admin")
    store.add_user("viewer", "viewer-password-1")
    store.grant("viewer", "review", "DEMO")
    uids = seed(cfg, 2, assigned={0: "DEMO"})
    app = create_app(cfg)
    yield cfg, app, uids


def _study_url(client: Any, n: int) -> str:
    html = client.get("/assign/").get_data(as_text=True)
    links = re.findall(r'href="(/assign/study/[0-9a-f]+)"', html)
    assert links, html
    for link in links:
        page = client.get(link).get_data(as_text=True)
        if f"Seeded study {n}<" in page:
            return link
    raise AssertionError(f"study {n} not on the list")


def test_resend_button_queues_a_retrieve(site: tuple[Any, Any, list[str]]) -> None:
    cfg, app, uids = site
    client = app.test_client()
    client_login(client)
    url = _study_url(client, 0)
    page = client.get(url).get_data(as_text=True)
    assert "Resend from PACS" in page
    r = client.post(url + "/resend", data={"csrf_token": csrf_from(page)})
    assert r.status_code == 303
    entry = json.loads((cfg.paths.active_scans / uids[0]).read_text())
    assert entry["resend"] is True and entry["by"] == ADMIN and entry["attempts"] == 0
    assert "Resend from PACS queued" in client.get(url).get_data(as_text=True)
    # a second press does not list it twice
    r = client.post(url + "/resend", data={"csrf_token": csrf_from(page)})
    assert "already queued" in client.get(url).get_data(as_text=True)
    audits = [
        json.loads(line)
        for p in cfg.paths.logs.glob("audit*")
        for line in p.read_text().splitlines()
    ]
    assert any(a.get("action") == "resend" and a.get("user") == ADMIN for a in audits), audits


def test_no_button_without_assignment_role_or_when_the_images_are_here(
    site: tuple[Any, Any, list[str]],
) -> None:
    cfg, app, uids = site
    client = app.test_client()
    client_login(client)
    assert "Resend from PACS" not in client.get(_study_url(client, 1)).get_data(as_text=True)
    (cfg.paths.raw / uids[0]).mkdir(parents=True)  # the images are still on the gateway
    url = _study_url(client, 0)
    assert "Resend from PACS" not in client.get(url).get_data(as_text=True)
    (cfg.paths.raw / uids[0]).rmdir()
    client = app.test_client()
    client_login(client, "viewer", "viewer-password-1")
    page = client.get(url).get_data(as_text=True)
    assert "Resend from PACS" not in page
    r = client.post(url + "/resend", data={"csrf_token": csrf_from(page)})
    assert r.status_code == 403
    assert not (cfg.paths.active_scans / uids[0]).exists()
