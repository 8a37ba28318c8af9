"""detectStudyArrival [SITE]: handle series and studies that have been quiet long enough.

cron runs it 4 times a minute. Under a non-blocking lock: a second copy exits 0 at once.
Prints nothing unless -v (cron mails output); details go to logs/detectStudyArrival<site>.log.
Exit status 1 when a job failed (it stays in .arrived and is retried at the next run).
"""

from __future__ import annotations

import sys

from fionagw.arrival import detect
from fionagw.cli.common import cron_job, job_parser, prepare_job
from fionagw.ops.log_filter import redact  # a UID from the data may be no UID (letters, a name)

PROGRAM = "detectStudyArrival"


def main(argv: list[str]) -> int:
    p = job_parser(
        PROGRAM,
        "Detect finished series/studies (quiet period): recount, quarantine, "
        "incoming list, study-arrived events.",
        verbose="print what this run handled",
    )
    args = p.parse_args(argv)
    cfg, _log = prepare_job(args, PROGRAM)
    with cron_job(cfg, PROGRAM) as run:
        report = detect.run(cfg)
        run.ok = not report.errors
        run.summary = f"{len(report.series)} series, {len(report.studies)} studies completed"
        run.work = len(report.series) + len(report.studies)
    if args.verbose:
        for s in report.series:
            q = (
                f", quarantine {s.quarantine.tgz.name} ({s.quarantine.bytes_out} bytes)"
                if s.quarantine
                else ""
            )
            print(redact(f"series {s.study_uid} {s.series_uid}: {s.num_files} files{q}"))
        for st in report.studies:
            print(
                redact(
                    f"study {st.study_uid}: {'arrived' if st.new else 'updated'}, "
                    f"{len(st.series)} series, {st.images} images"
                )
            )
        print(
            f"{len(report.waiting)} job(s) waiting, {len(report.deferred)} study(ies) deferred, "
            f"{len(report.kept)} kept, {report.seconds:.2f} s"
        )
    for error in report.errors:
        print(redact(f"{PROGRAM}: {error}"), file=sys.stderr)
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
