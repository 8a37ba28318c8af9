"""Secret files: the secrets file (``tracker.secrets_file``: REDCap API tokens, de-identification
keys) and files holding one secret (a project's key file, the heartbeat POST token).

A secret file must be a regular file, not a symbolic link, that only its owner can read
(mode 0600 or stricter): a looser one is refused rather than used. Every problem raises
SecretsError, a ConfigError whose text is one line naming the file and never its content.

The secrets file (JSON)::

    {"tokens": {"Incoming": "<32 hex>", ...}, "deid_keys": {"<PROJECT>": "<hex or text>"}}
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from fionagw.config.errors import ConfigError

SHAPE = 'expected an object with a "tokens" object {"<project>": "<token>"} and/or "deid_keys"'


class SecretsError(ConfigError):
    """A problem with a secret file: str() is one line 'file: problem'."""

    def __init__(self, file: Path | str, problem: str) -> None:
        super().__init__(file, "", problem)


class SecretFileMissing(SecretsError):
    """The secret file does not exist (a key file is then created; a secrets file is an error)."""


def read_secret_file(path: Path, what: str = "read the secret") -> bytes:
    """The bytes of a secret file after checking that only its owner can read it.

    ``what``: what a looser mode would let group or others do, for the error text.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise SecretFileMissing(path, "file not found") from None
    except OSError as exc:
        raise SecretsError(path, f"cannot read: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise SecretsError(path, "not a regular file")
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o077:
            raise SecretsError(
                path, f"mode {mode:04o} lets group or others {what}; run: chmod 600 {path}"
            )
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read()
    finally:
        os.close(fd)
    if not data:
        raise SecretsError(path, "empty")
    return data


def read_secret_line(path: Path, what: str = "read the secret") -> str:
    """The first line of a secret file, stripped (a bearer token and the like)."""
    try:
        text = read_secret_file(path, what).decode("utf-8")
    except UnicodeDecodeError:
        raise SecretsError(path, "not UTF-8 text") from None
    lines = text.strip().splitlines()
    if not lines:
        raise SecretsError(path, "empty")
    return lines[0].strip()


def parse_secrets(path: Path, data: bytes) -> dict[str, Any]:
    """The secrets file's object from its bytes (``path`` names it in errors)."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise SecretsError(path, "not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise SecretsError(
            path, f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    if not isinstance(doc, dict):
        raise SecretsError(path, SHAPE)
    return doc


def load_secrets(path: Path) -> dict[str, Any]:
    """The secrets file, read with the mode check and parsed."""
    return parse_secrets(path, read_secret_file(path, "access the secrets"))
