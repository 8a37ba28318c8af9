"""Status page data: images per hour from archive times, transfers per day, cron intervals, and
the SVG bar chart."""

from __future__ import annotations

import os
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from fionagw.config import load_config
from fionagw.tracking.records import COMPLETE_ERROR, COMPLETE_OK, Transfer
from fionagw.web import statusdata
from fionagw.web.svgplot import bar_chart
from support.web import web_config

SVG = "{http://www.w3.org/2000/svg}"


def _today(offset_days: int = 0) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(time.time() - offset_days * 86400))


def test_images_per_hour_from_archive_times(tmp_path: Path) -> None:
    cfg = load_config(web_config(tmp_path))
    now = time.time()
    hour = int(now // 3600)
    study = cfg.paths.archive / "scp_1.2.3"
    study.mkdir(parents=True)
    for i, hours_ago in enumerate([0, 0, 1, 30, 200]):  # the last is outside the week
        f = study / f"MR.1.2.3.{i}"
        f.write_bytes(b"x")
        t = (hour - hours_ago) * 3600 + 60
        os.utime(f, (t, t))
    old = cfg.paths.archive / "scp_9.9"  # a folder untouched for 8 days is not even read
    old.mkdir()
    (old / "CT.9").write_bytes(b"x")
    os.utime(old / "CT.9", (now - 8 * 86400,) * 2)
    os.utime(old, (now - 8 * 86400,) * 2)
    counts, first = statusdata.images_per_hour(cfg, now)
    assert len(counts) == 168 and first == hour - 167
    assert counts[-1] == 2 and counts[-2] == 1 and counts[-31] == 1 and sum(counts) == 4
    (study / "MR.1.2.3.new").write_bytes(
        b"x"
    )  # the folder changed: counted again, not from the cache
    assert statusdata.images_per_hour(cfg, now)[0][-1] == 3


def test_transfers_per_day_and_cron_intervals() -> None:
    now = time.time()

    def t(days: float, complete: str) -> Transfer:
        return Transfer(
            "1.2", 1, "DEMO", "DEMO001", transfer_date=_today(days), transfers_complete=complete
        )

    dates, sent, failed = statusdata.transfers_per_day(
        [
            t(0, COMPLETE_OK),
            t(1, COMPLETE_ERROR),
            t(6, COMPLETE_OK),
            t(7, COMPLETE_OK),
            Transfer("1.3", 1, "DEMO", "DEMO002"),
        ],
        now,
    )
    assert dates[-1] == time.strftime("%Y-%m-%d") and len(dates) == 7
    assert sent == [1, 0, 0, 0, 0, 0, 1] and failed == [0, 0, 0, 0, 0, 1, 0]

    assert statusdata.schedule_interval("* * * * *") == 60
    assert statusdata.schedule_interval("*/10 * * * *") == 600
    assert statusdata.schedule_interval("1 * * * *") == 3600
    assert statusdata.schedule_interval("0 */4 * * *") == 4 * 3600
    assert statusdata.schedule_interval("2 3 * * *") == 86400
    intervals = statusdata.job_intervals()
    assert intervals["detectStudyArrival"] == 60 and intervals["clearStaleLinks"] == 86400
    assert statusdata.freshness(now - 100, 60, now) == "fresh"
    assert statusdata.freshness(now - 200, 60, now) == "stale"
    assert statusdata.freshness(None, 60, now) == "never"


def test_bar_chart_is_valid_svg_with_escaped_text() -> None:
    svg = bar_chart(
        ["a<b", "c"], [("ok", [3, 0], "#0a0"), ("bad & worse", [1, 2], "#a00")], title="T <&>"
    )
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg" and root.find(f"{SVG}title").text == "T <&>"
    bars = [r for r in root.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    assert [r.find(f"{SVG}title").text for r in bars] == [
        "a<b: ok 3",
        "a<b: bad & worse 1",
        "c: bad & worse 2",
    ]
    # stacked: the first label's bars touch, and the tallest stack (4) fills the plot height (ymax 5)
    h = [float(r.get("height")) for r in bars]
    assert abs(h[0] / h[1] - 3) < 1e-6 and "style=" not in svg
