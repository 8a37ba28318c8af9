"""`fiona run`: run a site's daemons in the foreground, restart them if they die, stop them all.

Children are the same bin/ programs in `foreground` mode. They get PR_SET_PDEATHSIG so
that even a SIGKILLed supervisor leaves no orphan behind.
"""

from __future__ import annotations

import ctypes
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

BIN = Path(__file__).resolve().parents[3] / "bin"
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


@dataclass
class Child:
    name: str
    argv: list[str]
    proc: subprocess.Popen | None = None
    restarts: int = 0
    next_start: float = 0.0
    started_at: float = field(default=0.0)

    def start(self) -> None:
        self.proc = subprocess.Popen(self.argv, preexec_fn=_die_with_parent)
        self.started_at = time.monotonic()


def supervise(children: list[Child], *, poll: float = 0.5) -> int:
    """Run until SIGINT/SIGTERM; restart a child that exits, with backoff up to 60 s."""
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for c in children:
            c.start()
        while not stopping:
            time.sleep(poll)
            for c in children:
                if stopping or c.proc is None or c.proc.poll() is None:
                    continue
                now = time.monotonic()
                if c.next_start == 0.0:
                    # Quick deaths in a row back off; a long healthy run resets the count.
                    if now - c.started_at > 300:
                        c.restarts = 0
                    delay = min(60.0, 2.0 ** c.restarts)
                    c.next_start = now + delay
                    print(f"fiona run: {c.name} exited with {c.proc.returncode}; restarting in {delay:.0f} s",
                          file=sys.stderr, flush=True)
                elif now >= c.next_start:
                    c.restarts += 1
                    c.next_start = 0.0
                    c.start()
    finally:
        for c in children:
            if c.proc and c.proc.poll() is None:
                c.proc.terminate()
        deadline = time.monotonic() + 15
        for c in children:
            if c.proc is None:
                continue
            try:
                c.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                c.proc.kill()
                c.proc.wait()
        for s, h in old.items():
            signal.signal(s, h)
    return 0
