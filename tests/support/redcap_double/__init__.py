"""A local stand-in for REDCap's API (REDCap itself cannot be installed here).

RedcapDouble serves ``POST /api/`` like REDCap for projects defined by the data dictionaries
in config/redcap/ (see app.py for what it implements). Use it in-process through
transport.mount() (a requests adapter, so PyCap and our client run unmodified), or over a
socket with server.serve(); fixtures.py has pytest fixtures for both.
"""

from .app import ALL_RIGHTS, Call, RedcapDouble, TokenInfo
from .model import CONFIG_DIR, ApiError, Project
from .server import RunningServer, serve
from .transport import TEST_URL, DoubleAdapter, mount, unmount

__all__ = [
    "ALL_RIGHTS",
    "CONFIG_DIR",
    "TEST_URL",
    "ApiError",
    "Call",
    "DoubleAdapter",
    "Project",
    "RedcapDouble",
    "RunningServer",
    "TokenInfo",
    "mount",
    "serve",
    "unmount",
]
