"""The gateway's web applications (Flask, server-rendered), the package ``fionaweb``:
``create_app(cfg) -> Flask``. Served by ``fiona web [SITE]`` (gunicorn, TLS when
``web.tls_cert`` is set); tests build it in-process with :func:`create_app`.

Layout (FIONA's applications/<App>/)
------------------------------------
``applications/<app>/``: one package per application (assign, attach, review, logs, status,
settings): ``views.py`` with its Blueprint ``bp`` (named like the package, an ``index``
endpoint), ``templates/<app>/*.html``, ``static/`` files; listed with their tab in
``applications.APPLICATIONS``. ``auth/``: login, logout, account, the session and the role
checks. ``core/``: what every application shares (below). Views parse the request, call a
library function (``fionagw.web.*``, ``fionagw.upload``) and render.

Helpers for views
-----------------
``core.context``::

    site_config() -> SiteConfig      the site's configuration (also current_app.config["FIONA_CFG"])
    web_config() -> WebSettings      the "web" section (also current_app.config["FIONA_WEB"])
    tracker() -> Tracker             the site's tracker, opened once per request, closed after it
    users() -> UserStore             accounts, roles, sessions (fionagw.web.users)
    signing_key() -> bytes           the app's secret key

``auth.session``: ``current_user() -> User`` (fionagw.web.users.User: name, is_admin,
has_role(project, role), projects_with(role, known)). ``auth.roles``::

    login_required                   decorator (every route but login and static already requires a
                                     session; the decorator states it and re-checks)
    require_role(role, project_arg="project")
                                     decorator: 403 unless the user has ``role`` on the project named
                                     by the view argument / form field / query arg ``project_arg``;
                                     ``require_role("admin", None)`` asks for the global admin role
    check_role(project, role)        the same check inside a view (aborts with 403)
    allowed_projects(role) -> list   the tracker's projects where the user has ``role``

``core.csrf.csrf_token() -> str``: the session's CSRF token.

Templates extend ``base.html``; blocks: ``title``, ``head`` (extra <link>/<script src> tags),
``content``, ``scripts`` (end of body). Every POST form must contain ``{{ csrf_field() }}``
(JavaScript sends the token as the ``X-CSRF-Token`` header; base.html has it in
``<meta name="csrf-token">``). A POST without a valid token is refused with 400. Inline scripts
and inline ``style=`` attributes are blocked by the Content-Security-Policy: put JavaScript in
the application's ``static/*.js`` and CSS in ``core/static/style.css`` (SVG presentation
attributes are fine); every static file is served as ``/static/<name>``, names unique across
the folders. Use opaque ids in URLs (study UIDs, record numbers), never names, patient IDs or
accession numbers. ``abort(code, description)`` renders a clean error page with the
description. Flask's ``flash(message, category)`` (categories ``ok``, ``error``) shows on the
next page.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from flask import Flask

from fionagw.config import SiteConfig
from fionagw.web.users import UserStore

from . import auth
from .applications import APPLICATIONS
from .auth.session import current_user, require_session
from .core.audit import reset_request_origin, set_request_origin
from .core.context import close_tracker
from .core.csrf import check_csrf, csrf_field, csrf_token
from .core.errors import install_error_pages
from .core.headers import install_headers
from .core.secret_key import load_secret_key
from .core.static_files import install_static
from .navigation import install_navigation

CORE = Path(__file__).resolve().parent / "core"

__all__ = ["create_app"]


def create_app(cfg: SiteConfig) -> Flask:
    """The Flask application of one site. Raises ConfigError for a bad "web" section."""
    settings = cfg.web
    app = Flask(__name__, static_folder=None, template_folder=str(CORE / "templates"))
    app.config.update(
        FIONA_CFG=cfg,
        FIONA_WEB=settings,
        SECRET_KEY=load_secret_key(cfg.paths.web_secret_key),
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
    app.teardown_appcontext(close_tracker)

    app.register_blueprint(auth.bp)
    for application in APPLICATIONS:
        app.register_blueprint(application.blueprint)
    install_static(
        app,
        [CORE / "static"] + [Path(a.blueprint.root_path) / "static" for a in APPLICATIONS],
    )

    # the session first: an anonymous POST gets 401, not a complaint about its CSRF token
    app.before_request(require_session)
    app.before_request(check_csrf)
    app.before_request(set_request_origin)
    app.teardown_request(reset_request_origin)
    app.jinja_env.globals.update(
        csrf_field=csrf_field, csrf_token=csrf_token, current_user=current_user
    )
    install_navigation(app, APPLICATIONS, cfg.site or cfg.aetitle)
    install_headers(app, tls=settings.tls)
    install_error_pages(app)
    return app
