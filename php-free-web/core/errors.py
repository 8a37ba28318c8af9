"""Error pages: every HTTP error and every crash is a clean page (a crash shows a reference to
its log entry, never a traceback or an internal detail)."""

from __future__ import annotations

import logging
import uuid

from flask import Flask, render_template
from werkzeug.exceptions import HTTPException, InternalServerError

LOGGER = logging.getLogger(__name__)

CRASH_DESCRIPTION = (
    "Something went wrong on the server; nothing was changed by this page "
    "unless it says so. Tell the administrator the reference below."
)


def install_error_pages(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> tuple[str, int]:
        return render_template(
            "error.html", code=exc.code, name=exc.name, description=exc.description, ref=""
        ), exc.code or 500

    @app.errorhandler(Exception)
    def _crash(exc: Exception) -> tuple[str, int]:
        if isinstance(exc, HTTPException):  # pragma: no cover - handled above
            return _http_error(exc)
        ref = uuid.uuid4().hex[:12]
        LOGGER.error("unhandled error in a web request", exc_info=exc, extra={"ref": ref})
        return render_template(
            "error.html",
            code=500,
            name=InternalServerError().name,
            ref=ref,
            description=CRASH_DESCRIPTION,
        ), 500
