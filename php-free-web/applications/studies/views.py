"""Studies' pages: the list, a study (QC result, series, transfers, bypass form), the report in
each format, and the POSTed actions (bypass, cancel, retry)."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for

from fionagw.config.qc import CHECKS
from fionagw.qc.bypass import BypassRefused
from fionagw.tracking.base import TrackerError
from fionagw.web import studies_page as sp
from fionagw.web.assign_actions import ActionRefused

from ...auth.roles import login_required
from ...auth.session import current_user
from ...core.audit import audited
from ...core.context import signing_key, site_config, tracker

LOGGER = logging.getLogger(__name__)
bp = Blueprint("studies", __name__, url_prefix="/studies", template_folder="templates")
MEDIA = {
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
    "json": "application/json",
    "txt": "text/plain; charset=utf-8",
}


@bp.route("/")
@login_required
def index() -> Any:
    views = sp.study_list(site_config(), tracker(), signing_key(), current_user())
    return render_template("studies/list.html", views=views)


def _detail_or_404(key: str) -> sp.StudyDetail:
    detail = sp.study_detail(site_config(), tracker(), signing_key(), current_user(), key[:64])
    if detail is None:
        abort(404, "No such study on the incoming list, or you may not see it.")
    return detail


@bp.route("/study/<key>")
@login_required
def study(key: str) -> Any:
    return render_template("studies/study.html", d=_detail_or_404(key), checks=CHECKS)


@bp.route("/study/<key>/report.<fmt>")
@login_required
def report(key: str, fmt: str) -> Any:
    detail = _detail_or_404(key)
    try:
        data = sp.report_bytes(site_config(), tracker(), detail, fmt)
    except ActionRefused as exc:
        abort(exc.status, str(exc))
    disposition = "attachment" if request.args.get("download") else "inline"
    audited("report-download", detail.view.row.study_uid, f"study report ({fmt}) shown", format=fmt)
    response = Response(data, mimetype=MEDIA[fmt].split(";")[0], content_type=MEDIA[fmt])
    response.headers["Content-Disposition"] = f'{disposition}; filename="study-report.{fmt}"'
    if fmt == "html":  # the standalone report carries its own style sheet
        response.headers["Content-Security-Policy"] = (
            "default-src 'none'; style-src 'unsafe-inline'"
        )
    return response


@bp.route("/study/<key>/bypass", methods=["POST"])
@login_required
def bypass(key: str) -> Any:
    detail = _detail_or_404(key)
    try:
        outcome = sp.bypass_checks(
            site_config(),
            tracker(),
            current_user(),
            detail,
            request.form.get("project", "").strip(),
            request.form.get("reason", ""),
            request.form.getlist("check"),
        )
    except (BypassRefused, ActionRefused) as exc:
        if exc.status == 403:
            abort(403, str(exc))
        flash(str(exc), "error")
        return redirect(url_for("studies.study", key=key), code=303)
    flash(outcome.message(request.form.get("project", "").strip()), "ok")
    return redirect(url_for("studies.study", key=key), code=303)


@bp.route("/study/<key>/transfer/<instance>/<action>", methods=["POST"])
@login_required
def act(key: str, instance: str, action: str) -> Any:
    detail = _detail_or_404(key)
    if not instance.isdigit() or action not in ("cancel", "retry"):
        abort(404)
    do = sp.cancel_transfer if action == "cancel" else sp.retry_transfer
    try:
        message = do(site_config(), tracker(), current_user(), detail, int(instance))
    except ActionRefused as exc:
        if exc.status != 400:
            abort(exc.status, str(exc))
        flash(str(exc), "error")
        return redirect(url_for("studies.study", key=key), code=303)
    except TrackerError as exc:
        LOGGER.error("studies action failed", extra={"action": action, "error": str(exc)})
        flash(f"The tracker could not be updated, nothing was changed: {exc}", "error")
        return redirect(url_for("studies.study", key=key), code=303)
    flash(message, "ok")
    return redirect(url_for("studies.study", key=key), code=303)
