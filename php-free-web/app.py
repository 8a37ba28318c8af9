"""The gateway's web applications (Flask, server-rendered): ``create_app(cfg) -> Flask``.

Served by ``fiona web [SITE]`` (gunicorn, TLS when ``web.tls_cert`` is set); tests build it with
``fionagw.web.load_app(cfg)``, which puts this folder on sys.path and calls :func:`create_app`.

Helpers for the application modules (stable; Assign, Review, Attach build on them)
-------------------------------------------------------------------------------------
Blueprints: one module per application in this folder (``auth``, ``assign``, ``review``,
``attach``, ``logs``, ``status``, ``settings``), each with a module-level ``bp`` (a Blueprint
named like the module) and an ``index`` endpoint; ``create_app`` registers every module of
``BLUEPRINTS`` and shows it in the navigation (order of ``NAV``). A module may
define ``nav_visible(user: User) -> bool`` to hide its tab from users without a role.

From ``app`` (this module)::

    site_config() -> SiteConfig      the site's configuration (also current_app.config["FIONA_CFG"])
    web_config() -> WebSettings      the "web" section (also current_app.config["FIONA_WEB"])
    tracker() -> Tracker             the site's tracker, opened once per request, closed after it
    users() -> UserStore             accounts, roles, sessions (fionagw.web.users)

From ``auth``::

    current_user() -> User           the logged-in user (fionagw.web.users.User: name, is_admin,
                                     has_role(project, role), projects_with(role, known))
    login_required                   decorator (every route but login and static already requires a
                                     session; the decorator states it and re-checks)
    require_role(role, project_arg="project")
                                     decorator: 403 unless the user has ``role`` on the project named
                                     by the view argument / form field / query arg ``project_arg``;
                                     ``require_role("admin", None)`` asks for the global admin role
    check_role(project, role)        the same check inside a view (aborts with 403)
    allowed_projects(role) -> list   the tracker's projects where the user has ``role``
    csrf_token() -> str              the session's CSRF token

Templates extend ``base.html``; blocks: ``title``, ``head`` (extra <link>/<script src> tags),
``content``, ``scripts`` (end of body). Every POST form must contain ``{{ csrf_field() }}``
(JavaScript sends the token as the ``X-CSRF-Token`` header; base.html has it in
``<meta name="csrf-token">``). A POST without a valid token is refused with 400. Inline scripts
and inline ``style=`` attributes are blocked by the Content-Security-Policy: put JavaScript in
``static/*.js`` and CSS in ``static/style.css`` (SVG presentation attributes are fine).
Use opaque ids in URLs (study UIDs, record numbers), never names, patient IDs or accession
numbers. ``abort(code, description)`` renders a clean error page with the description.
Flask's ``flash(message, category)`` (categories ``ok``, ``error``) shows on the next page.
"""

from __future__ import annotations

import importlib
import logging
import os
import secrets
import uuid
from datetime import timedelta
from pathlib import Path

from flask import Flask, Response, current_app, g, redirect, render_template_string, url_for
from werkzeug.exceptions import HTTPException, InternalServerError

from fionagw.config import SiteConfig, WebSettings
from fionagw.tracking.base import Tracker
from fionagw.web.users import UserStore

log = logging.getLogger("fionagw.web")
HERE = Path(__file__).resolve().parent

# Application modules in this folder, registered when present.
BLUEPRINTS = ("auth", "assign", "review", "attach", "logs", "status", "settings")
# Navigation: (endpoint, label), shown when the endpoint exists and its module's nav_visible allows.
NAV = (
    ("assign.index", "Assign"),
    ("review.index", "Review"),
    ("attach.index", "Attach"),
    ("logs.index", "Logs"),
    ("status.index", "Status"),
    ("settings.index", "Settings"),
)

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)

ERROR_PAGE = """{% extends "base.html" %}
{% block title %}{{ code }} {{ name }}{% endblock %}
{% block content %}
<section class="error-page">
  <h1>{{ code }} {{ name }}</h1>
  <p class="error">{{ description }}</p>
  {% if ref %}<p class="muted">Reference {{ ref }} (in the web log).</p>{% endif %}
  <p><a href="{{ url_for('index') }}">Back to the start page</a></p>
</section>
{% endblock %}"""


