"""Kraken spot end to end against the simulator: subscribe, receive, archive,
reconnect, stall, malformed frames and checksum resyncs."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from capture_helpers import archive, capturing, data_count, kinds, sim_messages, ssmd_events
from helpers import async_wait_until
from sim_client import MakeSim
from ssmd.connectors.base import InstrumentQuery
from ssmd.connectors.registry import create
from ssmd.errors import ConfigError

SYMBOLS = ["BTC/USD", "ETH/USD", "SOL/USD"]


async def test_counts_match_what_the_sim_sent(tmp_path: Path, make_sim: MakeSim) -> None:
    sim = await make_sim("kraken", rate=3000.0)
    async with capturing(sim, "kraken", SYMBOLS, tmp_path) as cap:
        await async_wait_until(lambda: data_count(cap) >= 1500, timeout=20)
        await sim.set_rate(0)
        await async_wait_until(lambda: data_count(cap) == sim_messages(sim), timeout=10)
        sent = dict(sim.stats()["messages"])
        subs = sim.stats()["subscriptions"]
        totals = cap.totals()
    assert sum(subs.values()) == len(SYMBOLS) * 3  # ticker, trade, book per symbol
    lines = archive(tmp_path, "kraken")
    got = kinds(lines)
    for kind, n in sent.items():
        assert got[kind] == n, kind
    assert totals["checksum_mismatch"] == 0 and totals["checksum_ok"] == sent["book"]
    assert totals["checksum_inferred"] == 0  # precisions came from AssetPairs
    assert ssmd_events(lines) == ["disconnect"]  # the clean stop is recorded too
    assert {x["conn"] for x in lines} == {cap.connections[0].conn_id}


async def test_disconnect_reconnects_with_exactly_the_desired_set(
    tmp_path: Path, make_sim: MakeSim
) -> None:
    sim = await make_sim("kraken", rate=2000.0)
    async with capturing(sim, "kraken", SYMBOLS, tmp_path) as cap:
        await async_wait_until(lambda: data_count(cap) >= 200, timeout=20)
        assert sim.inject("disconnect") == 1
        await async_wait_until(lambda: cap.totals()["reconnects"] == 1, timeout=10)
        await async_wait_until(
            lambda: list(sim.stats()["subscriptions"].values()) == [len(SYMBOLS) * 3],
            timeout=10,
        )
        before = data_count(cap)
        await async_wait_until(lambda: data_count(cap) > before + 200, timeout=10)
        # the venue rejects a second subscription of a symbol: none happened
        assert cap.totals()["venue_errors"] == 0
        assert sim.stats()["connections_total"] == 2
    events = ssmd_events(archive(tmp_path, "kraken"))
    assert events[:2] == ["disconnect", "reconnect"] and events[-1] == "disconnect"


async def test_instrument_stall_is_recorded_and_redriven(tmp_path: Path, make_sim: MakeSim) -> None:
    sim = await make_sim("kraken", rate=3000.0)
    async with capturing(sim, "kraken", SYMBOLS, tmp_path, stall_timeout=0.5) as cap:
        await async_wait_until(lambda: data_count(cap) >= 3000, timeout=20)
        subscribed = sim.stats()["controls"]["subscribe"]
        sim.inject("stall", instrument="ETH/USD", seconds=30)
        await async_wait_until(lambda: cap.totals()["stalls"] >= 1, timeout=10)
        conn = cap.connections[0]
        assert conn.stats.stalls.get("instrument", 0) >= 1
        assert conn.transport is not None  # the connection stayed up
        # redriven at the venue: one unsubscribe and one subscribe ack per channel
        await async_wait_until(lambda: sim.stats()["controls"].get("unsubscribe") == 3, timeout=5)
        await async_wait_until(
            lambda: sim.stats()["controls"]["subscribe"] == subscribed + 3, timeout=5
        )
        assert list(sim.stats()["subscriptions"].values()) == [9]
    lines = archive(tmp_path, "kraken")
    stalls = [x for x in lines if x["msg"].get("ssmd") == "stall"]
    (stall,) = [x for x in stalls if x["msg"].get("instrument") == "ETH/USD"]
    assert stall["subj"] == "prod.kraken.json.status.ETH_USD"
    assert stall["msg"]["scope"] == "instrument" and stall["msg"]["instrument"] == "ETH/USD"
    assert stall["msg"]["action"] == "resubscribe"


async def test_whole_connection_stall_reconnects(tmp_path: Path, make_sim: MakeSim) -> None:
    sim = await make_sim("kraken", rate=3000.0)
    async with capturing(sim, "kraken", SYMBOLS, tmp_path, stall_timeout=0.5) as cap:
        await async_wait_until(lambda: data_count(cap) >= 3000, timeout=20)
        sim.inject("stall", seconds=30)
        await async_wait_until(lambda: cap.totals()["reconnects"] >= 1, timeout=10)
    lines = archive(tmp_path, "kraken")
    events = [
        "conn-stall" if x["msg"].get("scope") == "connection" else x["msg"]["ssmd"]
        for x in lines
        if x["msg"].get("ssmd") in ("stall", "disconnect", "reconnect")
    ]
    i = events.index("conn-stall")
    assert events[i : i + 3] == ["conn-stall", "disconnect", "reconnect"]
    (first,) = [x["msg"] for x in lines if x["msg"].get("scope") == "connection"][:1]
    assert first["action"] == "reconnect"


async def test_malformed_frames_are_archived_and_the_connector_goes_on(
    tmp_path: Path, make_sim: MakeSim
) -> None:
    sim = await make_sim("kraken", rate=2000.0)
    async with capturing(sim, "kraken", SYMBOLS, tmp_path) as cap:
        await async_wait_until(lambda: data_count(cap) >= 200, timeout=20)
        sim.inject("malformed", count=5)
        await async_wait_until(lambda: cap.totals()["malformed"] == 5, timeout=10)
        before = data_count(cap)
        await async_wait_until(lambda: data_count(cap) > before + 200, timeout=10)
        assert cap.totals()["reconnects"] == 0
    bad = [x for x in archive(tmp_path, "kraken") if ".json.malformed." in x["subj"]]
    assert len(bad) == 5 and all(x["msg"]["ssmd"] == "malformed" for x in bad)


async def test_a_frame_over_the_bound_is_archived_whole_and_far_over_it_reconnects(
    tmp_path: Path, make_sim: MakeSim
) -> None:
    """Over ``max_frame_size`` a frame is kept as a malformed line (not parsed, the
    connection goes on); over four times that the WebSocket layer closes, and the
    connector reconnects with the disconnect recorded."""
    bound = 64 << 10
    sim = await make_sim("kraken", rate=2000.0)
    async with capturing(sim, "kraken", SYMBOLS, tmp_path, max_frame_size=bound) as cap:
        await async_wait_until(lambda: data_count(cap) >= 200, timeout=20)
        sim.inject("oversized", size=3 * bound)
        await async_wait_until(lambda: cap.totals()["malformed"] == 1, timeout=10)
        before = data_count(cap)
        await async_wait_until(lambda: data_count(cap) > before + 200, timeout=10)
        assert cap.totals()["reconnects"] == 0
        sim.inject("oversized", size=5 * bound)
        await async_wait_until(lambda: cap.totals()["reconnects"] >= 1, timeout=10)
        before = data_count(cap)
        await async_wait_until(lambda: data_count(cap) > before + 200, timeout=10)
    lines = archive(tmp_path, "kraken")
    bad = [x["msg"] for x in lines if ".json.malformed." in x["subj"]]
    assert all(b["error"] == "frame too large" for b in bad)
    assert bad[0]["raw"].startswith('{"ssmd_sim_') and len(bad[0]["raw"]) == 3 * bound
    # picows may hand over the frame it refuses before it closes: then it is kept too
    assert [len(b["raw"]) for b in bad[1:]] in ([], [5 * bound])
    gone = [x["msg"] for x in lines if x["msg"].get("ssmd") == "disconnect"]
    assert sum("1009" in json.dumps(m) for m in gone) == 1, gone


async def test_checksum_mismatch_resyncs_that_book_only(tmp_path: Path, make_sim: MakeSim) -> None:
    sim = await make_sim("kraken", rate=2000.0)
    async with capturing(sim, "kraken", SYMBOLS, tmp_path) as cap:
        await async_wait_until(lambda: data_count(cap) >= 200, timeout=20)
        sim.inject("corrupt_checksum", count=1)
        await async_wait_until(lambda: cap.totals()["checksum_mismatch"] == 1, timeout=10)
        conn = cap.connections[0]
        await async_wait_until(lambda: conn.stats.resync_requests == 1, timeout=5)
        ok = cap.totals()["checksum_ok"]
        await async_wait_until(lambda: cap.totals()["checksum_ok"] > ok + 50, timeout=10)
        assert cap.totals()["checksum_mismatch"] == 1  # the fresh snapshot checks out
        assert cap.totals()["venue_errors"] == 0
    lines = archive(tmp_path, "kraken")
    assert ssmd_events(lines).count("resync") == 1


async def test_metrics_are_exported(tmp_path: Path, make_sim: MakeSim) -> None:
    from prometheus_client import REGISTRY, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    sim = await make_sim("kraken", rate=2000.0)
    async with capturing(sim, "kraken", SYMBOLS, tmp_path, with_metrics=True) as cap:
        await async_wait_until(lambda: data_count(cap) >= 200, timeout=20)
        conn = cap.connections[0].conn_id
        await async_wait_until(
            lambda: (
                f'ssmd_subscriptions{{conn="{conn}",venue="kraken"}} 3.0'
                in generate_latest(REGISTRY).decode()
            ),
            timeout=5,
        )
        await async_wait_until(
            lambda: REGISTRY.get_sample_value(
                "ssmd_messages_total", {"venue": "kraken", "kind": "book"}
            ),
            timeout=5,
        )
        # the archive sink's receive-to-fsync latency, one count per line made durable
        durable = {"venue": "kraken", "stage": "durable"}
        await async_wait_until(
            lambda: (
                (REGISTRY.get_sample_value("ssmd_pipeline_latency_seconds_count", durable) or 0)
                >= 100
            ),
            timeout=10,
        )
        text = generate_latest(REGISTRY).decode()
    latency = {
        (s.name, s.labels.get("le")): s.value
        for fam in text_string_to_metric_families(text)
        if fam.name == "ssmd_pipeline_latency_seconds"
        for s in fam.samples
        if s.labels["venue"] == "kraken" and s.labels["stage"] == "durable"
    }
    count = latency[("ssmd_pipeline_latency_seconds_count", None)]
    assert count >= 100 and latency[("ssmd_pipeline_latency_seconds_bucket", "+Inf")] == count
    assert latency[("ssmd_pipeline_latency_seconds_sum", None)] > 0
    for name in (
        "ssmd_frames_total",
        "ssmd_frame_bytes_total",
        "ssmd_message_bytes_total",
        "ssmd_lag_seconds_bucket",
        "ssmd_connected",
        "ssmd_pending_frames",
        "ssmd_sink_queue_bytes",
        "ssmd_pipeline_latency_seconds_bucket",
    ):
        assert name in text, name


async def test_sharding_and_run_time_changes_through_one_path(
    tmp_path: Path, make_sim: MakeSim
) -> None:
    sim = await make_sim("kraken", rate=2000.0)
    extra = [s for s in sim.venue.instrument_ids() if s not in SYMBOLS][:2]

    def per_conn() -> list[int]:
        return sorted(sim.stats()["subscriptions"].values())

    async with capturing(sim, "kraken", SYMBOLS, tmp_path, max_per_connection=2) as cap:
        assert [len(c.subs) for c in cap.connections] == [2, 1]
        await async_wait_until(lambda: per_conn() == [3, 6], timeout=10)  # x3 channels
        assert cap.add(extra) == 2  # fills connection 1, opens connection 2
        await async_wait_until(lambda: per_conn() == [3, 6, 6], timeout=10)
        assert cap.remove(SYMBOLS[:1]) == 1
        await async_wait_until(lambda: per_conn() == [3, 3, 6], timeout=10)
        added, removed = cap.set_desired(SYMBOLS[1:])
        assert (added, removed) == (0, 2)
        await async_wait_until(lambda: per_conn() == [0, 3, 3], timeout=10)
        assert [sorted(c.subs.desired) for c in cap.connections] == [
            [SYMBOLS[1]],
            [SYMBOLS[2]],
            [],
        ]
        assert cap.totals()["venue_errors"] == 0


async def test_discovery_honours_retry_after(tmp_path: Path, make_sim: MakeSim) -> None:
    sim = await make_sim("kraken", rate=100.0)
    sim.inject("rest_throttle", count=1, retry_after=1)
    t0 = time.monotonic()
    async with capturing(sim, "kraken", ["BTC/USD"], tmp_path) as cap:
        waited = time.monotonic() - t0
        assert cap.desired == {"BTC/USD"}
    assert waited >= 1.0  # the 429's Retry-After, not the 0.5 s first backoff
    assert sim.stats()["rest_requests"] >= 2


async def test_v1_names_and_rest_keys_resolve_to_v2_symbols(make_sim: MakeSim) -> None:
    sim = await make_sim("kraken", rate=10.0)
    c = create("kraken", {"ws_url": sim.ws_url, "rest_url": sim.rest_url})
    names = ("XBT/USD", "XBTUSD", "XXBTZUSD", "xdg/usd", "ETH/USD")
    async with httpx.AsyncClient() as client:
        r = await c.resolve(InstrumentQuery(symbols=names), client)
    assert r.instruments == ["BTC/USD", "DOGE/USD", "ETH/USD"]
    assert r.precisions["BTC/USD"] == (1, 8)
    with pytest.raises(ConfigError, match="unknown pair"):
        async with httpx.AsyncClient() as client:
            await c.resolve(InstrumentQuery(symbols=("NOPE",)), client)
