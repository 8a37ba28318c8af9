"""Status: services up/down, cron jobs and their freshness, queue depths, disk, and the
week's plots (images received per hour, transfers per day). Every logged-in user may look."""

from __future__ import annotations

import logging
import time
from typing import Any

from app import site_config, tracker  # type: ignore[import-not-found]
from flask import Blueprint, render_template
from markupsafe import Markup

from fionagw.ops.status import collect_status, human_duration, human_size
from fionagw.tracking.base import TrackerError
from fionagw.tracking.projects import ProjectsError
from fionagw.web import statusdata
from fionagw.web.svgplot import bar_chart

log = logging.getLogger("fionagw.web.status")
bp = Blueprint("status", __name__, url_prefix="/status")


def _images_plot(now: float) -> str:
    counts, first = statusdata.images_per_hour(site_config(), now)
    labels = [
        time.strftime("%a %d %H:00", time.localtime((first + i) * 3600)) for i in range(len(counts))
    ]
    # a label at each local midnight-ish: every 24th bar, starting at the first full day
    offset = next((i for i in range(len(labels)) if labels[i].endswith(" 00:00")), 0)
    shown = [lab[:6] if (i - offset) % 24 == 0 else "" for i, lab in enumerate(labels)]
    return bar_chart(
        shown,
        [("images", counts, "#3b7dd8")],
        title=f"Images received per hour, last 7 days ({sum(counts)} in all)",
        label_every=1,
    )


def _transfers_plot(now: float) -> tuple[str, str]:
    try:
        transfers = tracker().transfers()
    except (TrackerError, ProjectsError) as exc:
        return "", f"The tracker cannot be read: {exc}"
    dates, sent, failed = statusdata.transfers_per_day(transfers, now)
    labels = [time.strftime("%a %d", time.strptime(d, "%Y-%m-%d")) for d in dates]
    svg = bar_chart(
        labels,
        [("sent", sent, "#1c7c3c"), ("failed", failed, "#b3261e")],
        title=f"Transfers per day, last 7 days ({sum(sent)} sent, {sum(failed)} failed)",
    )
    return svg, ""


@bp.route("/")
def index() -> Any:
    cfg = site_config()
    now = time.time()
    st = collect_status(cfg)
    intervals = statusdata.job_intervals()
    jobs = []
    for j in st.jobs:
        finished = j.last.finished if j.last else None
        jobs.append(
            {
                "name": j.job,
                "last": j.last,
                "when": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(finished))
                if finished
                else "",
                "ago": human_duration(now - finished, "") if finished else "",
                "freshness": statusdata.freshness(finished, intervals.get(j.job), now),
                "running": f"running now (pid {j.running_pid}, {human_duration(j.running_for_s, '')})"
                if j.running_pid
                else "",
            }
        )
    disk = st.disk
    transfers_svg, transfers_error = _transfers_plot(now)
    return render_template(
        "status_index.html",
        st=st,
        jobs=jobs,
        disk=disk,
        size=human_size,
        duration=lambda seconds: human_duration(seconds, ""),
        images_svg=Markup(_images_plot(now)),
        transfers_svg=Markup(transfers_svg),
        transfers_error=transfers_error,
        collected=time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(st.collected_at)),
    )
