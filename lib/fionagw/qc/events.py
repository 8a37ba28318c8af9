"""QC events (study checked, request held, bypass): one place for notifications to hook into.

For now an event is a log line; ``fields`` must hold no value from a DICOM file (UIDs,
project names, check names and counts only).
"""

from __future__ import annotations

import logging
from typing import Any

LOGGER = logging.getLogger(__name__)
TYPES = ("qc-checked", "qc-held", "qc-bypassed")


def emit(kind: str, **fields: Any) -> None:
    """Announce a QC event of ``kind`` (one of TYPES)."""
    LOGGER.info("qc event", extra={"event": kind, **fields})
