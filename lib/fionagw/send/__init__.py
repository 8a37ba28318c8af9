"""Sending de-identified studies to the destinations named in config.json.

``load_destinations(cfg)`` gives the configured destinations by name; each has
``send_study(files, context) -> SendResult`` and ``check() -> str``. The types built in are
``folder`` and ``dicom`` (C-STORE); a new type subclasses :class:`Destination` and is made
known with :func:`register` (see base.py).
"""

from fionagw.send import dicom, folder  # noqa: F401 - registers the built-in types
from fionagw.send.base import (
    DEFAULT_DESTINATION,
    Destination,
    SendContext,
    SendError,
    SendingSettings,
    SendResult,
    destination_types,
    load_destinations,
    load_sending,
    register,
)

__all__ = [
    "DEFAULT_DESTINATION",
    "Destination",
    "SendContext",
    "SendError",
    "SendResult",
    "SendingSettings",
    "destination_types",
    "load_destinations",
    "load_sending",
    "register",
]
