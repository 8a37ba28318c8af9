"""Run the REDCap double as a server: python -m tests.support.redcap_double --port N --tokens FILE
(from the checkout; or python -m support.redcap_double from tests/).

--tokens takes a secrets file ({"tokens": {"<project>": "<32 hex>", ...}}, the gateway's own
format): each named project is created (names not in config/redcap/projects.json get the
ProjectTemplate structure) and answers to its token. Without --tokens, one token per
project is made up and printed.
"""

from __future__ import annotations

import argparse
import json
import sys

from .app import RedcapDouble
from .server import serve


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m tests.support.redcap_double", description=__doc__.splitlines()[0]
    )
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--tokens", help="secrets file with the tokens to accept")
    args = ap.parse_args(argv)
    double = RedcapDouble()
    if args.tokens:
        with open(args.tokens, encoding="utf-8") as fh:
            tokens = json.load(fh)["tokens"]
        for project, token in tokens.items():
            double.add_token(project, token)
    else:
        for project in list(double.projects):
            print(f"{project}: {double.token(project)}")
    running = serve(double, args.port, args.host, quiet=False)
    print(f"REDCap double listening on {running.url} (Ctrl-C stops it)", flush=True)
    try:
        running._thread.join()
    except KeyboardInterrupt:
        running.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
