"""The REDCap API tokens of the secrets file (``tracker.secrets_file``).

Format (JSON)::

    {"tokens": {"Incoming": "<32 hex>", "DataTransferProjects": "<32 hex>", "Routing": "...",
                "CouplingList": "...", "AutoID": "...", "<research project>": "..."}}

Other top-level keys (for example "_comment", or "deid_keys" for de-identification) are
ignored here. The file is read by :func:`fionagw.config.load_secrets`, which refuses a file
that group or others can read (a token gives access to the whole REDCap project). Every problem
raises SecretsError, whose text is one line naming the file and never containing a token.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from fionagw.config import SecretsError, load_secrets

__all__ = ["TOKEN_RE", "SecretsError", "load_tokens", "token_for"]

TOKEN_RE = re.compile(r"[0-9A-Fa-f]{32}")


def load_tokens(path: str | os.PathLike[str]) -> dict[str, str]:
    """Project name -> API token from the secrets file, after checking its mode and content."""
    p = Path(path)
    data = load_secrets(p)
    if not isinstance(data.get("tokens"), dict):
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
