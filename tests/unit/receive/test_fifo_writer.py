"""The receiver's FIFO writer: a larger pipe buffer, reopening after the reader restarts, and a
regular file where the FIFO should be left alone."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from fionagw.receive.notify import FifoWriter


def test_fifo_writer_enlarges_the_pipe(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    writer = FifoWriter(fifo)
    writer.ensure()
    rfd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        assert fcntl.fcntl(rfd, 1032) == 65536  # F_GETPIPE_SZ: the default
        lines = [f"STORESCU,FIONA,127.0.0.1,/archive/scp_1.2.3,MR.1.2.3.{i}\n" for i in range(2000)]
        assert all(writer.send(line) for line in lines)  # ~100 KiB: more than the default
        assert fcntl.fcntl(rfd, 1032) >= 1 << 20
    finally:
        os.close(rfd)
        writer.close()


def test_fifo_writer_reopens_after_reader_restart(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    writer = FifoWriter(fifo)
    assert not writer.send("a,b,c,d,e\n")  # FIFO created, nobody reading: skipped at once
    assert fifo.is_fifo()
    for attempt in range(2):  # reader goes away and comes back
        rfd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        assert writer.send(f"line {attempt}\n")
        assert os.read(rfd, 100) == f"line {attempt}\n".encode()
        os.close(rfd)
    assert not writer.send("nobody\n")
    writer.close()


def test_fifo_path_that_is_a_regular_file_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "not-a-pipe"
    path.write_text("")
    writer = FifoWriter(path)
    writer.ensure()
    assert not writer.send("x\n")
    assert path.read_text() == ""
