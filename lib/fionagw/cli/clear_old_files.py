"""clearOldFiles [SITE] (cron, hourly at :30): delete the oldest studies while free space is low,
and log files older than retention.log_days."""

from __future__ import annotations

import logging
import sys

from fionagw.cli.common import add_site, parser, prepare_job
from fionagw.ops.jobstate import job_run
from fionagw.ops.locks import cron_lock
from fionagw.ops.retention import clear_old_files, clear_old_logs
from fionagw.tracking.base import TrackerError
from fionagw.tracking.projects import ProjectsError

PROGRAM = "clearOldFiles"


def main(argv: list[str]) -> int:
    p = parser(PROGRAM, "Delete the oldest studies (archive, raw, links, quarantine) while free space is under "
                        "retention.target_free_percent; never one with a pending or failed transfer request or "
                        "younger than retention.min_age_hours. Also delete logs older than retention.log_days.")
    add_site(p)
    p.add_argument("-n", "--dry-run", action="store_true", help="only print what would be deleted")
    p.add_argument("-v", "--verbose", action="store_true", help="print the summary")
    args = p.parse_args(argv)
    cfg, log = prepare_job(args, PROGRAM)
    with cron_lock(cfg, PROGRAM), job_run(cfg, PROGRAM) as run:
        try:
            result = clear_old_files(cfg, dry_run=args.dry_run)
        except (TrackerError, ProjectsError, OSError) as exc:
            # Without the tracker we cannot tell which studies are still wanted: delete nothing.
            log.error("nothing deleted: cannot read the transfer requests", extra={"error": str(exc)})
            print(f"{PROGRAM}: nothing deleted: {exc}", file=sys.stderr)
            run.ok, run.summary = False, f"tracker unavailable: {exc}"
            return 1
        result.logs_deleted = len(clear_old_logs(cfg, dry_run=args.dry_run))
        run.summary = result.summary()
        low = result.free_percent_after < cfg.retention.target_free_percent
        if low:
            logging.getLogger("fionagw.retention").warning(
                "free space still under target", extra={"free_percent": round(result.free_percent_after, 2),
                                                        "target": cfg.retention.target_free_percent})
    if args.verbose or args.dry_run:
        print(f"{PROGRAM}: {result.summary()}")
        for uid, nbytes in result.deleted:
            print(f"  {'would delete' if args.dry_run else 'deleted'} {uid} ({nbytes} bytes)")
        for uid, why in result.spared.items():
            print(f"  kept {uid}: {why}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
