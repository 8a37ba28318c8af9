"""Logs' pages: the filtered list, the live stream (Server-Sent Events), one log file, the
filtered entries as CSV or JSON, and every log as a ZIP. Admins only."""

from __future__ import annotations

import tempfile
import time
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    session,
    stream_with_context,
    url_for,
)

from fionagw.web import logsearch
from fionagw.web.logsearch import FilterError, LogFilter

from ...auth.roles import require_role
from ...core.audit import audited
from ...core.context import site_config, web_config

bp = Blueprint("logs", __name__, url_prefix="/logs", template_folder="templates")
PAGE_LIMIT = 500
FILTER_KEY = "logs_filter"


def _filter() -> LogFilter:
    return LogFilter.from_dict(session.get(FILTER_KEY))


def _stamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


@bp.route("/", methods=["GET", "POST"])
@require_role("admin", None)
def index() -> Any:
    if request.method == "POST":
        if "reset" in request.form:
            session.pop(FILTER_KEY, None)
        else:
            try:
                session[FILTER_KEY] = LogFilter.from_form(request.form).as_dict()
            except FilterError as exc:
                flash(f"Filter not applied: {exc}", "error")
        return redirect(url_for("logs.index"))
    cfg = site_config()
    flt = _filter()
    t0 = time.perf_counter()
    entries, more = logsearch.search(cfg, flt, PAGE_LIMIT)
    rows = [{**e, "details": logsearch.details(e)} for e in reversed(entries)]  # newest first
    return render_template(
        "logs/index.html",
        rows=rows,
        more=more,
        flt=flt,
        limit=PAGE_LIMIT,
        components=logsearch.components(cfg),
        levels=logsearch.LEVELS,
        seconds=time.perf_counter() - t0,
    )


@bp.route("/stream")
@require_role("admin", None)
def stream() -> Response:
    follower = logsearch.LogFollower(site_config(), _filter())
    max_s = min(30 * 60, web_config().session_minutes * 60)
    events = logsearch.sse_events(follower, max_seconds=max_s)
    return Response(
        stream_with_context(events),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@bp.route("/file/<component>")
@require_role("admin", None)
def raw_file(component: str) -> Response:
    cfg = site_config()
    if component not in logsearch.components(cfg):
        abort(404, f"No log named {component!r}.")
    path = logsearch.current_file(cfg, component)
    if not path.is_file():
        abort(
            404,
            f"The log of {component} has no current file (only rotated ones: download all as ZIP).",
        )
    audited("log-download", component, "log file downloaded")
    return send_file(
        path, mimetype="text/plain", as_attachment=True, download_name=path.name, max_age=0
    )


@bp.route("/export.<fmt>")
@require_role("admin", None)
def export(fmt: str) -> Response:
    entries = logsearch.all_matching(site_config(), _filter())
    name = f"fiona-logs-{_stamp()}.{fmt}"
    if fmt == "csv":
        body, mimetype = logsearch.to_csv(entries), "text/csv"
    elif fmt == "json":
        body, mimetype = logsearch.to_json(entries), "application/json"
    else:
        abort(404, "Export formats: csv, json.")
    audited("export", "logs", f"logs exported ({fmt})", format=fmt, entries=len(entries))
    return Response(
        body, mimetype=mimetype, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


@bp.route("/all.zip")
@require_role("admin", None)
def all_zip() -> Response:
    out = tempfile.TemporaryFile()  # noqa: SIM115 - send_file closes it
    logsearch.write_zip(site_config(), out)
    audited("log-download", "all", "every log downloaded (ZIP)")
    out.seek(0)
    return send_file(
        out,
        mimetype="application/zip",
        as_attachment=True,
        download_name=f"fiona-logs-{_stamp()}.zip",
        max_age=0,
    )
