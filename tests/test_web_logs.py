"""Logs page: filter by level, component, time and text; live stream (SSE); downloads."""

from __future__ import annotations

import csv
import io
import json
import logging
import logging.handlers
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from web_fixtures import (
    ADMIN,
    ADMIN_PASSWORD,
    WebSite,
    client_login,
    csrf_from,
    screenshot,
    web_config,
)

from fionagw.config import SiteConfig, load_config
from fionagw.ops.log import JsonLinesFormatter, read_log
from fionagw.web import logsearch
from fionagw.web.logsearch import LogFilter

pytest_plugins = ["web_fixtures"]

OLD_LINES = [  # an earlier day of a cron job, written by hand with known times
    {
        "time": "2024-03-01T08:00:00.000",
        "level": "INFO",
        "component": "clearOldFiles",
        "pid": 7,
        "message": "study deleted",
        "study_uid": "1.2.3.old",
        "bytes": 1024,
    },
    {
        "time": "2024-03-01T09:30:00.000",
        "level": "ERROR",
        "component": "clearOldFiles",
        "pid": 7,
        "message": "tracker unreadable; nothing deleted",
    },
]


class ComponentLogs:
    """Real JSON-lines logs (fionagw.ops.log's formatter, rotating handler) for some components."""

    def __init__(self, cfg: SiteConfig) -> None:
        self.cfg = cfg
        self.loggers: dict[str, logging.Logger] = {}

    def __call__(self, component: str) -> logging.Logger:
        if component not in self.loggers:
            self.cfg.paths.logs.mkdir(parents=True, exist_ok=True)
            logger = logging.getLogger(f"test-web-logs.{uuid.uuid4().hex}.{component}")
            handler = logging.handlers.RotatingFileHandler(
                self.cfg.paths.logfile(component), maxBytes=10**7, backupCount=3, encoding="utf-8"
            )
            handler.setFormatter(JsonLinesFormatter(component))
            logger.addHandler(handler)
            logger.setLevel(logging.DEBUG)
            logger.propagate = False
            self.loggers[component] = logger
        return self.loggers[component]

    def close(self) -> None:
        for logger in self.loggers.values():
            for h in list(logger.handlers):
                logger.removeHandler(h)
                h.close()


def fill_logs(cfg: SiteConfig) -> ComponentLogs:
    logs = ComponentLogs(cfg)
    logs("storescpd").info(
        "association accepted", extra={"calling": "MRI1", "study_uid": "1.2.840.1"}
    )
    logs("storescpd").warning("slow write", extra={"seconds": 2.5})
    logs("processSingleFile").debug("series classified", extra={"classify_type": ["T1"]})
    logs("processSingleFile").error("not DICOM; moved to broken/", extra={"file": "/x/broken.bin"})
    old = cfg.paths.logfile("clearOldFiles")
    old.write_text(
        "".join(json.dumps(e) + "\n" for e in OLD_LINES) + "Traceback (most recent call last):\n"
    )
    return logs


@pytest.fixture
def component_logs(web_site: WebSite) -> Iterator[ComponentLogs]:
    logs = fill_logs(web_site.cfg)
    yield logs
    logs.close()


def _rows(page: Any) -> list[list[str]]:
    return [
        [c.strip() for c in row.locator("td").all_inner_texts()]
        for row in page.locator("#log-rows tr").all()
    ]


def _apply(page: Any, **fields: Any) -> None:
    page.click("button[name=reset]")
    for name, value in fields.items():
        if name == "component":
            page.select_option("select[name=component]", value)
        elif name == "min_level":
            page.select_option("select[name=min_level]", value)
        else:
            page.fill(f"input[name={name}]", value)
    page.click("button[name=apply]")
    page.wait_for_load_state()


def test_logs_page_filters(
    web_site: WebSite, admin_page: Any, component_logs: ComponentLogs
) -> None:
    page = admin_page
    page.goto(web_site.url + "logs/")
    rows = _rows(page)
    messages = [r[3] for r in rows]
    for m in (
        "association accepted",
        "slow write",
        "series classified",
        "not DICOM; moved to broken/",
        "study deleted",
        "Traceback (most recent call last):",
    ):
        assert m in messages, messages
    assert rows[0][3] != "study deleted"  # newest first: the 2024 lines are at the bottom
    assert [r[3] for r in rows[-3:]] == [
        "Traceback (most recent call last):",
        "tracker unreadable; nothing deleted",
        "study deleted",
    ]
    assert any("study_uid=1.2.840.1" in r[4] and "calling=MRI1" in r[4] for r in rows)
    screenshot(page, "logs")

    _apply(page, min_level="WARNING")  # a line that is not JSON (a traceback) has no level: kept
    assert sorted(r[3] for r in _rows(page)) == [
        "Traceback (most recent call last):",
        "not DICOM; moved to broken/",
        "slow write",
        "tracker unreadable; nothing deleted",
    ]
    _apply(page, component=["processSingleFile"])
    assert sorted(r[3] for r in _rows(page)) == ["not DICOM; moved to broken/", "series classified"]
    _apply(page, text="BROKEN")  # case-insensitive, also in the details
    assert [r[3] for r in _rows(page)] == ["not DICOM; moved to broken/"]
    _apply(page, since="2024-03-01T09:00", until="2024-03-02T00:00")
    assert [r[3] for r in _rows(page)] == [
        "Traceback (most recent call last):",
        "tracker unreadable; nothing deleted",
    ]
    screenshot(page, "logs-filtered")
    # the search text stays out of the URL (it may hold anything a user types)
    assert page.url == web_site.url + "logs/"
    page.click("button[name=reset]")
    assert len(_rows(page)) == len(rows)


