"""``ssmd replay`` over a damaged archive: every intact line is replayed, in order, and
the file that lost content is named once."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson

from archive_helpers import SEC, T0, envelope
from ssmd.archive import ArchiveWriter
from ssmd.bus import BusSink, MemoryBus, MemoryTransport, stream_specs
from ssmd.replay import archive_lines, replay


def _archive(root: Path) -> list[bytes]:
    """600 Kraken lines in 6 gzip members of one file."""
    out = []
    with ArchiveWriter(root, "kraken", "a", fsync=False) as w:
        for m in range(6):
            chunk = [
                envelope(T0 + (m * 100 + i) * SEC // 100, "prod.kraken.json.trade.X", "{}")
                for i in range(100)
            ]
            w.write(b"".join(chunk))
            w.flush()
            out += [c.rstrip(b"\n") for c in chunk]
    return out


def test_intact_lines_are_replayed_and_the_damage_named(tmp_path: Path) -> None:
    original = _archive(tmp_path)
    (path,) = tmp_path.glob("kraken/**/*.jsonl.gz")
    path.write_bytes(path.read_bytes()[:-20])  # the last member is cut short
    warnings: list[Any] = []
    lines = archive_lines(tmp_path, ["kraken"], None, None, None, None, on_warning=warnings.append)
    bus = MemoryBus(stream_specs("sandbox"))

    async def sink(venue: str) -> BusSink:
        s = BusSink(MemoryTransport(bus), env="sandbox", venue=venue)
        await s.transport.start(s)
        await s.start()
        return s

    result = asyncio.run(replay(lines, sink, "sandbox", speed=None))
    assert len(warnings) == 1 and str(path) in str(warnings[0])
    assert result.lines == result.acked == 500 and result.dropped == 0  # five members intact
    got = [
        line for _, _, data, _ in bus.stream("SANDBOX_KRAKEN").msgs for line in data.splitlines()
    ]
    assert [orjson.loads(x)["rx"] for x in got] == [orjson.loads(x)["rx"] for x in original[:500]]
