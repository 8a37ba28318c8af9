"""config.json ``destinations`` and ``sending``: defaults, parsing, one-line errors naming the key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fionagw.config import ConfigError, load_config
from fionagw.send import (
    DEFAULT_DESTINATION,
    SendingSettings,
    destination_types,
    load_destinations,
    load_sending,
)
from fionagw.send.dicom import DicomDestination
from fionagw.send.folder import FolderDestination
from support.site import ROOT, write_config


def _cfg(tmp_path: Path, **overrides: object):  # type: ignore[no-untyped-def]
    return load_config(write_config(tmp_path, **overrides))


def test_without_destinations_the_default_is_a_folder_in_datadir(tmp_path):
    cfg = _cfg(tmp_path)
    dests = load_destinations(cfg)
    assert list(dests) == [DEFAULT_DESTINATION]
    folder = dests[DEFAULT_DESTINATION]
    assert isinstance(folder, FolderDestination)
    assert folder.path == cfg.datadir / "outbox"
    assert load_sending(cfg) == SendingSettings(
        max_attempts=5, retry_base_seconds=60, retry_max_seconds=3600
    )


def test_the_checkouts_config_json_has_the_research_folder_and_sending():
    cfg = load_config(ROOT / "config" / "config.json")
    dests = load_destinations(cfg)
    assert isinstance(dests[DEFAULT_DESTINATION], FolderDestination)
    assert dests[DEFAULT_DESTINATION].path == (ROOT / "data" / "outbox").resolve()
    raw = json.loads((ROOT / "config" / "config.json").read_text())
    assert load_sending(cfg) == SendingSettings(**raw["sending"])


def test_dicom_and_folder_destinations_parsed_with_relative_paths(tmp_path, tls_files):
    (tmp_path / "tls").symlink_to(tls_files["ca"].parent)
    cfg = _cfg(
        tmp_path,
        DICOMAETITLE="GATEWAY1",
        destinations={
            "out": {"type": "folder", "path": "outbox"},
            "pacs": {
                "type": "dicom",
                "host": "127.0.0.1",
                "port": "4242",
                "called_aetitle": "ORTHANC",
            },
            "secure": {
                "type": "dicom",
                "host": "127.0.0.1",
                "port": 2762,
                "called_aetitle": "RESEARCH",
                "calling_aetitle": "FIONA",
                "timeout": 5,
                "reconnects": 1,
                "tls": {
                    "cert": "tls/client.cert.pem",
                    "key": "tls/client.key.pem",
                    "ca": "tls/ca.pem",
                },
            },
        },
        sending={"max_attempts": 3, "retry_base_seconds": 10, "retry_max_seconds": 100},
    )
    dests = load_destinations(cfg)
    assert sorted(dests) == ["out", "pacs", "secure"]
    assert dests["out"].path == tmp_path / "outbox"  # relative to the config file
    pacs = dests["pacs"]
    assert isinstance(pacs, DicomDestination)
    assert (pacs.host, pacs.port, pacs.called_aetitle) == ("127.0.0.1", 4242, "ORTHANC")
    assert pacs.calling_aetitle == "GATEWAY1"  # the gateway's DICOMAETITLE by default
    assert pacs.tls is None and pacs.timeout == 30 and pacs.reconnects == 3
    secure = dests["secure"]
    assert isinstance(secure, DicomDestination)
    assert secure.calling_aetitle == "FIONA" and secure.timeout == 5 and secure.reconnects == 1
    assert secure.tls is not None and secure.tls.server_name == "127.0.0.1"
    assert secure.describe() == "dicom RESEARCH@127.0.0.1:2762 (TLS) as FIONA"
    s = load_sending(cfg)
    assert (s.max_attempts, s.retry_base_seconds, s.retry_max_seconds) == (3, 10, 100)
    assert [s.delay(n) for n in (1, 2, 3, 4, 5)] == [10, 20, 40, 80, 100]


def test_a_site_can_have_its_own_destinations(tmp_path):
    path = write_config(
        tmp_path,
        destinations={"a": {"type": "folder", "path": "a"}},
        SITES={"B": {"destinations": {"b": {"type": "folder", "path": "b"}}}},
    )
    assert list(load_destinations(load_config(path))) == ["a"]
    assert list(load_destinations(load_config(path, site="B"))) == ["b"]


def test_empty_destinations_means_none(tmp_path):
    assert load_destinations(_cfg(tmp_path, destinations={})) == {}


PACS = {"type": "dicom", "host": "127.0.0.1", "port": 4242, "called_aetitle": "ORTHANC"}

BAD_DESTINATIONS = [
    ([], "destinations", "expected an object"),
    ({"x": "folder"}, "destinations.x", "expected an object"),
    ({"a/b": {"type": "folder", "path": "o"}}, "destinations.a/b", "letters, digits"),
    ({"x": {"path": "o"}}, "destinations.x.type", "missing (required)"),
    (
        {"x": {"type": "ftp"}},
        "destinations.x.type",
        "unknown type 'ftp' (known: dicom, folder, https, sftp)",
    ),
    ({"x": {"type": "folder"}}, "destinations.x.path", "missing (required)"),
    ({"x": {"type": "folder", "path": 3}}, "destinations.x.path", "expected a string"),
    ({"x": {"type": "folder", "path": "o", "adress": 1}}, "destinations.x.adress", "unknown key"),
    (
        {"x": {**PACS, "called_aet": "X"}},
        "destinations.x.called_aet",
        "unknown key for a dicom destination",
    ),
    ({"x": {**PACS, "host": ""}}, "destinations.x.host", "empty"),
    (
        {"x": {k: v for k, v in PACS.items() if k != "host"}},
        "destinations.x.host",
        "missing (required)",
    ),
    ({"x": {**PACS, "port": "eleven"}}, "destinations.x.port", "expected an integer port 1-65535"),
    ({"x": {**PACS, "port": 70000}}, "destinations.x.port", "port must be 1-65535"),
    (
        {"x": {**PACS, "called_aetitle": "A" * 17}},
        "destinations.x.called_aetitle",
        "1-16 characters",
    ),
    ({"x": {**PACS, "calling_aetitle": "A\\B"}}, "destinations.x.calling_aetitle", "no backslash"),
    ({"x": {**PACS, "timeout": 0}}, "destinations.x.timeout", "must be positive"),
    ({"x": {**PACS, "timeout": "30s"}}, "destinations.x.timeout", "expected an integer or float"),
    ({"x": {**PACS, "reconnects": -1}}, "destinations.x.reconnects", "must not be negative"),
    ({"x": {**PACS, "tls": True}}, "destinations.x.tls", "expected an object"),
    ({"x": {**PACS, "tls": {"cert": "c.pem"}}}, "destinations.x.tls.key", "given together"),
    ({"x": {**PACS, "tls": {"ca": "missing.pem"}}}, "destinations.x.tls.ca", "file not found"),
    ({"x": {**PACS, "tls": {"cafile": "x"}}}, "destinations.x.tls.cafile", "unknown key"),
]


@pytest.mark.parametrize(
    ("destinations", "key", "problem"),
    BAD_DESTINATIONS,
    ids=[f"{k}:{p}" for _, k, p in BAD_DESTINATIONS],
)
def test_destination_errors_are_one_line_naming_the_key(tmp_path, destinations, key, problem):
    config = write_config(tmp_path, destinations=destinations)
    with pytest.raises(ConfigError) as err:  # load_config validates the destinations
        load_config(config)
    text = str(err.value)
    assert "\n" not in text
    assert text.startswith(f"{config.resolve()}: {key}: "), text
    assert problem in text
    assert err.value.key == key


def test_unusable_tls_files_and_folder_path(tmp_path):
    (tmp_path / "garbage.pem").write_text("not a certificate\n")
    (tmp_path / "a-file").write_text("x")
    cases = [
        (
            {"x": {**PACS, "tls": {"cert": "garbage.pem", "key": "garbage.pem"}}},
            "destinations.x.tls.cert",
            "cannot load the certificate and key",
        ),
        (
            {"x": {**PACS, "tls": {"ca": "garbage.pem"}}},
            "destinations.x.tls.ca",
            "cannot load CA certificates",
        ),
        ({"x": {"type": "folder", "path": "a-file"}}, "destinations.x.path", "not a folder"),
    ]
    for destinations, key, problem in cases:
        with pytest.raises(ConfigError) as err:
            _cfg(tmp_path, destinations=destinations)
        assert err.value.key == key and problem in err.value.problem and "\n" not in str(err.value)


BAD_SENDING = [
    ({"max_attempts": 0}, "sending.max_attempts", "at least 1"),
    ({"max_attempts": "five"}, "sending.max_attempts", "expected an integer"),
    ({"retry_base_seconds": -1}, "sending.retry_base_seconds", "must be positive"),
    (
        {"retry_base_seconds": 100, "retry_max_seconds": 10},
        "sending.retry_max_seconds",
        "not be less",
    ),
    ({"retries": 3}, "sending.retries", "unknown key"),
    ("often", "sending", "expected an object"),
]


@pytest.mark.parametrize(
    ("sending", "key", "problem"), BAD_SENDING, ids=[k + ":" + p for _, k, p in BAD_SENDING]
)
def test_sending_errors_are_one_line_naming_the_key(tmp_path, sending, key, problem):
    with pytest.raises(ConfigError) as err:  # load_config validates the sending section
        _cfg(tmp_path, sending=sending)
    assert err.value.key == key and problem in err.value.problem and "\n" not in str(err.value)


def test_registered_types():
    assert destination_types() == ["dicom", "folder", "https", "sftp"]
