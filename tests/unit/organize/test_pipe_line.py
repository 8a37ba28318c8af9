"""The FIFO line format between the receiver and processSingleFile, parsed."""

from __future__ import annotations

from pathlib import Path

from fionagw.classify import Connection
from fionagw.organize.tree import parse_pipe_line


def test_pipe_line_formats() -> None:
    conn, path = parse_pipe_line(
        '"MODALITY",FIONA,10.0.0.5,/data/site/archive/scp_1.2,MR.1.2.3\n\0'
    )
    assert conn == Connection("MODALITY", "FIONA", "10.0.0.5")
    assert path == Path("/data/site/archive/scp_1.2/MR.1.2.3")
    conn, path = parse_pipe_line("/some/file.dcm\n")
    assert conn == Connection("unknown", "unknown", "unknown") and path == Path("/some/file.dcm")
    conn, _ = parse_pipe_line("A E\\X,B,,/d,f")
    assert conn == Connection("AEX", "B", "0.0.0.0")
    assert parse_pipe_line("a,b,c\n") is None
    assert parse_pipe_line("\0") is None
