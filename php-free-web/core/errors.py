"""Error pages: every HTTP error and every crash is a clean page (a crash shows a reference to
its log entry, never a traceback or an internal detail).

A broken configuration file (typically projects.yml, read again on every use) is not a crash:
an admin sees which file, key (or line) and what is wrong, everyone else that the configuration
is broken and to contact the administrator; it is logged once per distinct problem, not on
every request."""

from __future__ import annotations

import logging
import uuid

from flask import Flask, render_template
from werkzeug.exceptions import HTTPException, InternalServerError, ServiceUnavailable

from fionagw.config import ConfigError

from ..auth.session import current_user

LOGGER = logging.getLogger(__name__)

CRASH_DESCRIPTION = (
    "Something went wrong on the server; nothing was changed by this page "
    "unless it says so. Tell the administrator the reference below."
)


def install_error_pages(app: Flask) -> None:
    logged: set[str] = set()  # the configuration problems already in the log

    @app.errorhandler(ConfigError)
    def _config_error(exc: ConfigError) -> tuple[str, int]:
        if str(exc) not in logged:
            logged.add(str(exc))
            LOGGER.error(
                "configuration error: pages that need it fail until it is corrected",
                extra={"file": exc.file, "key": exc.key, "problem": exc.problem},
            )
        user = current_user()
        return render_template(
            "config_error.html",
            code=ServiceUnavailable.code,
            detail=exc if user is not None and user.is_admin else None,
        ), ServiceUnavailable.code

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
