"""clearOldFiles [SITE] (cron, hourly at :30): delete the oldest studies while free space is low,
log files older than retention.log_days, and (once a day) tracker studies older than
retention.tracker_days whose transfers are all done."""

from __future__ import annotations

import logging
import sys

from fionagw.cli.common import cron_job, job_parser, prepare_job
from fionagw.config.projects import ProjectsError
from fionagw.ops.retention import clear_old_files, clear_old_logs, prune_tracker
from fionagw.tracking.base import TrackerError

PROGRAM = "clearOldFiles"


def main(argv: list[str]) -> int:
    p = job_parser(
        PROGRAM,
        "Delete the oldest studies (archive, raw, links, quarantine) while free space is under "
        "retention.target_free_percent; never one with a pending or failed transfer request or "
        "younger than retention.min_age_hours. Also delete logs older than retention.log_days.",
        verbose="print the summary",
    )
    p.add_argument("-n", "--dry-run", action="store_true", help="only print what would be deleted")
    p.add_argument(
        "--tracker-now",
        action="store_true",
        help="run the tracker retention now (normally once a day)",
    )
    args = p.parse_args(argv)
    cfg, log = prepare_job(args, PROGRAM)
    with cron_job(cfg, PROGRAM) as run:
        try:
            result = clear_old_files(cfg, dry_run=args.dry_run)
        except (TrackerError, ProjectsError, OSError) as exc:
            # Without the tracker we cannot tell which studies are still wanted: delete nothing.
            log.error(
                "nothing deleted: cannot read the transfer requests", extra={"error": str(exc)}
            )
            print(f"{PROGRAM}: nothing deleted: {exc}", file=sys.stderr)
            run.ok, run.summary = False, f"tracker unavailable: {exc}"
            return 1
        result.logs_deleted = len(clear_old_logs(cfg, dry_run=args.dry_run))
        run.summary = result.summary()
        run.work = len(result.deleted) + result.logs_deleted
        rc = 0
        try:
            pruned = prune_tracker(cfg, dry_run=args.dry_run, force=args.tracker_now)
        except (TrackerError, ProjectsError, OSError) as exc:
            log.error(
                "tracker retention skipped: cannot reach the tracker", extra={"error": str(exc)}
            )
            print(f"{PROGRAM}: tracker retention skipped: {exc}", file=sys.stderr)
            run.ok, pruned, rc = False, None, 1
        if pruned is not None:
            run.work += len(pruned)
            run.summary += (
                f", {len(pruned)} tracker studies {'would be ' if args.dry_run else ''}deleted"
            )
        low = result.free_percent_after < cfg.retention.target_free_percent
        if low:
            logging.getLogger("fionagw.retention").warning(
                "free space still under target",
                extra={
                    "free_percent": round(result.free_percent_after, 2),
                    "target": cfg.retention.target_free_percent,
                },
            )
    if args.verbose or args.dry_run:
        print(f"{PROGRAM}: {result.summary()}")
        for uid, nbytes in result.deleted:
            print(f"  {'would delete' if args.dry_run else 'deleted'} {uid} ({nbytes} bytes)")
        for uid, why in result.spared.items():
            print(f"  kept {uid}: {why}")
        for uid in pruned or []:
            print(f"  {'would delete' if args.dry_run else 'deleted'} tracker study {uid}")
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
