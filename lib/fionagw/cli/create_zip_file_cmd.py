"""createZipFileCmd [SITE]: run the queued exports (cron, every 3 minutes, under a lock):
pull each study from its project's research PACS, build the export type (PURE, NIFTI, DICOM)
and write the zip for download or to a folder destination (FIONA's createZipFileCmd.php)."""

from __future__ import annotations

import argparse
import sys

from fionagw.cli.jobs import run_job
from fionagw.config import SiteConfig
from fionagw.tracking.base import Tracker


def _body(cfg: SiteConfig, tracker: Tracker, args: argparse.Namespace) -> str:
    from fionagw.export.runner import run_queue

    return run_queue(cfg, tracker.projects()).summary()


def main(argv: list[str]) -> int:
    return run_job("createZipFileCmd", __doc__ or "", _body, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
