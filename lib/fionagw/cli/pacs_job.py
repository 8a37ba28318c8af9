"""What the query/retrieve cron jobs share: config, log, lock, recorded outcome, and one-line
errors for a PACS that is down or a pacs section that is wrong (exit 1; the next run retries)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from fionagw.cli.common import cron_job, prepare_job
from fionagw.config import ConfigError, SiteConfig


def run_pacs_job(
    prog: str, args: argparse.Namespace, body: Callable[[SiteConfig, argparse.Namespace], str]
) -> int:
    from fionagw.pacs.client import PacsError

    cfg, log = prepare_job(args, prog)
    with cron_job(cfg, prog) as run:
        try:
            summary = body(cfg, args)
        except (PacsError, ConfigError, OSError) as exc:
            log.error("job failed; the next run retries", extra={"error": str(exc)})
            print(f"{prog}: {exc}", file=sys.stderr)
            run.ok, run.summary = False, str(exc)
            return 1
        except Exception:
            logging.getLogger(f"fionagw.{prog}").exception("job failed unexpectedly")
            print(f"{prog}: unexpected error, see {cfg.paths.logfile(prog)}", file=sys.stderr)
            run.ok, run.summary = False, "unexpected error (see log)"
            return 1
        run.summary = summary
    if summary:
        log.info(summary)
        print(f"{prog}: {summary}")
    return 0
