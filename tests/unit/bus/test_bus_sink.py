"""BusSink policy over the in-process bus: confirmation, re-send, dedupe, bounded backlog."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from helpers import async_wait_until
from ssmd.bus import BusSink, MemoryBus, MemoryTransport, TransportDown, stream_specs


class Flaky(MemoryTransport):
    """The in-process transport with switchable faults."""

    def __init__(self, bus: MemoryBus) -> None:
        super().__init__(bus)
        self.down = False
        self.lose_acks = False  # stored, but the ack never arrives
        self.black_hole = False  # neither stored nor acked

    @property
    def connected(self) -> bool:
        return not self.down

    async def send(self, subject: str, data: bytes, msg_id: str, token: int) -> None:
        if self.down:
            raise TransportDown("down")
        if self.black_hole:
            return
        if self.lose_acks:
            self.bus.publish(subject, data, msg_id)
            return
        await super().send(subject, data, msg_id, token)


def _line(i: int) -> bytes:
    return b'{"rx":%d,"conn":"c","subj":"prod.kraken.json.trade.A","msg":{"i":"%04d"}}\n' % (
        1000 + i,
        i,
    )


async def _sink(**kw: Any) -> tuple[BusSink, Flaky, MemoryBus]:
    bus = MemoryBus(stream_specs("prod", environ={}))
    t = Flaky(bus)
    sink = BusSink(t, env="prod", venue="kraken", **kw)
    await t.start(sink)
    await sink.start()
    return sink, t, bus


def _stored(bus: MemoryBus) -> list[bytes]:
    """Every stored line, in stream order (messages may hold several)."""
    return b"".join(m[2] for m in bus.stream("PROD_KRAKEN").msgs).splitlines(keepends=True)


def _messages(bus: MemoryBus) -> int:
    return len(bus.stream("PROD_KRAKEN").msgs)


async def test_everything_is_confirmed_in_order() -> None:
    sink, _, bus = await _sink()
    for i in range(1000):
        sink.put("prod.kraken.json.trade.A", _line(i), f"c:{i}.0", 1)
    assert await sink.drain(5)
    await sink.aclose()
    assert _stored(bus) == [_line(i) for i in range(1000)]
    assert sink.lines_acked == 1000 and sink.pending_bytes == 0 and sink.duplicates == 0
    # written faster than sent: the waiting message of the subject grew instead
    assert _messages(bus) < 1000 and sink.merged == 1000 - _messages(bus)


async def test_merging_never_moves_data_ahead_of_a_status_line() -> None:
    sink, t, bus = await _sink()
    t.down = True  # everything waits in the queue
    sink.put("prod.kraken.json.trade.A", _line(0), "c:0.0", 1)
    sink.write_status("prod.kraken.json.status.A", _line(1), "c:s1")
    sink.put("prod.kraken.json.trade.A", _line(2), "c:2.0", 1)
    sink.put("prod.kraken.json.trade.A", _line(3), "c:3.0", 1)
    sink.put("prod.kraken.json.trade.B", _line(4), "c:4.0", 1)
    t.down = False
    sink.reconnected()
    assert await sink.drain(5)
    await sink.aclose()
    msgs = [(m[1], m[2]) for m in bus.stream("PROD_KRAKEN").msgs]
    assert msgs == [
        ("prod.kraken.json.trade.A", _line(0)),
        ("prod.kraken.json.status.A", _line(1)),
        ("prod.kraken.json.trade.A", _line(2) + _line(3)),
        ("prod.kraken.json.trade.B", _line(4)),
    ]
    ids = list(bus.stream("PROD_KRAKEN").ids)
    assert ids == ["c:0.0", "c:s1", "c:2.0", "c:4.0"]  # a merged message keeps its first id


async def test_lost_acks_are_resent_and_deduplicated_by_id() -> None:
    sink, t, bus = await _sink(ack_timeout=0.2)
    t.lose_acks = True
    for i in range(50):
        sink.put("prod.kraken.json.trade.A", _line(i), f"c:{i}.0", 1)
    await async_wait_until(lambda: sink.resent >= _messages(bus) > 0, timeout=5)
    t.lose_acks = False
    assert await sink.drain(5)
    await sink.aclose()
    assert _stored(bus) == [_line(i) for i in range(50)]  # each stored once
    assert sink.duplicates == _messages(bus) and sink.lines_acked == 50


async def test_unanswered_sends_go_out_again() -> None:
    sink, t, bus = await _sink(ack_timeout=0.2)
    t.black_hole = True
    for i in range(20):
        sink.put("prod.kraken.json.trade.A", _line(i), f"c:{i}.0", 1)
    await async_wait_until(lambda: sink.resent >= 1, timeout=5)
    t.black_hole = False
    assert await sink.drain(5)
    await sink.aclose()
    assert _stored(bus) == [_line(i) for i in range(20)]


async def test_a_full_backlog_drops_and_records_a_gap() -> None:
    bound = 50 * len(_line(0))
    sink, t, bus = await _sink(max_pending_bytes=bound, merge_bytes=1)  # one line per message
    t.down = True
    for i in range(80):
        sink.put("prod.kraken.json.trade.A", _line(i), f"c:{i}.0", 1)
    assert sink.pending_bytes <= bound
    assert sink.dropped_lines == 30 and sink.dropped_messages == 30
    assert not _stored(bus)
    t.down = False
    sink.reconnected()
    assert await sink.drain(5)
    await sink.aclose()
    stored = _stored(bus)
    assert stored[:50] == [_line(i) for i in range(50)]
    assert len(stored) == 51
    gap = orjson.loads(stored[50])
    assert gap["subj"] == "prod.kraken.json.status.c"
    assert gap["msg"]["ssmd"] == "gap" and gap["msg"]["reason"] == "bus"
    assert gap["msg"]["dropped_lines"] == 30
    assert (gap["msg"]["first_id"], gap["msg"]["last_id"]) == ("c:50.0", "c:79.0")
    assert sink.gaps == 1


async def test_close_reports_what_was_never_confirmed() -> None:
    sink, t, _ = await _sink()
    t.down = True
    sink.put("prod.kraken.json.trade.A", _line(1), "c:1.0", 1)
    try:
        await sink.aclose(timeout=0.2)
    except Exception as exc:
        assert "not confirmed" in str(exc)
    else:
        raise AssertionError("aclose did not report the unconfirmed message")
    await asyncio.sleep(0)
