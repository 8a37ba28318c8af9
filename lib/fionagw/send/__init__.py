"""Sending de-identified studies to the destinations named in config.json.

``load_destinations(cfg)`` gives the site's destinations by name; each has
``send_study(files, context) -> SendResult``, ``check() -> str`` and ``describe() -> str``.
The types built in are ``folder``, ``dicom`` (C-STORE), and ``sftp`` and ``https``, whose
studies go as packages through an outbox that ``sendFiles`` delivers (package.py, deliver.py). A new type registers how its
config section is parsed with :func:`fionagw.config.register_destination_type` (see
fionagw/config/destinations.py; folder.py is a complete small example) and subclasses
:class:`Destination` for the sending.
"""

from fionagw.config import DEFAULT_DESTINATION, destination_types

# the built-in types register their config sections (light modules: pynetdicom, paramiko and
# requests are imported only when a destination of their type is used)
from fionagw.send import dicom_settings, folder, https, sftp  # noqa: F401
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
