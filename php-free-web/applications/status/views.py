"""Status's page: services, cron jobs, queues, disk and the week's plots."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, render_template
from markupsafe import Markup

from fionagw.ops.status import collect_status, human_duration, human_size
from fionagw.web import status_page

from ...core.context import site_config, tracker

bp = Blueprint("status", __name__, url_prefix="/status", template_folder="templates")


@bp.route("/")
def index() -> Any:
    cfg = site_config()
    now = time.time()
    st = collect_status(cfg)
    transfers_svg, transfers_error = status_page.transfers_plot(tracker, now)
    pacs_problems, pacs_error = status_page.pacs_problems(tracker)
    return render_template(
        "status/index.html",
        st=st,
        jobs=status_page.job_rows(st, now),
        disk=st.disk,
        size=human_size,
        duration=lambda seconds: human_duration(seconds, ""),
        images_svg=Markup(status_page.images_plot(cfg, now)),
        transfers_svg=Markup(transfers_svg),
        transfers_error=transfers_error,
        transfer_counts=status_page.transfer_counts(cfg),
        pacs_problems=pacs_problems,
        pacs_error=pacs_error,
        notifications=status_page.notification_rows(cfg),
        collected=time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(st.collected_at)),
    )