def site_config() -> SiteConfig:
    return current_app.config["FIONA_CFG"]


def web_config() -> WebSettings:
    return current_app.config["FIONA_WEB"]


def users() -> UserStore:
    return current_app.extensions["fiona_users"]


def tracker() -> Tracker:
    """The site's tracker for this request (opened on first use, closed when the request ends)."""
    if "fiona_tracker" not in g:
        from fionagw.tracking.factory import open_tracker

        g.fiona_tracker = open_tracker(site_config())
    return g.fiona_tracker


def _close_tracker(_exc: BaseException | None) -> None:
    t = g.pop("fiona_tracker", None)
    if t is not None:
        t.close()


def _secret_key(path: Path) -> bytes:
    """The cookie-signing key, shared by every worker process and kept across restarts."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_bytes()
        if len(key) >= 32:
            return key
        # a writer was interrupted: replace the short key
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        key = secrets.token_bytes(32)
        f.write(key)
        f.flush()
        os.fsync(f.fileno())
    return key


def create_app(cfg: SiteConfig) -> Flask:
    """The Flask application of one site (its "web" section: ``cfg.web``)."""
    settings = cfg.web
    app = Flask(
        __name__, static_folder=str(HERE / "static"), template_folder=str(HERE / "templates")
    )
    app.config.update(
        FIONA_CFG=cfg,
        FIONA_WEB=settings,
        SECRET_KEY=_secret_key(cfg.paths.web_secret_key),
        SESSION_COOKIE_NAME="fiona_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=settings.tls,
        PERMANENT_SESSION_LIFETIME=timedelta(minutes=settings.session_minutes),
        MAX_CONTENT_LENGTH=settings.max_upload_mb * 1024 * 1024,
        PREFERRED_URL_SCHEME="https" if settings.tls else "http",
        TEMPLATES_AUTO_RELOAD=False,
    )
    app.extensions["fiona_users"] = UserStore.for_site(cfg)
    app.teardown_appcontext(_close_tracker)

    modules = {name: importlib.import_module(name) for name in BLUEPRINTS}
    for module in modules.values():
        app.register_blueprint(module.bp)

    import auth  # type: ignore[import-not-found]

    auth.install(app)

    @app.route("/")
    def index() -> Response:
        items = nav_items()
        return redirect(url_for(items[0][0]) if items else url_for("auth.account"))

    def nav_items() -> list[tuple[str, str]]:
        user = auth.current_user()
        out = []
        for endpoint, label in NAV:
            module = modules.get(endpoint.split(".")[0])
            if module is None or endpoint not in app.view_functions:
                continue
            visible = getattr(module, "nav_visible", None)
            if user is not None and (visible is None or visible(user)):
                out.append((endpoint, label))
        return out

    @app.context_processor
    def _layout() -> dict:
        return {"nav_items": nav_items, "site_label": cfg.site or cfg.aetitle}

    @app.after_request
    def _headers(resp: Response) -> Response:
        h = resp.headers
        h.setdefault("Content-Security-Policy", CSP)
        h["X-Frame-Options"] = "DENY"
        h["X-Content-Type-Options"] = "nosniff"
        h["Referrer-Policy"] = "no-referrer"
        h["Cross-Origin-Opener-Policy"] = "same-origin"
        if settings.tls:
            h["Strict-Transport-Security"] = "max-age=31536000"
        if not (resp.mimetype or "").startswith(
            ("text/css", "application/javascript", "text/javascript")
        ):
            h.setdefault("Cache-Control", "no-store")
        return resp

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> tuple[str, int]:
        return render_template_string(
            ERROR_PAGE, code=exc.code, name=exc.name, description=exc.description, ref=""
        ), exc.code or 500

    @app.errorhandler(Exception)
    def _crash(exc: Exception) -> tuple[str, int]:
        if isinstance(exc, HTTPException):  # pragma: no cover - handled above
            return _http_error(exc)
        ref = uuid.uuid4().hex[:12]
        log.error("unhandled error in a web request", exc_info=exc, extra={"ref": ref})
        err = InternalServerError()
        return render_template_string(
            ERROR_PAGE,
            code=500,
            name=err.name,
            ref=ref,
            description="Something went wrong on the server; nothing was changed by this page "
            "unless it says so. Tell the administrator the reference below.",
        ), 500

    return app
