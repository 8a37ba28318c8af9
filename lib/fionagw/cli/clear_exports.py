"""clearExports [SITE] (cron, Wed and Sat 23:00): delete temp export folders older than
exports.temp_max_age_minutes, then the oldest export zips while the export area is over
exports.max_size_mb or the disk is fuller than exports.max_disk_percent."""

from __future__ import annotations

import sys

from fionagw.cli.common import cron_job, job_parser, prepare_job
from fionagw.config import ConfigError

PROGRAM = "clearExports"


def main(argv: list[str]) -> int:
    from fionagw.export.clear import clear_exports
    from fionagw.export.settings import load_exports

    p = job_parser(PROGRAM, __doc__ or "", verbose="print the summary")
    p.add_argument("-n", "--dry-run", action="store_true", help="only print what would be deleted")
    args = p.parse_args(argv)
    cfg, log = prepare_job(args, PROGRAM)
    with cron_job(cfg, PROGRAM) as run:
        try:
            result = clear_exports(load_exports(cfg), dry_run=args.dry_run)
        except (ConfigError, OSError) as exc:
            log.error("nothing deleted", extra={"error": str(exc)})
            print(f"{PROGRAM}: {exc}", file=sys.stderr)
            run.ok, run.summary = False, str(exc)
            return 1
        run.summary = result.summary()
        run.work = len(result.temp_folders) + len(result.files)
    log.info(run.summary)
    if getattr(args, "verbose", False) or args.dry_run:
        print(f"{PROGRAM}: {run.summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
