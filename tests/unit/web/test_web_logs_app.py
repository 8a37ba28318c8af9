"""Logs page in-process: downloads, a follower that survives rotation, bad filters explained."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path
from typing import Any

from fionagw.config import load_config
from fionagw.web import logsearch
from fionagw.web.logsearch import LogFilter
from support.site import read_log
from support.web import client_login, csrf_from, web_config
from support.web_logs import OLD_LINES, fill_logs


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
        # + the traceback line, + the audit record of the raw file's download above (the
        # export's own record is written after the export)
        assert len(entries) == on_disk + len(OLD_LINES) + 1 + 1
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
                "logs/audit.log",  # the downloads above are in the audit trail
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