def test_live_stream_shows_a_new_line(
    web_site: WebSite, admin_page: Any, component_logs: ComponentLogs
) -> None:
    page = admin_page
    page.goto(web_site.url + "logs/")
    page.click("#live-toggle")
    page.wait_for_function(
        "document.getElementById('live-state').textContent.startsWith('live stream on')"
    )
    marker = f"new line {uuid.uuid4().hex}"
    component_logs("heartbeat").warning(
        marker, extra={"peer": "FIONA"}
    )  # a component new to the page
    first = page.locator("#log-rows tr").first
    first.locator("td", has_text=marker).wait_for(timeout=10_000)
    cells = first.locator("td").all_inner_texts()
    assert cells[1:4] == ["WARNING", "heartbeat", marker] and cells[4] == "peer=FIONA"
    screenshot(page, "logs-live")
    page.click("#live-toggle")
    assert page.inner_text("#live-state") == "live stream off"


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


def test_downloads(app_client: tuple[Any, Any]) -> None:
    app, client = app_client
    cfg = app.config["FIONA_CFG"]
    logs = fill_logs(cfg)
    try:
        rotated = cfg.paths.logfile("storescpd").with_name("storescpd.log.1")
        rotated.write_text(
            json.dumps(
                {
                    "time": "2024-01-01T00:00:00.000",
                    "level": "INFO",
                    "component": "storescpd",
                    "message": "from the rotated file",
                }
            )
            + "\n"
        )
        client_login(client)

        r = client.get("/logs/file/storescpd")
        assert r.status_code == 200 and r.data == cfg.paths.logfile("storescpd").read_bytes()
        assert "attachment" in r.headers["Content-Disposition"]
        assert client.get("/logs/file/..%2Fweb%2Fusers.db").status_code == 404
        assert client.get("/logs/file/nonexistent").status_code == 404

        r = client.get("/logs/export.json")
        entries = json.loads(r.data)
        on_disk = sum(
            len(read_log(p))
            for p in (
                cfg.paths.logfile("storescpd"),
                rotated,
                cfg.paths.logfile("processSingleFile"),
            )
        )
        assert len(entries) == on_disk + len(OLD_LINES) + 1  # + the traceback line
        assert (
            entries[0]["message"] == "from the rotated file"
        )  # oldest first, rotated files included

        token = csrf_from(client.get("/logs/").get_data(as_text=True))
        client.post("/logs/", data={"csrf_token": token, "min_level": "ERROR"})
        rows = list(
            csv.DictReader(io.StringIO(client.get("/logs/export.csv").get_data(as_text=True)))
        )
        assert [(x["component"], x["message"]) for x in rows] == [
            ("clearOldFiles", "tracker unreadable; nothing deleted"),
            ("clearOldFiles", "Traceback (most recent call last):"),
            ("processSingleFile", "not DICOM; moved to broken/"),
        ]
        assert rows[2]["details"] == "file=/x/broken.bin" and rows[2]["level"] == "ERROR"

        r = client.get("/logs/all.zip")
        with zipfile.ZipFile(io.BytesIO(r.data)) as z:
            names = sorted(z.namelist())
            assert names == [
                "logs/clearOldFiles.log",
                "logs/processSingleFile.log",
                "logs/storescpd.log",
                "logs/storescpd.log.1",
            ]
            assert z.read("logs/storescpd.log.1") == rotated.read_bytes()
    finally:
        logs.close()


def test_follower_survives_rotation(tmp_path: Path) -> None:
    cfg = load_config(web_config(tmp_path))
    cfg.paths.logs.mkdir(parents=True)
    log = cfg.paths.logfile("sendFiles")
    log.write_text(
        json.dumps({"time": "2025-01-01T00:00:00", "level": "INFO", "message": "before"}) + "\n"
    )
    follower = logsearch.LogFollower(cfg, LogFilter())
    assert follower.poll() == []  # only what is new
    with open(log, "a") as f:
        f.write(
            json.dumps({"time": "2025-01-01T00:00:01", "level": "INFO", "message": "one"}) + "\n"
        )
        f.write('{"time": "2025-01-01T00:00:02", "level": "INFO", "mess')  # half a line: not yet
    assert [e["message"] for e in follower.poll()] == ["one"]
    with open(log, "a") as f:
        f.write('age": "two"}\n')
    assert [e["message"] for e in follower.poll()] == ["two"]
    log.rename(log.with_name("sendFiles.log.1"))
    log.write_text(
        json.dumps({"time": "2025-01-01T00:00:03", "level": "INFO", "message": "three"}) + "\n"
    )
    assert [e["message"] for e in follower.poll()] == ["three"]
    assert [e["message"] for e in logsearch.search(cfg, LogFilter(), 2)[0]] == ["two", "three"]
    assert logsearch.search(cfg, LogFilter(), 2)[1] is True


def test_bad_filter_is_explained(app_client: tuple[Any, Any]) -> None:
    _app, client = app_client
    client_login(client)
    token = csrf_from(client.get("/logs/").get_data(as_text=True))
    r = client.post(
        "/logs/", data={"csrf_token": token, "since": "yesterday"}, follow_redirects=True
    )
    assert (
        "Filter not applied: since: expected a date and time like 2025-01-31T12:00, got &#39;yesterday&#39;"
        in r.get_data(as_text=True)
    )
