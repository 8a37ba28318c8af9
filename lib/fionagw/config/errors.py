"""The one error type of configuration problems."""

from __future__ import annotations

from pathlib import Path


class ConfigError(Exception):
    """A configuration problem: str() is one line 'file: key: problem' ('file: problem' when
    the problem is the file as a whole)."""

    def __init__(self, file: Path | str, key: str, problem: str) -> None:
        self.file, self.key, self.problem = str(file), key, problem
        super().__init__(f"{file}: {key}: {problem}" if key else f"{file}: {problem}")
