"""config.json ``notifications``: the channels events are delivered by and who subscribes.

    "notifications": {
      "retry": {"tries_per_run": 3, "backoff_seconds": 2, "max_attempts": 10,
                "retry_seconds": 300},
      "channels": {
        "mail":  {"type": "email", "host": "smtp.example.org", "port": 587, "tls": "starttls",
                  "from": "fiona@example.org", "to": ["pi@example.org"], "login": "fiona"},
        "hook":  {"type": "webhook", "url": "https://lab.example.org/fiona", "method": "POST"},
        "ehr":   {"type": "fhir", "url": "https://fhir.example.org/r5"},
        "pacs":  {"type": "dicom", "destination": "research-pacs"},
        "keep":  {"type": "none"}
      },
      "subscriptions": [
        {"events": ["qc-failed", "send-failed"], "channel": "mail"},
        {"events": ["*"], "project": "ALPHA", "channel": "hook"}
      ]
    }

Secrets (the SMTP password, the webhook's HMAC key) are never in config.json: they are in the
secrets file (``tracker.secrets_file``, mode 0600) as ``"notifications": {"<channel>":
{"password": "..."}}`` / ``{"secret": "..."}`` and read when a channel delivers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from fionagw.config.reader import SectionReader

CHANNEL_TYPES = ("email", "webhook", "fhir", "dicom", "none")
# the events the pipeline emits (notify/events.py); "*" subscribes to all of them
EVENT_TYPES = (
    "study-stable",
    "qc-passed",
    "qc-failed",
    "qc-bypassed",
    "transfer-requested",
    "send-succeeded",
    "send-failed",
    "delivery-verified",
    "delivery-incomplete",
    "group-completed",
    "group-report",
    "service-down",
    "service-up",
    "test",
    "report-generated",
    "report-delivered",
    "report-delivery-failed",
)
# Deliveries of these events never emit events themselves (no report-delivered of a
# report-delivered: notify/deliver.py), so a subscription to "*" cannot loop.
QUIET_EVENTS = ("report-delivered", "report-delivery-failed")
TLS_MODES = ("starttls", "tls", "none")
_KEYS = {
    "email": ("type", "host", "port", "tls", "from", "to", "login", "ca_file", "timeout"),
    "webhook": ("type", "url", "method", "ca_file", "timeout", "signature_header"),
    "fhir": ("type", "url", "ca_file", "timeout", "code"),
    "dicom": ("type", "destination"),
    "none": ("type",),
}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_MAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


@dataclass(frozen=True)
class Channel:
    name: str
    type: str
    options: Mapping[str, Any] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        return self.options.get(key, default)


@dataclass(frozen=True)
class Subscription:
    events: tuple[str, ...]  # event types, or ("*",)
    channel: str
    project: str = ""  # "" = every project (and events without one)

    def wants(self, type: str, project: str) -> bool:
        if "*" not in self.events and type not in self.events:
            return False
        return not self.project or self.project == project


@dataclass(frozen=True)
class RetrySettings:
    tries_per_run: int = 3  # attempts within one sendNotifications run
    backoff_seconds: float = 2.0  # before the 2nd try of a run, doubled for each next one
    max_attempts: int = 10  # runs with a failed try before it is "delivery failed"
    retry_seconds: float = 300.0  # the earliest next run to try again, doubled per attempt


@dataclass(frozen=True)
class NotificationSettings:
    channels: Mapping[str, Channel] = field(default_factory=dict)
    subscriptions: tuple[Subscription, ...] = ()
    retry: RetrySettings = field(default_factory=RetrySettings)

    def channels_for(self, type: str, project: str) -> list[str]:
        """The channels an event goes to (each once, in the order of the subscriptions)."""
        names = [s.channel for s in self.subscriptions if s.wants(type, project)]
        return list(dict.fromkeys(names))


def _url(r: SectionReader, key: str) -> str:
    url = r.get(key, str)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise r.error(key, f"expected an http(s) URL, got {url!r}")
    return url.rstrip("/")


def _channel(name: str, r: SectionReader, destinations: Mapping[str, Any]) -> Channel:
    if not _NAME.match(name):
        raise r.error("", f"bad channel name {name!r}: letters, digits, '.', '_', '-'")
    kind = r.get("type", str)
    if kind not in CHANNEL_TYPES:
        raise r.error("type", f"expected one of {', '.join(CHANNEL_TYPES)}, got {kind!r}")
    r.reject_unknown(_KEYS[kind], what=f"a {kind} channel")
    opts: dict[str, Any] = {}
    if kind in ("email", "webhook", "fhir"):
        opts["timeout"] = r.positive_number("timeout", 30.0)
        ca = r.path("ca_file")
        if ca is not None and not ca.is_file():
            raise r.error("ca_file", f"file not found: {ca}")
        opts["ca_file"] = str(ca) if ca else ""
    if kind == "email":
        opts["host"] = r.get("host", str)
        opts["tls"] = r.get("tls", str, "starttls")
        if opts["tls"] not in TLS_MODES:
            raise r.error("tls", f"expected one of {', '.join(TLS_MODES)}, got {opts['tls']!r}")
        opts["port"] = r.port("port", 465 if opts["tls"] == "tls" else 587)
        opts["from"] = r.get("from", str)
        to = r.get("to", (str, list))
        to = [to] if isinstance(to, str) else to
        if not to or not all(isinstance(a, str) and _MAIL.match(a) for a in [opts["from"], *to]):
            raise r.error("to", "expected e-mail addresses (from and to: name@host)")
        opts["to"] = tuple(to)
        opts["login"] = r.get("login", str, "")
    elif kind == "webhook":
        opts["url"] = _url(r, "url")
        opts["method"] = r.get("method", str, "POST").upper()
        if opts["method"] not in ("POST", "PUT"):
            raise r.error("method", f"expected POST or PUT, got {opts['method']!r}")
        opts["signature_header"] = r.get("signature_header", str, "X-Fiona-Signature")
    elif kind == "fhir":
        opts["url"] = _url(r, "url")
        opts["code"] = r.get("code", str, "Imaging study report")
    elif kind == "dicom":
        dest = r.get("destination", str)
        if dest not in destinations:
            raise r.error("destination", f"no destination {dest!r} in destinations")
        if getattr(destinations[dest], "type", "") != "dicom":
            raise r.error("destination", f"destination {dest!r} is not of type dicom")
        opts["destination"] = dest
    return Channel(name, kind, opts)


def parse_notifications(
    parent: SectionReader, destinations: Mapping[str, Any]
) -> NotificationSettings:
    """The validated ``notifications`` section (ConfigError naming the key on a bad value)."""
    r = parent.section("notifications")
    r.reject_unknown(("channels", "subscriptions", "retry"), what="notifications")
    rr = r.section("retry")
    rr.reject_unknown(("tries_per_run", "backoff_seconds", "max_attempts", "retry_seconds"))
    retry = RetrySettings(
        max(1, int(rr.positive_number("tries_per_run", 3))),
        rr.positive_number("backoff_seconds", 2.0),
        max(1, int(rr.positive_number("max_attempts", 10))),
        rr.positive_number("retry_seconds", 300.0),
    )
    cr = r.section("channels")
    channels = {name: _channel(name, cr.section(name), destinations) for name in cr.data}
    subs = []
    for i, item in enumerate(r.get("subscriptions", list, [])):
        sr = SectionReader(
            r.file, item if isinstance(item, dict) else {}, f"{r.prefix}subscriptions[{i}]."
        )
        if not isinstance(item, dict):
            raise sr.error("", "expected an object with events and channel")
        sr.reject_unknown(("events", "channel", "project"), what="a subscription")
        events = sr.str_list("events")
        if not events:
            raise sr.error("events", 'expected a list of event types (or ["*"])')
        for e in events:
            if e != "*" and e not in EVENT_TYPES:
                raise sr.error(
                    "events", f"unknown event type {e!r} (known: {', '.join(EVENT_TYPES)})"
                )
        channel = sr.get("channel", str)
        if channel not in channels:
            raise sr.error("channel", f"no channel {channel!r} in notifications.channels")
        subs.append(Subscription(tuple(events), channel, sr.get("project", str, "")))
    return NotificationSettings(channels, tuple(subs), retry)
