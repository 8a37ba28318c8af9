"""Listening ports: the address a listener binds, whether it is free, the listening socket.

The check and the listener resolve a host the same way (getaddrinfo: IPv4, IPv6 and host
names), so a port reported free is the very address the daemon will bind.
"""

from __future__ import annotations

import socket
from typing import Any


def bind_address(host: str, port: int) -> tuple[int, Any]:
    """(address family, socket address) a listener on ``host:port`` binds ("" = all addresses).

    Raises OSError (socket.gaierror) when the host does not resolve.
    """
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, _type, _proto, _name, address = infos[0]
    return family, address


def port_available(host: str, port: int) -> str | None:
    """None when ``host:port`` can be bound now; otherwise why not, in words (no host:port)."""
    try:
        family, address = bind_address(host, port)
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(address)
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def listen(host: str, port: int, backlog: int) -> socket.socket:
    """A socket listening on ``host:port`` (SO_REUSEADDR: a restart need not wait for TIME_WAIT)."""
    family, address = bind_address(host, port)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock
