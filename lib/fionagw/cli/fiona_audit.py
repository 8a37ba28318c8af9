"""`fiona audit verify|list`: check the audit trail's chain, or print its records.

``verify`` exits 0 when every record is intact, 1 naming each edited or removed record.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from typing import Any

from fionagw.admin import audit
from fionagw.cli.common import config_errors, load_site

PROGRAM = "fiona audit"
COMMAND = "audit"


def register(sub: Any) -> None:
    p = sub.add_parser(COMMAND, help="the audit trail: verify its chain, list its records")
    p.add_argument("--site", default="")
    acts = p.add_subparsers(dest="action", required=True)
    acts.add_parser("verify", help="detect an edited or removed record (exit 1, naming it)")
    ls = acts.add_parser("list", help="the records, newest last")
    ls.add_argument("--action", dest="what", default="", help="only this action")
    ls.add_argument("--who", default="", help="only this account")
    ls.add_argument("--search", default="", help="only records containing this text")
    ls.add_argument("-n", "--lines", type=int, default=50, help="how many (default 50)")
    ls.add_argument("--format", choices=("text", "json", "csv"), default="text")


def run(args: argparse.Namespace) -> int:
    with config_errors(PROGRAM):
        cfg = load_site(args)
    path = audit.audit_file(cfg)
    if args.action == "verify":
        count, problems = audit.verify(cfg)
        for problem in problems:
            print(f"{PROGRAM}: {path}: {problem}", file=sys.stderr)
        if problems:
            print(f"{PROGRAM}: {path}: FAILED: {len(problems)} problem(s) in {count} records")
            return 1
        print(f"{PROGRAM}: {path}: OK, {count} records, chain intact")
        return 0
    records = audit.search(cfg, args.search, args.what, args.who, limit=max(args.lines, 0))[::-1]
    if args.format == "json":
        for rec in records:
            print(json.dumps(rec, ensure_ascii=False))
    elif args.format == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerows(audit.csv_rows(records))
    else:
        for row in list(audit.csv_rows(records))[1:]:
            seq, when, who, origin, action, obj, message, details = row
            print(f"{seq:>5} {when} {who} ({origin}) {action} {obj}: {message} {details}".rstrip())
    return 0
