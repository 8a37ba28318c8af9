"""Logs page: the live stream is server-sent events from the running `fiona web`."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests

from support.web import ADMIN, ADMIN_PASSWORD, WebSite, csrf_from
from support.web_logs import ComponentLogs, fill_logs

pytestmark = pytest.mark.slow


@pytest.fixture
def component_logs(web_site: WebSite) -> Iterator[ComponentLogs]:
    logs = fill_logs(web_site.cfg)
    yield logs
    logs.close()


def test_stream_is_server_sent_events(web_site: WebSite, component_logs: ComponentLogs) -> None:
    s = requests.Session()
    token = csrf_from(s.get(web_site.url + "login", timeout=10).text)
    r = s.post(
        web_site.url + "login",
        data={"username": ADMIN, "password": ADMIN_PASSWORD, "csrf_token": token},
        timeout=10,
    )
    assert "/login" not in r.url
    with s.get(
        web_site.url + "logs/stream",
        stream=True,
        timeout=20,
        headers={"Accept": "text/event-stream"},
    ) as resp:
        assert resp.status_code == 200 and resp.headers["Content-Type"].startswith(
            "text/event-stream"
        )
        lines = resp.iter_lines(decode_unicode=True)
        assert next(lines) == "retry: 2000"
        component_logs("storescpd").info("streamed", extra={"n": 3})
        data = next(line for line in lines if line.startswith("data: "))
    entry = json.loads(data[len("data: ") :])
    assert (entry["level"], entry["component"], entry["message"], entry["details"]) == (
        "INFO",
        "storescpd",
        "streamed",
        "n=3",
    )
