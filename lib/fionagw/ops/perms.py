"""The one permission policy for what the gateway writes under DATADIR.

Folders 0750, files 0640 (patient data: owner and the gateway's group only), secrets and keys
0600 in a 0700 folder. Programs set ``UMASK`` at start, so files created without an explicit
mode follow the policy too.
"""

from __future__ import annotations

import grp
import os
import stat
from pathlib import Path

DIR_MODE = 0o750
FILE_MODE = 0o640
SECRET_MODE = 0o600
KEY_DIR_MODE = 0o700
UMASK = 0o027


def set_umask() -> int:
    """Apply the policy's umask to this process (and its children); return the old one."""
    return os.umask(UMASK)


def others_access(path: Path) -> bool:
    """True if ``path`` gives others any of read, write or execute."""
    return bool(path.stat().st_mode & stat.S_IRWXO)


def datadir_warning(datadir: Path) -> str | None:
    """One warning line if DATADIR is open to others, else None (a missing DATADIR is not
    this check's concern)."""
    try:
        mode = datadir.stat().st_mode
    except OSError:
        return None
    if mode & stat.S_IRWXO:
        return (
            f"warning: DATADIR {datadir} has mode {stat.S_IMODE(mode):04o}, open to others;"
            f" run: chmod -R o-rwx {datadir}"
        )
    return None


def make_dirs(path: Path, mode: int = DIR_MODE) -> None:
    """``mkdir -p`` with ``mode`` on every level it creates (``Path.mkdir(parents=True)``
    gives the parents the umask's default instead)."""
    if path.is_dir():
        return
    make_dirs(path.parent, mode)
    try:
        path.mkdir(mode=mode)
    except FileExistsError:
        if not path.is_dir():
            raise


def group_id(name: str) -> int:
    """The gid of group ``name``; KeyError if there is no such group."""
    return grp.getgrnam(name).gr_gid


def share_with_group(folder: Path, gid: int) -> None:
    """Give ``folder`` the group ``gid`` and the setgid bit, so that everything created in it
    later belongs to that group (e.g. a separate web user, as FIONA's processing/www-data)."""
    st = folder.stat()
    if st.st_gid != gid:
        os.chown(folder, -1, gid)
    if not st.st_mode & stat.S_ISGID:
        folder.chmod(stat.S_IMODE(st.st_mode) | stat.S_ISGID)
