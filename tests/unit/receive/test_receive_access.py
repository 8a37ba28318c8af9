"""receive/access.py: the receiver's allow-lists of peer addresses and calling AE titles."""

from __future__ import annotations

from fionagw.config import ReceiverSettings
from fionagw.receive.access import AccessPolicy


def test_no_lists_allow_everyone() -> None:
    policy = AccessPolicy()
    assert policy.ip_allowed("203.0.113.9") and policy.ip_allowed("not an address")
    assert policy.aet_allowed("ANYONE") and policy.aet_allowed("")


def test_addresses_and_networks_ipv4_ipv6_and_mapped() -> None:
    policy = AccessPolicy(allowed_ips=["10.0.0.0/8", "192.168.1.7", "2001:db8::/32"])
    assert policy.ip_allowed("10.20.30.40") and policy.ip_allowed("192.168.1.7")
    assert policy.ip_allowed("::ffff:10.1.2.3")  # an IPv4 peer on a dual-stack listener
    assert policy.ip_allowed("2001:db8::5")
    assert not policy.ip_allowed("192.168.1.8") and not policy.ip_allowed("127.0.0.1")
    assert not policy.ip_allowed("2001:db9::5") and not policy.ip_allowed("garbage")


def test_calling_ae_titles_compared_without_padding() -> None:
    policy = AccessPolicy(allowed_aets=["MODALITY1 ", "PACS"])
    assert policy.aet_allowed("MODALITY1") and policy.aet_allowed("PACS")
    assert not policy.aet_allowed("MODALITY2") and not policy.aet_allowed("pacs")


def test_from_the_receiver_settings() -> None:
    policy = AccessPolicy.from_settings(
        ReceiverSettings(allowed_calling_aetitles=("CT1",), allowed_ips=("127.0.0.0/8",))
    )
    assert policy.aet_allowed("CT1") and not policy.aet_allowed("CT2")
    assert policy.ip_allowed("127.0.0.1") and not policy.ip_allowed("10.0.0.1")
