"""The archiver over the in-process bus: seq stamps, ack after fsync, skip, gaps."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import orjson

from helpers import async_wait_until
from ssmd.archive import iter_lines, read_manifest
from ssmd.bus import MemoryBus, MemorySource, stream_specs
from ssmd.bus.archiver import VenueArchiver, last_archived_seq


def _bus(**changes: object) -> MemoryBus:
    specs = stream_specs("prod", environ={})
    return MemoryBus([replace(s, **changes) if s.venue == "kraken" else s for s in specs])


def _publish(bus: MemoryBus, start: int, n: int, lines_per_msg: int = 1) -> None:
    for i in range(start, start + n):
        body = b"".join(
            b'{"rx":%d,"conn":"c","subj":"prod.kraken.json.trade.A","msg":{"i":%d,"j":%d}}\n'
            % (1_700_000_000_000_000_000 + i, i, j)
            for j in range(lines_per_msg)
        )
        bus.publish("prod.kraken.json.trade.A", body, f"c:{i}.0")


async def _archive_until(bus: MemoryBus, root: Path, last_seq: int) -> VenueArchiver:
    arch = VenueArchiver(bus.source("PROD_KRAKEN"), root, "kraken", flush_interval=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(arch.run(stop))
    await async_wait_until(
        lambda: (arch.stats.last_seq == last_seq and arch.stats.flushes > 0) or task.done(),
        timeout=10,
    )
    stop.set()
    await task
    return arch


def _seqs(root: Path) -> list[object]:
    return [orjson.loads(x).get("seq") for x in iter_lines(root, "kraken")]


async def test_every_message_is_archived_with_its_stream_sequence(tmp_path: Path) -> None:
    bus = _bus()
    _publish(bus, 0, 100)
    _publish(bus, 100, 10, lines_per_msg=3)
    arch = await _archive_until(bus, tmp_path, 110)
    seqs = _seqs(tmp_path)
    assert seqs[:100] == list(range(1, 101))
    assert seqs[100:103] == [[101, 0], [101, 1], [101, 2]]
    assert len(seqs) == 130 and arch.stats.lines == 130 and arch.stats.messages == 110
    st = bus.stream("PROD_KRAKEN")
    assert st.acked["archiver"] == 110  # acknowledged once durable
    assert last_archived_seq(tmp_path, "kraken") == 110
    (day,) = [p.name for p in (tmp_path / "kraken").iterdir() if p.is_dir()]
    files = read_manifest(tmp_path, "kraken", day)["files"]
    assert files[-1]["last_seq"] == [110, 2]


async def test_a_restart_resumes_after_what_is_on_disk(tmp_path: Path) -> None:
    bus = _bus()
    _publish(bus, 0, 50)
    await _archive_until(bus, tmp_path, 50)
    bus.stream("PROD_KRAKEN").acked["archiver"] = 20  # as if the last acks were lost
    _publish(bus, 50, 10)
    arch = await _archive_until(bus, tmp_path, 60)
    assert arch.stats.messages == 10
    assert _seqs(tmp_path) == list(range(1, 61))  # each exactly once


class Redelivering(MemorySource):
    """Delivers each batch a second time (an ack_wait expiry in the middle of a run)."""

    def __init__(self, bus: MemoryBus) -> None:
        super().__init__(bus, "PROD_KRAKEN", "archiver")
        self.again: list[tuple[int, bytes]] = []

    async def fetch(self, max_msgs: int, timeout: float) -> list[tuple[int, bytes]]:
        if self.again:
            out, self.again = self.again, []
            return out
        out = await super().fetch(max_msgs, timeout)
        self.again = list(out)
        return out


async def test_redelivered_messages_already_archived_are_skipped(tmp_path: Path) -> None:
    bus = _bus()
    _publish(bus, 0, 30)
    arch = VenueArchiver(Redelivering(bus), tmp_path, "kraken", flush_interval=0.05, batch=10)
    stop = asyncio.Event()
    task = asyncio.create_task(arch.run(stop))
    await async_wait_until(lambda: arch.stats.skipped >= 30, timeout=10)
    stop.set()
    await task
    assert arch.stats.messages == 30 and arch.stats.gaps == 0
    assert _seqs(tmp_path) == list(range(1, 31))


async def test_messages_aged_out_before_archiving_become_a_gap_line(tmp_path: Path) -> None:
    bus = _bus(max_msgs=10)
    _publish(bus, 0, 5)
    await _archive_until(bus, tmp_path, 5)
    _publish(bus, 5, 30)  # 6..35; only 26..35 are kept
    arch = await _archive_until(bus, tmp_path, 35)
    assert arch.stats.gaps == 1 and arch.stats.missing == 20
    lines = [orjson.loads(x) for x in iter_lines(tmp_path, "kraken")]
    gaps = [x for x in lines if x["subj"] == "prod.kraken.json.status.archiver"]
    assert len(gaps) == 1
    assert gaps[0]["msg"] == {
        "ssmd": "gap",
        "reason": "stream",
        "stream": "PROD_KRAKEN",
        "from": 6,
        "to": 25,
        "missing": 20,
    }
    assert [x.get("seq") for x in lines if "seq" in x] == [1, 2, 3, 4, 5, *range(26, 36)]
    (day,) = [p.name for p in (tmp_path / "kraken").iterdir() if p.is_dir()]
    files = read_manifest(tmp_path, "kraken", day)["files"]
    assert [g["subj"] for f in files for g in f["gaps"]] == ["prod.kraken.json.status.archiver"]


async def test_lines_that_are_not_envelopes_are_kept_as_malformed(tmp_path: Path) -> None:
    bus = _bus()
    bus.publish("prod.kraken.json.trade.A", b"not json at all", "x:1")
    _publish(bus, 1, 1)
    arch = await _archive_until(bus, tmp_path, 2)
    assert arch.stats.malformed == 1
    lines = [orjson.loads(x) for x in iter_lines(tmp_path, "kraken")]
    bad = [x for x in lines if x["subj"].endswith(".malformed.archiver")]
    assert bad and bad[0]["msg"]["raw"] == "not json at all" and bad[0]["seq"] == 1


async def test_an_empty_message_is_recorded_so_verify_sees_no_hole(tmp_path: Path) -> None:
    from ssmd.archive.verify import verify_archive

    bus = _bus()
    _publish(bus, 0, 2)
    bus.publish("prod.kraken.json.trade.A", b"", "x:empty")  # consumed: something must say so
    bus.publish("prod.kraken.json.trade.A", b"\n", "x:newline")
    _publish(bus, 2, 2)
    arch = await _archive_until(bus, tmp_path, 6)
    lines = [orjson.loads(x) for x in iter_lines(tmp_path, "kraken")]
    assert [x["seq"] for x in lines] == [1, 2, 3, 4, 5, 6]
    bad = [x["msg"] for x in lines if x["subj"].endswith(".malformed.archiver")]
    assert [b["error"] for b in bad] == ["empty message", "empty message"]
    assert arch.stats.malformed == 2
    result = verify_archive(tmp_path, "kraken")
    assert result.ok and result.gaps == [], result.as_dict()
