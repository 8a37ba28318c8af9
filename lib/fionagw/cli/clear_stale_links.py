"""clearStaleLinks [SITE] (cron, daily 03:02): broken links, orphan series JSON and empty folders
in raw/, participants/ and srs/."""

from __future__ import annotations

import sys

from fionagw.cli.common import cron_job, job_parser, prepare_job
from fionagw.ops.retention import clear_stale_links

PROGRAM = "clearStaleLinks"


def main(argv: list[str]) -> int:
    p = job_parser(
        PROGRAM,
        "Remove broken symlinks, series JSON files whose folder is gone, and empty folders "
        "in raw/, participants/ and srs/.",
        verbose="print the summary",
    )
    p.add_argument(
        "--min-age",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="leave folders and JSON files younger than this alone (default 600)",
    )
    args = p.parse_args(argv)
    cfg, _log = prepare_job(args, PROGRAM)
    with cron_job(cfg, PROGRAM) as run:
        result = clear_stale_links(cfg, min_age_s=max(0.0, args.min_age))
        run.summary = result.summary()
        run.work = result.broken_links + result.orphan_json + result.empty_dirs
    if args.verbose:
        print(f"{PROGRAM}: {result.summary()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
