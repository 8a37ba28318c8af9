"""The cookie-signing key of a site, in a file so that every worker process shares it and
sessions survive restarts."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from fionagw.ops.perms import SECRET_MODE

KEY_BYTES = 32


def load_secret_key(path: Path) -> bytes:
    """The key in ``path``, made (mode 0600) if the file is missing or short."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, SECRET_MODE)
    except FileExistsError:
        key = path.read_bytes()
        if len(key) >= KEY_BYTES:
            return key
        # a writer was interrupted: replace the short key
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC, SECRET_MODE)
    with os.fdopen(fd, "wb") as f:
        key = secrets.token_bytes(KEY_BYTES)
        f.write(key)
        f.flush()
        os.fsync(f.fileno())
    return key
