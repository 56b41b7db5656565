"""The archive sink: lines in order, flushed by time and on close, errors surface."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from helpers import wait_until
from ssmd.archive import iter_lines, list_files
from ssmd.errors import SinkError
from ssmd.runtime.sink import ArchiveSink, MemorySink
from ssmd.runtime.status import status_line


def _lines(n: int, start: int = 0) -> bytes:
    rx = time.time_ns()
    return b"".join(
        status_line("gap", "c", f"prod.kraken.json.status.c{i}", {"i": i}, rx=rx + i)
        for i in range(start, start + n)
    )


def test_lines_arrive_in_order_and_close_finalizes(tmp_path: Path) -> None:
    sink = ArchiveSink(tmp_path, "kraken", "w", flush_interval=0.05)
    for k in range(20):
        sink.write(_lines(50, k * 50))
    sink.close()
    got = list(iter_lines(tmp_path, "kraken"))
    assert [orjson.loads(x)["msg"]["i"] for x in got] == list(range(1000))
    assert not any(f.endswith(".part") for f in list_files(tmp_path, "kraken", include_parts=True))
    with pytest.raises(SinkError):
        sink.write(_lines(1))


def test_time_based_flush_makes_lines_durable(tmp_path: Path) -> None:
    sink = ArchiveSink(tmp_path, "kraken", "w", flush_interval=0.05)
    sink.write(_lines(10))
    wait_until(lambda: sink.lines_durable == 10, timeout=5)
    sink.write(_lines(5))
    # like ArchiveWriter.flush: every line made durable since the previous flush() call
    assert sink.flush() == 15
    assert sink.flush() == 0
    assert sink.queued_bytes == 0
    sink.close()


def test_memory_sink() -> None:
    m = MemorySink()
    m.write(_lines(2))
    assert len(m.lines()) == 2
    m.close()
    with pytest.raises(SinkError):
        m.write(b"x\n")
