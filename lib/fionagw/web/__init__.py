"""The web applications' non-HTTP logic (users, settings, log search, plots) and their loader.

The Flask application itself lives in the checkout's ``php-free-web/`` (FIONA's place for
its web applications); :func:`load_app` puts that folder on ``sys.path`` and builds it.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from fionagw.config import SiteConfig
from fionagw.paths import CHECKOUT

if TYPE_CHECKING:
    from flask import Flask

WEB_DIR = CHECKOUT / "php-free-web"


def load_app(cfg: SiteConfig) -> Flask:
    """The Flask application for ``cfg`` (``php-free-web/app.py: create_app``)."""
    if str(WEB_DIR) not in sys.path:
        sys.path.insert(0, str(WEB_DIR))
    from app import create_app  # type: ignore[import-not-found]

    return create_app(cfg)
