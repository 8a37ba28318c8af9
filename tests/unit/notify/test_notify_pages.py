"""The Status page lists the notification channels and a delivery that failed for good."""

from __future__ import annotations

from fionagw.config import load_config
from fionagw.notify import emit
from fionagw.notify.deliver import send_notifications
from fionagw.web.users import UserStore
from support.site import free_port
from support.web import ADMIN, ADMIN_PASSWORD, client_login, web_config


def test_status_page_shows_failed_notifications(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from fionaweb import create_app

    notifications = {
        "retry": {"tries_per_run": 1, "max_attempts": 1},
        "channels": {
            "down": {"type": "webhook", "url": f"http://127.0.0.1:{free_port()}/x"},
            "keep": {"type": "none"},
        },
        "subscriptions": [{"events": ["send-failed"], "channel": "down"}],
    }
    cfg = load_config(web_config(tmp_path, notifications=notifications))
    cfg.paths.create()
    emit(cfg, "send-failed", ref="1.2.3", project="DEMO", reason="send")
    assert send_notifications(cfg, None).counts["failed"] == 1
    store = UserStore.for_site(cfg)
    store.add_user(ADMIN, ADMIN_PASSWORD)
    store.grant(ADMIN, "admin")
    client = create_app(cfg).test_client()
    client_login(client)
    html = client.get("/status/").get_data(as_text=True)
    assert '<table id="notifications">' in html
    assert 'class="notify-failed"><td>down (webhook)</td><td>1 failed</td>' in html
    assert "delivery failed: send-failed at" in html and "127.0.0.1" in html
    assert "keep (none)</td><td>nothing yet" in html
    assert "1.2.3" not in html  # the study's original UID is not shown


def test_settings_test_delivery_button(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json
    import os

    from fionaweb import create_app
    from support.notify_peers import HttpReceiver
    from support.web import csrf_from

    hook = HttpReceiver("page-secret")
    try:
        secrets = tmp_path / "secrets.json"
        secrets.write_text(json.dumps({"notifications": {"hook": {"secret": "page-secret"}}}))
        os.chmod(secrets, 0o600)
        notifications = {
            "channels": {"hook": {"type": "webhook", "url": hook.url + "/settings"}},
            "subscriptions": [],
        }
        config = web_config(tmp_path, notifications=notifications)
        data = json.loads(config.read_text())
        data["tracker"]["secrets_file"] = str(secrets)
        config.write_text(json.dumps(data))
        cfg = load_config(config)
        cfg.paths.create()
        store = UserStore.for_site(cfg)
        store.add_user(ADMIN, ADMIN_PASSWORD)
        store.grant(ADMIN, "admin")
        client = create_app(cfg).test_client()
        client_login(client)
        html = client.get("/settings/").get_data(as_text=True)
        assert '<tr data-channel="hook"><td>hook</td><td>webhook</td>' in html
        r = client.post("/settings/notify-test/hook", data={"csrf_token": csrf_from(html)})
        assert r.status_code == 302
        html = client.get("/settings/").get_data(as_text=True)
        assert "hook: delivered" in html and "page-secret" not in html
        [doc] = hook.events()
        assert doc["type"] == "test"
        r = client.post("/settings/notify-test/nope", data={"csrf_token": csrf_from(html)})
        assert r.status_code == 404
    finally:
        hook.close()
