"""The Settings page's notification channels: one row per channel and its "Test delivery"
button (a "test" event delivered now: notify/deliver.test_delivery), the outcome masked."""

from __future__ import annotations

import logging
from typing import Any

from fionagw.config import SiteConfig
from fionagw.tracking.base import Tracker

from .masking import masked, secret_values

LOGGER = logging.getLogger(__name__)


def _where(channel: Any) -> str:
    o = channel.options
    if channel.type == "email":
        return f"{o['host']}:{o['port']} ({o['tls']}) to {', '.join(o['to'])}"
    if channel.type in ("webhook", "fhir"):
        return f"{o.get('method', 'POST')} {o['url']}"
    if channel.type == "dicom":
        return f"destination {o['destination']}"
    return "kept for download"


def channel_rows(cfg: SiteConfig) -> list[dict[str, str]]:
    return [
        {"name": c.name, "type": c.type, "where": _where(c)}
        for c in cfg.notifications.channels.values()
    ]


def test_channel(cfg: SiteConfig, tracker: Tracker | None, name: str) -> tuple[bool, str] | None:
    """(delivered, one line) of a test delivery to channel ``name``; None: no such channel."""
    from fionagw.notify.deliver import test_delivery

    if name not in cfg.notifications.channels:
        return None
    status, message = test_delivery(cfg, tracker, name)
    secrets, _ = secret_values(cfg)
    text = masked(f"{status}" + (f": {message}" if message else ""), secrets)
    LOGGER.info("notification channel tested", extra={"channel": name, "status": status})
    return status == "delivered", text
