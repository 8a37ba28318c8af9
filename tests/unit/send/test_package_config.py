"""config.json sections of the sftp and https destinations: what they parse to, one-line errors
naming the key, and a package over an https destination's size limit refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from fionagw.config import ConfigError, load_config
from fionagw.send import load_destinations
from fionagw.send.base import SendContext
from fionagw.send.https import HttpsDestination
from fionagw.send.package import packages
from fionagw.send.sftp import SftpDestination
from support.site import write_config
from support.synth import standard_mr_series, write_study


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    known, key, token = tmp_path / "known_hosts", tmp_path / "id", tmp_path / "token"
    for f in (known, key, token):
        f.write_text("x\n")
        f.chmod(0o600)
    return {"known_hosts": str(known), "key_file": str(key), "token_file": str(token)}


def _sftp(files: dict[str, str], **extra: object) -> dict[str, object]:
    spec = {"type": "sftp", "host": "sftp.example.org", "user": "fiona"}
    spec |= {"known_hosts": files["known_hosts"], "key_file": files["key_file"]}
    return {**spec, **extra}


def _https(files: dict[str, str], **extra: object) -> dict[str, object]:
    return {
        "type": "https",
        "url": "https://up.example.org/x",
        "token_file": files["token_file"],
        **extra,
    }


def test_sections_parse(tmp_path: Path, files: dict[str, str]) -> None:
    cfg = load_config(
        write_config(
            tmp_path,
            destinations={"s": _sftp(files, parallel=2, bandwidth_mb_s=5), "h": _https(files)},
        )
    )
    dests = load_destinations(cfg)
    s, h = dests["s"], dests["h"]
    assert isinstance(s, SftpDestination) and isinstance(h, HttpsDestination)
    assert s.describe() == "sftp fiona@sftp.example.org:22, folder ." and s.parallel == 2
    assert s.outbox == cfg.datadir / "packages" / "s" / "outbox"
    assert h.max_package_bytes == 5 * 10**9 and h.s.chunk_bytes == 64 << 20


@pytest.mark.parametrize(
    ("kind", "extra", "key", "problem"),
    [
        ("sftp", {"key_file": None}, "key_file", "exactly one of key_file and password_file"),
        ("sftp", {"password_file": "pw"}, "key_file", "exactly one of"),
        ("sftp", {"known_hosts": "/nonexistent"}, "known_hosts", "file not found"),
        ("sftp", {"parallel": 0}, "parallel", "must be 1-16"),
        ("sftp", {"bandwidth_mb_s": -1}, "bandwidth_mb_s", "must not be negative"),
        ("sftp", {"hostname": "x"}, "hostname", "unknown"),
        ("https", {"url": "http://up.example.org"}, "url", "must start with https://"),
        ("https", {"token_file": None}, "token_file", "give token_file, or cert_file"),
        ("https", {"cert_file": "c.pem"}, "key_file", "go together"),
    ],
)
def test_errors_are_one_line_naming_the_key(
    tmp_path: Path,
    files: dict[str, str],
    kind: str,
    extra: dict[str, object],
    key: str,
    problem: str,
) -> None:
    spec = _sftp(files, **extra) if kind == "sftp" else _https(files, **extra)
    with pytest.raises(ConfigError) as err:
        load_config(write_config(tmp_path, destinations={"remote": spec}))
    assert err.value.key.startswith("destinations.remote.")
    assert err.value.key.endswith(key) and problem in str(err.value)
    assert "\n" not in str(err.value)


def test_package_over_the_size_limit_is_refused(tmp_path: Path, files: dict[str, str]) -> None:
    cfg = load_config(
        write_config(tmp_path, destinations={"h": _https(files, max_package_gb=0.0001)})
    )
    dest = load_destinations(cfg)["h"]
    assert isinstance(dest, HttpsDestination)
    study = write_study(tmp_path / "in", series=standard_mr_series("SIEMENS", 3)[:2])
    result = dest.enqueue(study, SendContext("P", "P001", "", "2.25.9"), None)
    assert not result.ok and "exceeds the destination's limit of 0.00 GB" in result.error
    assert packages(dest.outbox) == []  # not offered to sendFiles
