"""createTransferRequest [SITE]: queue request files for anonymizeAndSend (new or with late series)."""

from __future__ import annotations

import argparse
import sys

from fionagw.cli.jobs import run_job
from fionagw.config import SiteConfig
from fionagw.routing.requests import create_transfer_requests
from fionagw.tracking.base import Tracker


def _body(cfg: SiteConfig, tracker: Tracker, args: argparse.Namespace) -> str:
    created = create_transfer_requests(cfg, tracker)
    return f"{len(created)} transfer request file(s) queued" if created else ""


def main(argv: list[str]) -> int:
    return run_job("createTransferRequest", __doc__ or "", _body, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
