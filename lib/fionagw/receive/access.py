"""Who may store: the receiver's allow-lists of peer addresses and calling AE titles.

An empty list allows everyone (FIONA's storescp took any peer). The address is checked when
the connection is accepted (a refused one is closed before a byte is read, so a request from
outside costs nothing), the calling AE title from the fixed fields of the A-ASSOCIATE-RQ,
before its presentation contexts are parsed (a refused one gets an A-ASSOCIATE-RJ).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from fionagw.config import ReceiverSettings


def peer_ip(address: str) -> str:
    """The peer's address as logged and checked: an IPv4-mapped IPv6 address as IPv4."""
    if address.startswith("::ffff:") and "." in address:
        return address[7:]
    return address


class AccessPolicy:
    """receiver.allowed_ips (addresses or networks) and receiver.allowed_calling_aetitles."""

    def __init__(self, allowed_ips: Iterable[str] = (), allowed_aets: Iterable[str] = ()) -> None:
        self.networks = [ipaddress.ip_network(n, strict=False) for n in allowed_ips]
        self.aets = {a.strip() for a in allowed_aets}

    @classmethod
    def from_settings(cls, receiver: ReceiverSettings) -> AccessPolicy:
        return cls(receiver.allowed_ips, receiver.allowed_calling_aetitles)

    def ip_allowed(self, ip: str) -> bool:
        """True without a list; else ``ip`` (IPv4, IPv6, IPv4-mapped IPv6) is in a network."""
        if not self.networks:
            return True
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        if addr.version == 6 and addr.ipv4_mapped:
            addr = addr.ipv4_mapped
        return any(addr in net for net in self.networks)

    def aet_allowed(self, calling_aet: str) -> bool:
        """True without a list; else the calling AE title is one of the list's."""
        return not self.aets or calling_aet in self.aets
