"""sendFiles [SITE]: deliver the packages in the outboxes of the sftp and https destinations
(cron, every 5 minutes, under a lock): each file under a temporary name, verified, renamed into
place; the package then moves to sent/ and the tracker records the delivery.

``sendFiles --retry DESTINATION PACKAGE`` moves a package that gave up (failed/) back into the
outbox with a fresh attempt count."""

from __future__ import annotations

import argparse
import sys

from fionagw.cli.jobs import run_job
from fionagw.config import SiteConfig
from fionagw.tracking.base import Tracker


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--retry",
        nargs=2,
        metavar=("DESTINATION", "PACKAGE"),
        help="move a failed package back into the outbox (PACKAGE: its name without .tgz)",
    )


def _body(cfg: SiteConfig, tracker: Tracker, args: argparse.Namespace) -> str:
    from fionagw.send.deliver import retry_failed, send_files

    if args.retry:
        from fionagw.admin import audit

        outcome = retry_failed(cfg, *args.retry)
        destination, package = args.retry
        audit.record(cfg, "retry", package, "failed package back in the outbox",
                     destination=destination)  # fmt: skip
        return outcome
    return send_files(cfg, tracker).summary()


def main(argv: list[str]) -> int:
    return run_job("sendFiles", __doc__ or "", _body, argv, _args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
