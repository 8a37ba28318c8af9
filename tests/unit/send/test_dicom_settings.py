"""The dicom destination's keys for verification and speed: defaults, values, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from fionagw.config import ConfigError, load_config
from fionagw.send import load_destinations
from support.site import write_config

BASE = {"type": "dicom", "host": "pacs", "port": 104, "called_aetitle": "PACS"}


def _dest(tmp_path: Path, **keys: object):  # type: ignore[no-untyped-def]
    cfg = load_config(write_config(tmp_path, destinations={"pacs": {**BASE, **keys}}))
    return load_destinations(cfg)["pacs"]


def test_defaults_verify_on_the_storage_ae_one_association_and_1_mib_pdus(tmp_path):
    d = _dest(tmp_path)
    assert d.verify_sends is True
    assert (d.query_aetitle, d.query_port) == ("PACS", 104)
    assert (d.associations, d.max_pdu) == (1, 1024 * 1024)


def test_a_separate_query_ae_and_parallel_associations(tmp_path):
    d = _dest(
        tmp_path,
        verify=False,
        query_aetitle="PACS_QR",
        query_port=7840,
        associations=4,
        max_pdu=65536,
    )
    assert d.verify_sends is False and d.verify("1.2.3", {"1.2.3.4": ["1.2.3.4.5"]}) is None
    assert (d.query_aetitle, d.query_port, d.associations, d.max_pdu) == (
        "PACS_QR",
        7840,
        4,
        65536,
    )


@pytest.mark.parametrize(
    ("keys", "problem"),
    [
        ({"associations": 0}, "associations: must be 1-16, got 0"),
        ({"associations": 17}, "associations: must be 1-16, got 17"),
        ({"max_pdu": 100}, "max_pdu: must be 4096 to 67108864 bytes, got 100"),
        ({"query_port": 70000}, "query_port: port must be 1-65535, got 70000"),
        ({"verify": "yes"}, "verify"),
        ({"query_aetitle": "A" * 17}, "query_aetitle"),
    ],
)
def test_bad_values_are_one_line_naming_the_key(tmp_path, keys, problem):
    with pytest.raises(ConfigError) as err:
        _dest(tmp_path, **keys)
    text = str(err.value)
    assert problem in text and "destinations.pacs." in text and "\n" not in text
