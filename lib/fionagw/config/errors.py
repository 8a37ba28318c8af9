"""The one error type of configuration problems."""

from __future__ import annotations

from pathlib import Path


class ConfigError(Exception):
    """A configuration problem: str() is one line 'file: key: problem' ('file: problem' when
    the problem is the file as a whole)."""

    def __init__(self, file: Path | str, key: str, problem: str) -> None:
        self.file, self.key, self.problem = str(file), key, problem
        super().__init__(f"{file}: {key}: {problem}" if key else f"{file}: {problem}")


class ConfigWarning:
    """A problem that does not stop a program (an unknown key, ignored): one line like
    ConfigError's, ``file: key: problem``."""

    def __init__(self, file: Path | str, key: str, problem: str) -> None:
        self.file, self.key, self.problem = str(file), key, problem

    def __str__(self) -> str:
        return f"{self.file}: {self.key}: {self.problem}"

    def __repr__(self) -> str:
        return f"ConfigWarning({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ConfigWarning) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))
