"""The secrets file holding the REDCap API tokens.

Format (JSON)::

    {"tokens": {"Incoming": "<32 hex>", "DataTransferProjects": "<32 hex>", "Routing": "...",
                "CouplingList": "...", "AutoID": "...", "<research project>": "..."}}

Other top-level keys (for example "_comment") are ignored. The file must be a regular file
that only its owner can read (mode 0600 or stricter): a token gives access to the whole
REDCap project, so a readable file is refused rather than used. Every problem raises
SecretsError, whose text is one line naming the file and never containing a token.
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

TOKEN_RE = re.compile(r"[0-9A-Fa-f]{32}")


class SecretsError(Exception):
    """A problem with the secrets file: str() is one line 'file: problem'."""

    def __init__(self, file: Path | str, problem: str) -> None:
        self.file, self.problem = str(file), problem
        super().__init__(f"{file}: {problem}")


def load_tokens(path: str | os.PathLike[str]) -> dict[str, str]:
    """Project name -> API token from the secrets file, after checking its mode and content."""
    p = Path(path)
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise SecretsError(p, "file not found") from None
    except OSError as exc:
        raise SecretsError(p, f"cannot open: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise SecretsError(p, "not a regular file")
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o077:
            raise SecretsError(
                p, f"mode {mode:04o} lets group or others access the tokens; run: chmod 600 {p}"
            )
        with os.fdopen(fd, "rb", closefd=False) as fh:
            raw = fh.read()
    finally:
        os.close(fd)
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise SecretsError(p, "not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise SecretsError(
            p, f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("tokens"), dict):
        raise SecretsError(p, 'expected an object with a "tokens" object {"<project>": "<token>"}')
    tokens: dict[str, str] = {}
    for name, token in data["tokens"].items():
        if not name.strip():
            raise SecretsError(p, "tokens: empty project name")
        if not isinstance(token, str) or not TOKEN_RE.fullmatch(token):
            raise SecretsError(
                p, f"tokens.{name}: not a REDCap API token (32 hexadecimal characters)"
            )
        tokens[name] = token
    return tokens


def token_for(tokens: dict[str, str], project: str, file: Path | str = "secrets file") -> str:
    """The token of one project, with a one-line error naming the file when it is missing."""
    try:
        return tokens[project]
    except KeyError:
        raise SecretsError(
            file, f"tokens.{project}: missing (no API token for REDCap project {project})"
        ) from None
