"""receive/sink.py: a data set's way from the connection to its temp file, on a real folder."""

from __future__ import annotations

import io
import os
from pathlib import Path

from fionagw.receive import sink, store
from fionagw.receive.store import TEMP_PREFIX

META = b"DICM-meta"


def _reader(data: bytes):  # type: ignore[no-untyped-def]
    return io.BytesIO(data).readinto


def test_small_data_set_is_written_once_when_complete(tmp_path: Path) -> None:
    temp = store.open_temp(str(tmp_path))
    assert temp is not None and Path(temp[0]).name.startswith(TEMP_PREFIX)
    s = sink.Sink(sink.new_buffer(), META, temp)
    assert s.read_from(_reader(b"abc" * 100), 300)
    assert os.path.getsize(temp[0]) == 0  # still in the buffer
    s.finish()
    s.close()
    assert Path(temp[0]).read_bytes() == META + b"abc" * 100 and s.size == len(META) + 300


def test_large_data_set_goes_through_the_buffer_in_pieces(tmp_path: Path) -> None:
    path = store.temp_path(str(tmp_path))
    s = sink.Sink(sink.new_buffer(), META, (path, -1))  # the file is made at the first write
    data = os.urandom(3 * sink.FLUSH_BYTES + 123)
    read = _reader(data)
    for start in range(0, len(data), 16384):
        assert s.read_from(read, min(16384, len(data) - start))
    assert os.path.getsize(path) == 3 * sink.FLUSH_BYTES  # flushed whenever the buffer filled
    s.finish()
    s.close()
    assert Path(path).read_bytes() == META + data


def test_connection_ending_mid_fragment_is_reported(tmp_path: Path) -> None:
    s = sink.Sink(sink.new_buffer(), META, (store.temp_path(str(tmp_path)), -1))
    assert not s.read_from(_reader(b"short"), 100)
    s.discard()
    assert list(tmp_path.iterdir()) == []


def test_write_error_is_remembered_and_the_rest_dropped(tmp_path: Path) -> None:
    gone = tmp_path / "gone"  # the temp folder vanished
    s = sink.Sink(sink.new_buffer(), META, (str(gone / "x.dcm"), -1))
    data = b"\0" * (2 * sink.FLUSH_BYTES)
    assert s.read_from(_reader(data), len(data))  # read to the end all the same
    s.finish()
    assert isinstance(s.error, FileNotFoundError) and s.fd == -1
    assert not gone.exists()


def test_open_temp_fails_softly(tmp_path: Path) -> None:
    assert store.open_temp(str(tmp_path / "missing")) is None
