"""The receiver's connection limits in config.json (config/sections.py, ReceiverSettings)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fionagw.config import ConfigError, load_config
from support.site import write_config


def test_defaults(tmp_path: Path) -> None:
    rec = load_config(write_config(tmp_path)).receiver
    assert (rec.handshake_timeout, rec.max_unassociated, rec.max_unassociated_per_ip) == (5, 32, 4)
    assert (rec.max_associations, rec.idle_displace_seconds) == (32, 10)


def test_values(tmp_path: Path) -> None:
    receiver = {"handshake_timeout": 2.5, "max_unassociated": 100, "max_associations": 8}
    rec = load_config(write_config(tmp_path, receiver=receiver)).receiver
    assert (rec.handshake_timeout, rec.max_unassociated, rec.max_associations) == (2.5, 100, 8)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("handshake_timeout", 0, "receiver.handshake_timeout: must be greater than 0"),
        ("max_unassociated_per_ip", -1, "receiver.max_unassociated_per_ip: must be greater"),
        ("max_associations", "many", "receiver.max_associations: expected"),
        ("idle_displace_seconds", 0, "receiver.idle_displace_seconds: must be greater than 0"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, key: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write_config(tmp_path, receiver={key: value}))


def test_durability_flush_by_default_os_on_request(tmp_path: Path) -> None:
    assert load_config(write_config(tmp_path)).receiver.durability == "flush"
    os_mode = load_config(write_config(tmp_path, receiver={"durability": "os"})).receiver
    assert os_mode.durability == "os"
    with pytest.raises(ConfigError, match="receiver.durability: must be one of flush, os"):
        load_config(write_config(tmp_path, receiver={"durability": "none"}))
