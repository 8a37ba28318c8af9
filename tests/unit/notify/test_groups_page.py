"""The Groups page in-process: list, details, send report, download it, add a study; a user
without the assign role on the group's project is refused."""

from __future__ import annotations

import pytest

from fionagw.config import load_config
from fionagw.notify.events import read_events
from fionagw.notify.groups import add_studies, create_group, load_groups
from fionagw.web.users import UserStore
from support.web import ADMIN, ADMIN_PASSWORD, client_login, csrf_from, web_config


@pytest.mark.slow  # two accounts (password hashing) and a dozen requests: ~4 s
def test_groups_page(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from fionaweb import create_app

    cfg = load_config(web_config(tmp_path))
    cfg.paths.create()
    create_group(cfg, "COHORT1", "DEMO", called="^DEMO_AE$")
    create_group(cfg, "HIDDEN", "OTHER")
    add_studies(cfg, "COHORT1", ["1.2.826.0.1.3680043.99.1"])
    store = UserStore.for_site(cfg)
    store.add_user(ADMIN, ADMIN_PASSWORD)
    store.grant(ADMIN, "admin")
    store.add_user("ann", "ann-password-1")
    store.grant("ann", "assign", "DEMO")
    app = create_app(cfg)
    client = app.test_client()
    client_login(client, "ann", "ann-password-1")
    html = client.get("/groups/").get_data(as_text=True)
    assert ">COHORT1</a></td><td>DEMO</td><td>1</td>" in html and "HIDDEN" not in html
    assert client.get("/groups/HIDDEN").status_code == 403
    html = client.get("/groups/COHORT1").get_data(as_text=True)
    assert "called AE ^DEMO_AE$" in html and "not every study is done yet" in html
    token = csrf_from(html)
    r = client.post("/groups/COHORT1/report", data={"csrf_token": token})
    assert r.status_code == 302
    [report] = load_groups(cfg)["COHORT1"]["reports"]
    assert report["reason"] == "manual"
    html = client.get("/groups/COHORT1").get_data(as_text=True)
    assert "sendNotifications delivers it" in html and report["file"] in html
    r = client.get(f"/groups/COHORT1/reports/{report['file']}")
    assert r.status_code == 200 and r.get_data().startswith(b"pseudonym,event,study_uid")
    assert client.get("/groups/COHORT1/reports/..%2Fgroups.json").status_code == 404
    r = client.post("/groups/COHORT1/add", data={"csrf_token": token, "study": "9.9.9"})
    html = client.get("/groups/COHORT1").get_data(as_text=True)
    assert "no such study in the gateway" in html
    assert [e["type"] for e in read_events(cfg)] == ["report-generated", "group-report"]
