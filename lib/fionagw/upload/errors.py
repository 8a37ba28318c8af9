"""The one error of the upload pipeline."""

from __future__ import annotations


class UploadError(Exception):
    """A refused upload; str() is one line for the user naming what is wrong and where.

    The text can hold file names and metadata values (a CD's folder may be named after the
    patient), so logs get ``kind``, a fixed phrase, instead."""

    def __init__(self, message: str, kind: str = "refused") -> None:
        super().__init__(message)
        self.kind = kind
