"""ops/ports.py with real sockets: IPv4, IPv6, host names, a port in use, a name that does not
resolve."""

from __future__ import annotations

import errno
import os
import socket

import pytest

from fionagw.ops.ports import bind_address, listen, port_available

IN_USE = os.strerror(errno.EADDRINUSE)


@pytest.mark.parametrize(
    ("host", "family"),
    [("127.0.0.1", socket.AF_INET), ("::1", socket.AF_INET6), ("localhost", None)],
)
def test_a_free_port_is_available_and_in_use_once_listened_on(
    host: str, family: int | None
) -> None:
    with listen(host, 0, backlog=1) as probe:  # the kernel picks a free port
        port = probe.getsockname()[1]
    assert port_available(host, port) is None
    with listen(host, port, backlog=1) as sock:
        if family is not None:
            assert sock.family == family
        assert port_available(host, port) == IN_USE
        with socket.create_connection(sock.getsockname()[:2], timeout=5):
            conn, _ = sock.accept()
            conn.close()
    assert port_available(host, port) is None


def test_check_and_listener_resolve_a_host_the_same_way() -> None:
    family, address = bind_address("localhost", 4242)
    with listen("localhost", 0, backlog=1) as sock:
        assert sock.family == family and sock.getsockname()[0] == address[0]


def test_empty_host_means_every_address() -> None:
    _family, address = bind_address("", 4242)
    assert address[0] in ("0.0.0.0", "::") and address[1] == 4242


def test_a_host_that_does_not_resolve_is_reported_not_raised() -> None:
    problem = port_available("no-such-host.invalid", 4242)
    assert problem and "4242" not in problem
    with pytest.raises(OSError):
        listen("no-such-host.invalid", 4242, backlog=1)
