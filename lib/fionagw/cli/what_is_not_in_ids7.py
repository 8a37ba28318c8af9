"""whatIsNotInIDS7 [SITE]: the nightly reconciliation of every transfer ever sent with the
research PACS (FIONA's whatIsInIDS7 --force): what is incomplete or missing goes into the
tracker, and is queued again where the project's resend_missing is on."""

from __future__ import annotations

import argparse
import sys

from fionagw.cli.jobs import run_job
from fionagw.config import SiteConfig
from fionagw.tracking.base import Tracker


def _body(cfg: SiteConfig, tracker: Tracker, args: argparse.Namespace) -> str:
    from fionagw.reconcile.check import reconcile

    return reconcile(cfg, tracker).summary()


def main(argv: list[str]) -> int:
    return run_job("whatIsNotInIDS7", __doc__ or "", _body, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
