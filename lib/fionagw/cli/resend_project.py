"""resendProject [--project P] [SITE]: queue again the requests a resend was asked for."""

from __future__ import annotations

import argparse
import sys

from fionagw.cli.jobs import run_job
from fionagw.config import SiteConfig
from fionagw.routing.requests import resend_project
from fionagw.tracking.base import Tracker


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--project",
        "--importAll",
        dest="project",
        default=None,
        help="only this project (FIONA's --importAll)",
    )


def _body(cfg: SiteConfig, tracker: Tracker, args: argparse.Namespace) -> str:
    created = resend_project(cfg, tracker, args.project)
    if created:
        from fionagw.admin import audit

        for path in created:  # asked for in the tracker; queued here: one record each
            audit.record(cfg, "resend", path.name, "transfer request queued again (resend)")
    return f"{len(created)} transfer request file(s) queued again" if created else ""


def main(argv: list[str]) -> int:
    return run_job("resendProject", __doc__ or "", _body, argv, _args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
