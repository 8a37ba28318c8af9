"""How much one upload may bring: bytes when unpacked and number of files."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import UploadError

MAX_ENTRIES = 100_000


def format_mb(n: int) -> str:
    return f"{n / (1024 * 1024):g} MB"


@dataclass(frozen=True)
class UploadLimits:
    max_bytes: int  # decompressed total of one upload
    max_entries: int = MAX_ENTRIES

    @classmethod
    def from_mb(cls, mb: int, max_entries: int = MAX_ENTRIES) -> UploadLimits:
        return cls(mb * 1024 * 1024, max_entries)


class Budget:
    """Bytes and files an upload may still use; raises UploadError when it runs out."""

    def __init__(self, limits: UploadLimits) -> None:
        self.limits = limits
        self.bytes = 0
        self.entries = 0

    def add_entry(self, name: str) -> None:
        self.entries += 1
        if self.entries > self.limits.max_entries:
            raise UploadError(
                f"more than {self.limits.max_entries} files in one upload "
                f"(at {name}): split it into smaller uploads",
                "too many files",
            )

    def add_bytes(self, n: int, name: str) -> None:
        self.bytes += n
        if self.bytes > self.limits.max_bytes:
            raise UploadError(
                f"upload is larger than the limit of {format_mb(self.limits.max_bytes)} "
                f"when unpacked (at {name}): split it into smaller uploads",
                "too large",
            )
