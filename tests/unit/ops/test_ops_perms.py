"""The permission policy's functions (ops/perms.py) and the writers that use it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from fionagw.ops import perms
from fionagw.ops.atomic import copy_file_atomic, write_bytes_atomic, write_json_atomic
from fionagw.paths import SitePaths


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_set_umask_applies_0027_to_new_files_and_folders(tmp_path: Path) -> None:
    old = perms.set_umask()
    try:
        (tmp_path / "f").write_text("x")
        (tmp_path / "d").mkdir()
        assert os.umask(0o027) == 0o027
    finally:
        os.umask(old)
    assert mode(tmp_path / "f") == 0o640
    assert mode(tmp_path / "d") == 0o750


def test_atomic_writers_default_to_0640_even_with_umask_0(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        write_json_atomic(tmp_path / "s.json", {"PatientName": "x"})
        write_bytes_atomic(tmp_path / "b", b"x")
        copy_file_atomic(tmp_path / "b", tmp_path / "c")
    finally:
        os.umask(old)
    for name in ("s.json", "b", "c"):
        assert mode(tmp_path / name) == 0o640


def test_site_paths_create_folders_0750_keys_0700(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        paths = SitePaths(tmp_path / "data")
        paths.create()
    finally:
        os.umask(old)
    assert mode(tmp_path / "data") == 0o750
    assert mode(paths.archive) == 0o750
    assert mode(paths.keys) == 0o700


def test_datadir_warning(tmp_path: Path) -> None:
    d = tmp_path / "data"
    assert perms.datadir_warning(d) is None  # missing: not this check's concern
    d.mkdir(mode=0o750)
    d.chmod(0o750)
    assert perms.datadir_warning(d) is None
    assert not perms.others_access(d)
    d.chmod(0o755)
    warning = perms.datadir_warning(d)
    assert warning is not None and "\n" not in warning and "0755" in warning
    assert perms.others_access(d)


def test_datadir_group_shares_the_layout_folders(tmp_path: Path) -> None:
    import grp

    from fionagw.config import ConfigError, load_config
    from support.site import write_config

    mine = grp.getgrgid(os.getgid()).gr_name
    cfg = load_config(write_config(tmp_path, DATADIR_GROUP=mine))
    cfg.paths.create()
    for folder in (cfg.paths.archive, cfg.paths.raw, cfg.paths.logs):
        st = folder.stat()
        assert st.st_gid == os.getgid() and st.st_mode & stat.S_ISGID
    (cfg.paths.raw / "x.json").write_text("{}")
    assert (cfg.paths.raw / "x.json").stat().st_gid == os.getgid()

    other = tmp_path / "other"
    other.mkdir()
    try:
        load_config(write_config(other, DATADIR_GROUP="no-such-group-fionagw"))
    except ConfigError as exc:
        assert "DATADIR_GROUP" in str(exc) and "no such group" in str(exc)
    else:
        raise AssertionError("an unknown DATADIR_GROUP was accepted")
