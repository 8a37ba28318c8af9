"""The quarantine tgz writer: CRC-32 combination, tar headers equal to tarfile's, the gzip
stream read back by tar and gzip, dangling links skipped and partial files removed on error."""

from __future__ import annotations

import gzip
import hashlib
import os
import random
import subprocess
import tarfile
import zlib
from pathlib import Path

import pytest

from fionagw.arrival import quarantine
from fionagw.arrival.quarantine import Member, crc32_combine, write_tgz
from fionagw.config import SiteConfig
from support.arrival_site import arrival_site


@pytest.fixture
def site(tmp_path: Path) -> SiteConfig:
    return arrival_site(tmp_path)


# -- tgz writer --------------------------------------------------------------------------------


def test_crc32_combine() -> None:
    rng = random.Random(1)
    for _ in range(20):
        a, b = rng.randbytes(rng.randrange(0, 5000)), rng.randbytes(rng.randrange(0, 70000))
        assert crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(a + b)


def test_tar_headers_match_tarfile() -> None:
    st = os.stat(__file__)
    long_uid = "1.2.840." + "9" * 56
    for name in (
        "a/b.dcm",
        f"site/raw/{long_uid}/{long_uid}/{long_uid}",
        "x" * 130,
        f"site/raw/{long_uid}",
    ):
        for kind in (tarfile.REGTYPE, tarfile.DIRTYPE):
            size = 1234 if kind == tarfile.REGTYPE else 0
            ours = quarantine._header(name, st, kind, size)
            info = tarfile.TarInfo(name)
            info.type, info.size, info.mode, info.mtime = (
                kind,
                size,
                st.st_mode & 0o7777,
                int(st.st_mtime),
            )
            info.uid, info.gid = st.st_uid, st.st_gid
            info.uname, info.gname = quarantine._user(st.st_uid), quarantine._group(st.st_gid)
            try:
                ref = info.tobuf(tarfile.USTAR_FORMAT)
            except ValueError:
                ref = info.tobuf(tarfile.GNU_FORMAT)
            assert ours == ref, name


def test_write_tgz_round_trip(tmp_path: Path) -> None:
    rng = random.Random(2)
    src = tmp_path / "src"
    src.mkdir()
    members = [Member("top/dir", src, True)]
    blobs = {
        "noise": rng.randbytes(3 * quarantine.CHUNK + 17),  # stored chunks
        "text": b"ClassifyType mosaic SIEMENS " * 120000,  # deflated chunks
        "empty": b"",
        "small": b"x" * 511,
        "zeros": bytes(quarantine.CHUNK),
    }
    for i, (name, data) in enumerate(blobs.items()):
        (src / name).write_bytes(data)
        os.symlink(src / name, src / f"link-{name}")
        members.append(Member(f"top/dir/{'long-' * 30}{i}-{name}", src / f"link-{name}"))
    dest = tmp_path / "q" / "out.tgz"
    result = write_tgz(dest, members)
    assert result.stored_chunks and result.deflated_chunks
    data = dest.read_bytes()
    assert result.md5 == hashlib.md5(data).hexdigest()
    assert result.bytes_out == len(data) < result.bytes_in
    assert len(gzip.decompress(data)) == result.bytes_in
    assert subprocess.run(["gzip", "-t", str(dest)]).returncode == 0
    with tarfile.open(dest) as tar:
        names = tar.getnames()
        assert names[0] == "top/dir" and tar.getmember("top/dir").isdir()
        for m in members[1:]:
            info = tar.getmember(m.arcname)
            assert info.isfile()  # symlinks dereferenced
            assert tar.extractfile(info).read() == m.path.read_bytes()
    listing = subprocess.run(
        ["tar", "-tzf", str(dest)], capture_output=True, text=True, check=True
    ).stdout
    assert len(listing.splitlines()) == len(members)
    assert not [p for p in dest.parent.iterdir() if p.name.startswith(".tmp")]


def test_write_tgz_skips_dangling_link_and_cleans_up_on_error(tmp_path: Path) -> None:
    (tmp_path / "gone").symlink_to(tmp_path / "missing")
    (tmp_path / "ok").write_bytes(b"data")
    result = write_tgz(
        tmp_path / "a.tgz", [Member("a/gone", tmp_path / "gone"), Member("a/ok", tmp_path / "ok")]
    )
    assert result.skipped == ["a/gone"]
    with tarfile.open(tmp_path / "a.tgz") as tar:
        assert tar.getnames() == ["a/ok"]
    old = (tmp_path / "a.tgz").read_bytes()
    with pytest.raises(OSError):  # a folder where a file is expected: read fails
        write_tgz(tmp_path / "a.tgz", [Member("a/ok", tmp_path / "ok"), Member("a/bad", tmp_path)])
    assert (tmp_path / "a.tgz").read_bytes() == old
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp")]
