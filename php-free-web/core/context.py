"""The running app's site, settings, tracker and accounts, for views and the shared parts alike
(here rather than in the factory, so that nothing imports the factory)."""

from __future__ import annotations

from flask import current_app, g

from fionagw.config import SiteConfig, WebSettings
from fionagw.tracking.base import Tracker
from fionagw.web.users import UserStore


def site_config() -> SiteConfig:
    return current_app.config["FIONA_CFG"]


def web_config() -> WebSettings:
    """The site's "web" section."""
    return current_app.config["FIONA_WEB"]


def users() -> UserStore:
    """Accounts, roles and sessions."""
    return current_app.extensions["fiona_users"]


def signing_key() -> bytes:
    """The app's secret key (cookies; Assign's opaque study keys)."""
    key = current_app.secret_key
    return key if isinstance(key, bytes) else str(key).encode()


def tracker() -> Tracker:
    """The site's tracker for this request (opened on first use, closed when the request ends)."""
    if "fiona_tracker" not in g:
        from fionagw.tracking.factory import open_tracker

        g.fiona_tracker = open_tracker(site_config())
    return g.fiona_tracker


def close_tracker(_exc: BaseException | None) -> None:
    t = g.pop("fiona_tracker", None)
    if t is not None:
        t.close()
