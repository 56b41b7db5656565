"""The in-process bus: routing, sequences, dedupe window, limits, durable consumers."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from ssmd._core import stamp_seq
from ssmd.bus import MemoryBus, stream_specs
from ssmd.bus.memory import subject_matches
from ssmd.bus.streams import parse_duration, parse_size, spec_for_venue, venue_stream
from ssmd.errors import ConfigError, SinkError


def test_subject_matching_follows_nats_wildcards() -> None:
    assert subject_matches("prod.kraken.>", "prod.kraken.json.trade.BTC_USD")
    assert not subject_matches("prod.kraken.>", "prod.kraken")
    assert not subject_matches("prod.kraken.>", "prod.kraken-futures.json.trade.X")
    assert subject_matches("prod.*.json", "prod.kalshi.json")
    assert not subject_matches("prod.*.json", "prod.kalshi.json.x")


def test_stream_names_follow_the_environment() -> None:
    specs = {s.name: s for s in stream_specs("staging", environ={})}
    assert set(specs) == {
        "STAGING_KALSHI",
        "STAGING_KALSHI_POLITICS",
        "STAGING_KRAKEN",
        "STAGING_KRAKEN_FUTURES",
        "STAGING_POLYMARKET",
        "SECMASTER_CDC",
        "DEADLETTER",
        "SIGNALS",
    }
    assert specs["STAGING_KRAKEN_FUTURES"].subjects == ("staging.kraken-futures.>",)
    assert specs["STAGING_KALSHI_POLITICS"].source == (
        "STAGING_KALSHI",
        "staging.kalshi.politics.>",
    )
    assert specs["STAGING_KRAKEN"].max_age == 48 * 3600
    assert specs["STAGING_KALSHI"].max_bytes == 1 << 30
    assert specs["SECMASTER_CDC"].max_age == 900
    assert venue_stream("kraken-futures", "prod") == "PROD_KRAKEN_FUTURES"


def test_limits_are_overridable_from_the_environment() -> None:
    env = {
        "SSMD_STREAM_PROD_KRAKEN_MAX_BYTES": "1GiB",
        "SSMD_STREAM_PROD_KRAKEN_MAX_AGE": "24h",
        "SSMD_STREAM_SIGNALS_MAX_MSGS": "1000",
    }
    specs = {s.name: s for s in stream_specs("prod", environ=env)}
    assert specs["PROD_KRAKEN"].max_bytes == 1 << 30
    assert specs["PROD_KRAKEN"].max_age == 86400
    assert specs["SIGNALS"].max_msgs == 1000
    explicit = stream_specs("prod", {"PROD_KRAKEN": {"max_age": 60.0}}, environ=env)
    assert spec_for_venue("kraken", explicit).max_age == 60.0
    with pytest.raises(ConfigError, match="bad size"):
        stream_specs("prod", environ={"SSMD_STREAM_PROD_KRAKEN_MAX_BYTES": "lots"})
    with pytest.raises(ConfigError, match="SSMD_ENV"):
        stream_specs("Prod Env", environ={})
    assert parse_size("512MiB") == 512 << 20 and parse_size("1.5k") == 1536
    assert parse_duration("15m") == 900 and parse_duration("90") == 90


def _bus(**changes: object) -> MemoryBus:
    specs = [
        replace(s, **changes) if s.venue == "kraken" else s
        for s in stream_specs("prod", environ={})
    ]
    return MemoryBus(specs)


def test_publish_assigns_sequences_and_dedupes_ids() -> None:
    bus = _bus()
    assert bus.publish("prod.kraken.json.trade.A", b"1", "c:1.0") == ("PROD_KRAKEN", 1, False)
    assert bus.publish("prod.kraken.json.trade.A", b"2", "c:2.0") == ("PROD_KRAKEN", 2, False)
    assert bus.publish("prod.kraken.json.trade.A", b"1", "c:1.0") == ("PROD_KRAKEN", 1, True)
    assert bus.stream("PROD_KRAKEN").last_seq == 2
    with pytest.raises(SinkError, match="no stream"):
        bus.publish("elsewhere.x", b"", "id")


def test_the_politics_stream_copies_only_politics() -> None:
    bus = _bus()
    bus.publish("prod.kalshi.politics.json.trade.X", b"p", "a")
    bus.publish("prod.kalshi.economics.json.trade.Y", b"e", "b")
    assert bus.stream("PROD_KALSHI").last_seq == 2
    pol = bus.stream("PROD_KALSHI_POLITICS")
    assert [m[2] for m in pol.msgs] == [b"p"]


async def test_consumer_restarts_after_a_sequence_and_skips_aged_out() -> None:
    bus = _bus(max_msgs=5)
    for i in range(3):
        bus.publish("prod.kraken.json.trade.A", b"%d" % i, f"c:{i}")
    src = bus.source("PROD_KRAKEN")
    await src.start()
    assert await src.fetch(10, 0) == [(1, b"0"), (2, b"1"), (3, b"2")]
    await src.ack_upto(2)
    again = bus.source("PROD_KRAKEN")  # a restart after 2 (what the archive holds)
    await again.start(2)
    assert await again.fetch(10, 0) == [(3, b"2")]
    await again.ack_upto(3)
    for i in range(3, 12):
        bus.publish("prod.kraken.json.trade.A", b"%d" % i, f"c:{i}")
    assert await again.pending() == 5  # 7..11 left, 4..6 aged out
    assert [s for s, _ in await again.fetch(100, 0)] == [8, 9, 10, 11, 12]


async def test_a_filtered_consumer_gets_matching_subjects_only() -> None:
    bus = _bus()
    subjects = ["prod.kalshi.x.json.trade.A", "prod.kalshi.x.json.lifecycle.A"] * 3
    for i, subj in enumerate(subjects):
        bus.publish(subj, b"%d" % i, f"f:{i}")
    life = bus.source("PROD_KALSHI", "lifecycle", filter_subject="prod.kalshi.*.json.lifecycle.>")
    await life.start()
    assert await life.pending() == 3
    assert await life.fetch(2, 0) == [(2, b"1"), (4, b"3")]
    assert await life.pending() == 1
    assert await life.fetch(10, 0) == [(6, b"5")]
    assert await life.pending() == 0 and life.backlog_bytes == 0
    assert await life.fetch(10, 0) == []
    bus.publish("prod.kalshi.x.json.trade.B", b"t", "f:t")  # passed over, not delivered
    assert await life.fetch(10, 0.01) == [] and await life.pending() == 0
    # the unfiltered consumer of the same stream still gets everything
    everything = bus.source("PROD_KALSHI", "archiver")
    await everything.start()
    assert [s for s, _ in await everything.fetch(100, 0)] == list(range(1, 8))


def test_stamp_seq_numbers_every_line() -> None:
    one = b'{"rx":5,"conn":"c","subj":"prod.kraken.json.trade.A","msg":{}}\n'
    two = one + b'{"rx":6,"conn":"c","subj":"prod.kraken.json.trade.A","msg":[]}\n'
    data, lines, bad = stamp_seq([7, 8], [one, two], "prod.kraken.json.malformed.archiver")
    assert (lines, bad) == (3, 0)
    assert data.splitlines() == [
        b'{"rx":5,"seq":7,"conn":"c","subj":"prod.kraken.json.trade.A","msg":{}}',
        b'{"rx":5,"seq":[8,0],"conn":"c","subj":"prod.kraken.json.trade.A","msg":{}}',
        b'{"rx":6,"seq":[8,1],"conn":"c","subj":"prod.kraken.json.trade.A","msg":[]}',
    ]
    data, lines, bad = stamp_seq([9], [b"garbage"], "prod.kraken.json.malformed.archiver", rx_ns=1)
    assert bad == 1 and b'"raw":"garbage"' in data and data.startswith(b'{"rx":1,"seq":9,')
    with pytest.raises(ConfigError):
        stamp_seq([1, 2], [one], "s")


async def test_several_filters_streams_added_later_and_a_bucket() -> None:
    bus = MemoryBus([s for s in stream_specs("prod", environ={}) if s.name == "SIGNALS"])
    kraken = spec_for_venue("kraken", stream_specs("prod", environ={}))
    bus.add(kraken)
    with pytest.raises(ConfigError, match="already"):
        bus.add(kraken)
    with pytest.raises(ConfigError, match="overlap"):
        bus.add(replace(kraken, name="OTHER"))
    for i, kind in enumerate(["trade", "book", "ticker", "trade"]):
        bus.publish(f"prod.kraken.json.{kind}.A", b"%d" % i, f"m:{i}")
    src = bus.source(
        "PROD_KRAKEN", "sig", filter_subjects=["prod.kraken.json.trade.>", "*.*.json.ticker.>"]
    )
    await src.start()
    assert await src.fetch(10, 0) == [(1, b"0"), (3, b"2"), (4, b"3")]
    assert bus.kv("b") is bus.kv("b") and bus.kv("b") == {}


def test_message_ids_are_forgotten_with_their_messages() -> None:
    bus = _bus(max_msgs=3)
    for i in range(10):
        bus.publish("prod.kraken.json.trade.A", b"%d" % i, f"c:{i}")
    st = bus.stream("PROD_KRAKEN")
    assert list(st.ids) == ["c:7", "c:8", "c:9"]  # as many as the messages held
    assert bus.publish("prod.kraken.json.trade.A", b"9", "c:9")[2]  # still a duplicate
    assert not bus.publish("prod.kraken.json.trade.A", b"1", "c:1")[2]  # its message is gone


async def test_a_pipeline_holds_for_the_consumer_furthest_behind(tmp_path: Path) -> None:
    from ssmd.bus.local import LocalPipeline

    bus = MemoryBus([])
    pipe = LocalPipeline("kraken", tmp_path, env="prod", writer="t", bus=bus, fsync=False)
    await pipe.start()
    slow = bus.source("PROD_KRAKEN", "slow")
    await slow.start()
    try:
        for i in range(50):
            bus.publish("prod.kraken.json.trade.A", b"x" * 100, f"h:{i}")
        deadline = asyncio.get_running_loop().time() + 10
        while pipe.source.backlog_bytes and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        assert pipe.source.backlog_bytes == 0 and pipe.queued_bytes == 0  # the archiver's
        pipe.hold_for(slow)
        assert pipe.queued_bytes == 5000
        await slow.fetch(20, 0)
        assert pipe.queued_bytes == 3000
    finally:
        await pipe.aclose()
