"""Audit's pages: the records (newest first, filtered) with the chain's state, and the CSV."""

from __future__ import annotations

import csv
import io
import time
from typing import Any

from flask import Blueprint, Response, render_template, request

from fionagw.admin import audit

from ...auth.roles import require_role
from ...core.audit import audited
from ...core.context import site_config

bp = Blueprint("audit", __name__, url_prefix="/audit", template_folder="templates")
LIMIT = 1000


def _filter() -> dict[str, str]:
    return {k: request.args.get(k, "").strip()[:200] for k in ("q", "action", "who")}


def _records(flt: dict[str, str], limit: int) -> list[dict[str, Any]]:
    return audit.search(site_config(), flt["q"], flt["action"], flt["who"], limit=limit)


@bp.route("/")
@require_role("admin", None)
def index() -> Any:
    flt = _filter()
    records = _records(flt, LIMIT + 1)
    count, problems = audit.verify(site_config())
    rows = list(audit.csv_rows(records[:LIMIT]))[1:]
    return render_template(
        "audit/index.html",
        rows=rows,
        more=len(records) > LIMIT,
        limit=LIMIT,
        flt=flt,
        count=count,
        problems=problems,
        file=audit.audit_file(site_config()),
    )


@bp.route("/export.csv")
@require_role("admin", None)
def export() -> Response:
    flt = _filter()
    records = _records(flt, 10**9)
    out = io.StringIO()
    csv.writer(out).writerows(audit.csv_rows(records))
    audited("export", "audit", "audit trail exported (CSV)", records=len(records), search=flt)
    name = f"fiona-audit-{time.strftime('%Y%m%d-%H%M%S')}.csv"
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
