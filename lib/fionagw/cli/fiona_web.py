"""`fiona web [SITE]`: serve the web applications in the foreground with gunicorn.

gunicorn is the production WSGI server because it serves TLS itself (waitress cannot): with
``web.tls_cert``/``web.tls_key`` set, it speaks HTTPS only (TLS 1.2 or later). One worker
process with threads: Server-Sent Events (the live log) hold a thread each, and one process
keeps the rotating web log consistent. SIGTERM or Ctrl-C stops it within a few seconds.
"""

from __future__ import annotations

import argparse
import ssl
import sys
from typing import Any

from fionagw.cli.common import config_errors, load_site, parser
from fionagw.config import ConfigError, SiteConfig, check_datadir, check_user
from fionagw.ops.ports import port_available

PROGRAM = "fiona web"
COMMAND = "web"
THREADS = 32
GRACE_S = 5
SERVER_NAME = "fiona"  # the Server header and SERVER_SOFTWARE: no server product or version


def register(sub: Any) -> None:
    p = sub.add_parser(
        COMMAND, help="serve the web pages (Assign, Logs, Status, ...) in the foreground"
    )
    p.add_argument("site", nargs="?", default="", metavar="SITE")


def _ssl_context(_conf: Any, default_factory: Any) -> ssl.SSLContext:
    ctx = default_factory()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def _check_port(cfg: SiteConfig, host: str, port: int) -> None:
    """A port in use fails here in one line (gunicorn would retry, then exit in its own words)."""
    problem = port_available(host, port)
    if problem is not None:
        raise ConfigError(cfg.config_file, "web.port", f"{host}:{port} is not available: {problem}")


def gunicorn_options(cfg: SiteConfig) -> dict[str, Any]:
    """gunicorn settings for the site's "web" section."""
    ws = cfg.web
    host = f"[{ws.host}]" if ":" in ws.host else ws.host
    opts: dict[str, Any] = {
        "bind": [f"{host}:{ws.port}"],
        "workers": 1,
        "worker_class": "gthread",
        "threads": THREADS,
        "graceful_timeout": GRACE_S,
        "timeout": 60,
        "keepalive": 5,
        "accesslog": None,  # our own request log goes to DATADIR/logs/web.log
        "errorlog": "-",
        "logger_class": "fionagw.cli.fiona_web.FilteredGunicornLogger",
        "loglevel": "warning",
        "pidfile": str(cfg.paths.pidfile("web")),
        "proc_name": f"fiona-web{cfg.site}",
        "control_socket_disable": True,
    }
    if ws.tls:
        opts.update(certfile=str(ws.tls_cert), keyfile=str(ws.tls_key), ssl_context=_ssl_context)
    return opts


try:
    from gunicorn.glogging import Logger as _GunicornLogger
except ImportError:  # gunicorn is an install dependency; this keeps the module importable
    _GunicornLogger = object  # type: ignore[assignment,misc]


class FilteredGunicornLogger(_GunicornLogger):  # type: ignore[misc,valid-type]
    """gunicorn's error log has handlers of its own: give them the PHI filter every other
    handler of the gateway has, so a worker's traceback cannot carry a request's values."""

    def setup(self, cfg: Any) -> None:
        from fionagw.ops.log_filter import PhiFilter

        super().setup(cfg)
        for handler in self.error_log.handlers:
            handler.addFilter(PhiFilter())


def _hide_server_software() -> None:
    """gunicorn has no setting for its ``Server: gunicorn`` header; its response reads the
    module's names when a response is made, so replacing them is enough."""
    from gunicorn.http import wsgi

    wsgi.SERVER = SERVER_NAME
    wsgi.SERVER_SOFTWARE = SERVER_NAME


def serve(cfg: SiteConfig) -> int:
    from gunicorn.app.base import BaseApplication
    from gunicorn.config import KNOWN_SETTINGS

    from fionagw.ops.log import setup_logging
    from fionaweb import create_app

    ws = cfg.web
    _check_port(cfg, ws.host, ws.port)
    cfg.log_warnings(setup_logging(cfg, "web", stderr=False))
    app = create_app(cfg)
    _hide_server_software()
    known = {s.name for s in KNOWN_SETTINGS}
    options = {k: v for k, v in gunicorn_options(cfg).items() if k in known}

    class Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return app

    print(
        f"{PROGRAM}: serving {ws.url} (config {cfg.config_file}; log {cfg.paths.logfile('web')})",
        flush=True,
    )
    import logging

    logging.getLogger("fionagw.web").info("web server starting", extra={"url": ws.url})
    Server().run()
    return 0


@config_errors(PROGRAM)
def run(args: argparse.Namespace) -> int:
    cfg = load_site(args)
    check_user(cfg)
    check_datadir(cfg)
    if not cfg.web.enabled:
        print(f"{PROGRAM}: web.enabled is false in {cfg.config_file}: not serving", file=sys.stderr)
        return 0
    return serve(cfg)


def main(argv: list[str] | None = None) -> int:
    """``python -m fionagw.cli.fiona_web [--config PATH] [SITE]`` (same as `fiona web`)."""
    p = parser(PROGRAM, "Serve the web pages in the foreground.")
    p.add_argument("site", nargs="?", default="", metavar="SITE")
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
