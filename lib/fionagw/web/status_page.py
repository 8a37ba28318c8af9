"""What the Status page shows beyond :func:`fionagw.ops.status.collect_status`, ready to render:
one row per cron job (last run, how long ago, freshness), the transfer counts, the transfers the
research PACS does not hold completely, and the week's two plots as SVG."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from fionagw.config import SiteConfig
from fionagw.config.projects import ProjectsError
from fionagw.ops.counters import TransferFigures, transfer_figures
from fionagw.ops.status import Status, human_duration
from fionagw.tracking.base import Tracker, TrackerError
from fionagw.tracking.records import PacsCheck

from . import statusdata
from .svgplot import bar_chart

LOGGER = logging.getLogger(__name__)
PROBLEMS = ("missing", "incomplete")  # PACS check outcomes the Status page lists


def _stamp(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def job_rows(st: Status, now: float) -> list[dict[str, Any]]:
    """The cron jobs of ``st`` for the jobs table."""
    intervals = statusdata.job_intervals()
    jobs = []
    for j in st.jobs:
        finished = j.last.finished if j.last else None
        jobs.append(
            {
                "name": j.job,
                "last": j.last,
                "when": _stamp(finished) if finished else "",
                "ago": human_duration(now - finished, "") if finished else "",
                "freshness": statusdata.freshness(finished, intervals.get(j.job), now),
                "running": f"running now (pid {j.running_pid}, {human_duration(j.running_for_s, '')})"
                if j.running_pid
                else "",
            }
        )
    return jobs


def transfer_counts(cfg: SiteConfig) -> TransferFigures | None:
    """Failed requests now (one each), attempts by outcome and send failures by reason; None
    when the counters cannot be brought up to date (a web user who may not write .pids/)."""
    try:
        return transfer_figures(cfg)
    except OSError as exc:
        LOGGER.warning("transfer counts unavailable", extra={"error": str(exc)})
        return None


def images_plot(cfg: SiteConfig, now: float) -> str:
    """Images received per hour over the last 7 days, labelled once a day."""
    counts, first = statusdata.images_per_hour(cfg, now)
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


def transfers_plot(tracker: Callable[[], Tracker], now: float) -> tuple[str, str]:
    """(SVG, "") of the transfers sent and failed per day over the last 7 days, or ("", why)
    when the tracker cannot be opened or read (``tracker()`` opens it)."""
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


def pacs_problems(tracker: Callable[[], Tracker]) -> tuple[list[PacsCheck], str]:
    """The transfers whose last PACS check found them incomplete or missing, worst first
    (whatIsInIDS7 / whatIsNotInIDS7 / the check after sending), or ([], why) when the tracker
    cannot be read."""
    try:
        checks = tracker().pacs_checks()
    except (TrackerError, ProjectsError) as exc:
        return [], f"The PACS checks cannot be read: {exc}"
    bad = [c for c in checks if c.ids7_status in PROBLEMS]
    bad.sort(key=lambda c: (PROBLEMS.index(c.ids7_status), c.ids7_checked_date), reverse=False)
    return bad, ""


def notification_rows(cfg: SiteConfig) -> list[dict[str, Any]]:
    """One row per notification channel: deliveries by state and its latest failures (what a
    data manager must look at: a receiver that refused or stayed down)."""
    from fionagw.notify.deliver import notify_status

    try:
        statuses = notify_status(cfg)
    except OSError as exc:
        LOGGER.warning("notification status unavailable", extra={"error": str(exc)})
        return []
    return [
        {
            "name": s.name,
            "type": s.type,
            "counts": ", ".join(f"{n} {k}" for k, n in sorted(s.counts.items())) or "nothing yet",
            "failed": s.counts.get("failed", 0),
            "failures": [
                {
                    "status": "delivery failed" if f.get("status") == "failed" else "retrying",
                    "event": f.get("type", ""),
                    "at": _stamp(float(f.get("at") or 0)),
                    "error": f.get("error", ""),
                }
                for f in s.failures[:5]
            ],
        }
        for s in statuses
    ]
