"""The Prometheus text exposition (format 0.0.4) of a site: status, counters, job runs."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from fionagw.config import SiteConfig
from fionagw.ops.counters import Counters, update_counters
from fionagw.ops.status import Status, collect_status
from fionagw.transfers.failures import count_failures

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _label(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def metric_name(text: str) -> str:
    """A label value or name part made of [a-z0-9_] ("arrived jobs" -> "arrived_jobs")."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", text.strip().lower())


class _Exposition:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(
        self,
        name: str,
        kind: str,
        help_text: str,
        samples: list[tuple[dict[str, object], float]] | float,
    ) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")
        if not isinstance(samples, list):
            samples = [({}, samples)]
        for labels, value in samples:
            text = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
            self.lines.append(
                f"{name}{{{text}}} {_number(value)}" if text else f"{name} {_number(value)}"
            )

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _number(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int) or float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def render(cfg: SiteConfig, status: Status | None = None, counters: Counters | None = None) -> str:
    """The Prometheus text exposition (format 0.0.4) of this site."""
    t0 = time.monotonic()
    st = status or collect_status(cfg)
    c = counters or update_counters(cfg)
    p = cfg.paths
    out = _Exposition()
    out.family(
        "fionagw_info",
        "gauge",
        "Version and site of this gateway.",
        [({"version": st.version, "site": st.site or "default"}, 1)],
    )
    out.family(
        "fionagw_images_received_total",
        "counter",
        "DICOM files stored in the archive.",
        c.images_received,
    )
    out.family(
        "fionagw_received_bytes_total",
        "counter",
        "Bytes of the DICOM files stored in the archive.",
        c.bytes_received,
    )
    out.family(
        "fionagw_studies_arrived_total",
        "counter",
        "Studies that completed arrival (study-arrived events).",
        c.studies_arrived,
    )
    out.family(
        "fionagw_transfer_attempts_total",
        "counter",
        "Attempts of anonymizeAndSend at a transfer request, by outcome (sent, failed, deferred).",
        [({"outcome": k}, v) for k, v in sorted(c.attempts.items())],
    )
    out.family(
        "fionagw_send_failures_total",
        "counter",
        "Attempts that sent nothing (failed, or deferred to a retry), by reason.",
        [({"reason": k}, v) for k, v in sorted(c.failures.items())],
    )
    failures = count_failures(p)
    out.family(
        "fionagw_transfer_requests",
        "gauge",
        "Transfer requests by state (one each, whatever files a failed one left).",
        [
            (
                {"state": "pending"},
                st.queues.get("transfer requests", _count_entries(p.transfer_requests)),
            ),
            ({"state": "done"}, _count_entries(p.transfers_done)),
            ({"state": "failed"}, failures.failed),
            ({"state": "cancelled"}, failures.cancelled),
        ],
    )
    out.family(
        "fionagw_failed_requests",
        "gauge",
        "Failed transfer requests (not cancelled) by reason.",
        [({"reason": k}, v) for k, v in sorted(failures.by_reason.items())],
    )
    out.family(
        "fionagw_queue_depth",
        "gauge",
        "Work waiting in each on-disk queue.",
        [({"queue": metric_name(k)}, v) for k, v in st.queues.items()],
    )
    d = st.disk
    if d is not None and not d.error:
        out.family(
            "fionagw_disk_free_bytes",
            "gauge",
            f"Free bytes for DATADIR ({d.source}).",
            d.free_bytes,
        )
        out.family(
            "fionagw_disk_total_bytes",
            "gauge",
            f"Size of DATADIR's space ({d.source}).",
            d.total_bytes,
        )
        out.family(
            "fionagw_disk_free_ratio",
            "gauge",
            "Free fraction of DATADIR's space.",
            round(d.free_percent / 100.0, 6),
        )
        out.family(
            "fionagw_retention_target_free_ratio",
            "gauge",
            "clearOldFiles frees space down to this.",
            d.target_free_percent / 100.0,
        )
    out.family(
        "fionagw_service_up",
        "gauge",
        "1 when the service runs (disabled receiver: 0).",
        [({"service": s.name}, s.up) for s in st.services],
    )
    runs = [j for j in st.jobs if j.last is not None]
    out.family(
        "fionagw_job_last_duration_seconds",
        "gauge",
        "Duration of each cron job's last run.",
        [({"job": j.job}, j.last.seconds) for j in runs],
    )  # type: ignore[union-attr]
    out.family(
        "fionagw_job_last_success",
        "gauge",
        "1 when the job's last run succeeded.",
        [({"job": j.job}, j.last.ok) for j in runs],
    )  # type: ignore[union-attr]
    out.family(
        "fionagw_job_last_run_timestamp_seconds",
        "gauge",
        "When the job's last run ended (epoch).",
        [({"job": j.job}, round(j.last.finished, 3)) for j in runs],
    )  # type: ignore[union-attr]
    out.family(
        "fionagw_job_running",
        "gauge",
        "1 while the job holds its lock.",
        [({"job": j.job}, j.running_pid is not None) for j in st.jobs],
    )
    out.family(
        "fionagw_scrape_duration_seconds",
        "gauge",
        "Time spent collecting these metrics.",
        round(time.monotonic() - t0, 6),
    )
    return out.text()


def _count_entries(d: Path) -> int:
    try:
        with os.scandir(d) as it:
            return sum(1 for e in it if not e.name.startswith("."))
    except OSError:
        return 0
