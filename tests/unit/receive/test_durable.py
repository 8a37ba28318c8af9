"""receive/durable.py: seal, recovery and group commit on a real folder (ext4 xattrs)."""

from __future__ import annotations

import os
from pathlib import Path

from fionagw.paths import SitePaths
from fionagw.receive import durable, flushes, store
from fionagw.receive.notify import Notifier


def _sealed(paths: SitePaths, data: bytes, name: str, study: str = "1.2.3") -> str:
    path, fd = store.open_temp(str(paths.temp)) or ("", -1)
    os.write(fd, data)
    item = durable.Sealed(
        path, paths.archive_study_dir(study), name, study, "A", "B", "127.0.0.1", len(data)
    )
    durable.seal(fd, item, durable.crc(data))
    os.close(fd)
    return path


def _site(tmp_path: Path) -> SitePaths:
    paths = SitePaths(tmp_path / "data")
    paths.temp.mkdir(parents=True)
    paths.archive.mkdir(parents=True)
    return paths


def test_recovery_moves_sealed_files_and_removes_the_rest(tmp_path: Path) -> None:
    paths = _site(tmp_path)
    _sealed(paths, b"complete" * 100, "MR.1.2.3.4")
    torn = _sealed(paths, b"torn data" * 100, "MR.1.2.3.5")
    os.truncate(torn, 50)  # its data did not all reach the disk: the CRC no longer matches
    empty = store.open_temp(str(paths.temp))  # a pool file, never used
    assert empty is not None
    os.close(empty[1])
    moved, removed = durable.recover(paths)
    assert (moved, removed) == (1, 2)
    study = paths.archive_study_dir("1.2.3")
    assert sorted(os.listdir(study)) == ["MR.1.2.3.4"]
    assert (study / "MR.1.2.3.4").read_bytes() == b"complete" * 100
    assert oct((study / "MR.1.2.3.4").stat().st_mode & 0o777) == "0o640"
    assert not [n for n in os.listdir(paths.temp) if n.startswith(store.TEMP_PREFIX)]


def test_recovery_keeps_the_later_of_two_copies(tmp_path: Path) -> None:
    paths = _site(tmp_path)
    _sealed(paths, b"first", "MR.9")
    _sealed(paths, b"second", "MR.9")
    assert durable.recover(paths) == (2, 0)
    assert (paths.archive_study_dir("1.2.3") / "MR.9").read_bytes() == b"second"


def test_a_seal_naming_a_place_outside_the_archive_is_refused(tmp_path: Path) -> None:
    paths = _site(tmp_path)
    path, fd = store.open_temp(str(paths.temp)) or ("", -1)
    os.write(fd, b"x")
    item = durable.Sealed(path, paths.archive / "..", "escaped", "..", "", "", "", 1)
    durable.seal(fd, item, durable.crc(b"x"))
    os.close(fd)
    assert durable.recover(paths) == (0, 1)
    assert not list(tmp_path.rglob("escaped"))


def test_group_commit_flushes_each_folder_once_per_batch(tmp_path: Path) -> None:
    paths = _site(tmp_path)
    notifier = Notifier(paths)
    notifier.start()
    committer = durable.Committer(paths, notifier, durable=True)
    committer.start()
    before = flushes.counts()
    study = paths.archive_study_dir("1.2.3")
    study.mkdir()
    items = []
    N = durable.POOL_SIZE - 2  # noqa: N806 - fewer than the pool holds
    for i in range(N):
        path, fd, entry_durable = committer.take_temp()
        assert entry_durable  # from the pool: the name was fsynced ahead of time
        data = f"image {i}".encode()
        os.write(fd, data)
        item = durable.Sealed(path, study, f"MR.{i}", "1.2.3", "A", "B", "127.0.0.1", len(data))
        durable.seal(fd, item, durable.crc(data))
        os.close(fd)
        os.rename(path, study / item.name)  # as sink.commit does before Success
        items.append(item)
    for item in items:  # all ready at once, as from many associations
        committer.submit(item)
    committer.close()
    after = flushes.counts()
    assert sorted(os.listdir(study)) == sorted(f"MR.{i}" for i in range(N))
    assert after["file"] - before["file"] == N  # one flush per image: the seal's
    assert after["folder"] - before["folder"] <= N // 2  # study folder batched, pool refills
    assert not [n for n in os.listdir(paths.temp) if n.startswith(store.TEMP_PREFIX)]
