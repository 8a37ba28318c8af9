"""The Status page says a daemon an operator stopped is stopped by operator, not down."""

from __future__ import annotations

from typing import Any

from fionagw.ops.daemon import stop_marker
from support.web import client_login


def test_a_daemon_stopped_by_an_operator_is_shown_as_such(app_client: tuple[Any, Any]) -> None:
    app, client = app_client
    client_login(client)
    paths = app.config["FIONA_CFG"].paths
    html = client.get("/status/").get_data(as_text=True)
    assert "stopped by operator" not in html
    marker = stop_marker(paths.pidfile("storescpd"))
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text("0\n")
    html = client.get("/status/").get_data(as_text=True)
    assert 'class="state-stopped">stopped by operator<' in html
