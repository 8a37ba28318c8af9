"""Sending de-identified studies to the destinations named in config.json.

``load_destinations(cfg)`` gives the site's destinations by name; each has
``send_study(files, context) -> SendResult``, ``check() -> str`` and ``describe() -> str``.
The types built in are ``folder`` and ``dicom`` (C-STORE). A new type registers how its
config section is parsed with :func:`fionagw.config.register_destination_type` (see
fionagw/config/destinations.py; folder.py is a complete small example) and subclasses
:class:`Destination` for the sending.
"""

from fionagw.config import DEFAULT_DESTINATION, destination_types

# the built-in types register their config sections (light modules: dicom.py, with
# pynetdicom, is imported only when a dicom destination is used)
from fionagw.send import dicom_settings, folder  # noqa: F401
from fionagw.send.base import (
    Destination,
    SendContext,
    SendError,
    SendingSettings,
    SendResult,
    load_destinations,
    load_sending,
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
]
