"""Kraken Futures v1 simulator: the protocol of kraken-futures.md, checked through the core."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

from helpers import async_wait_until
from sim_client import Client, connect, http_get
from ssmd.core import Processor
from ssmd.sim import FaultPlan, SimOptions

IDS = ["PF_XBTUSD", "PI_XBTUSD", "FF_XBTUSD_261225", "PF_ETHUSD"]


def core(frames: list[bytes]) -> Processor:
    p = Processor("kraken-futures", "sim-test")
    p.process(frames, time.time_ns())
    return p


def events(c: Client, start: int = 0) -> list[dict[str, Any]]:
    return [m for m in c.json(start) if "event" in m]


def feeds(c: Client, start: int = 0) -> list[dict[str, Any]]:
    """Data frames only (acks carry ``feed`` too, with ``event``)."""
    return [m for m in c.json(start) if "event" not in m]


async def test_subscribe_acks_data_through_core(make_sim: Any) -> None:
    sim = await make_sim("kraken-futures", rate=4000.0)
    assert sim.ws_url.endswith("/ws/v1") and sim.rest_url.endswith("/derivatives/api/v3")
    c = await connect(sim.ws_url)
    await async_wait_until(lambda: c.frames)
    assert c.json()[0] == {"event": "info", "version": 1}
    for feed in ("trade", "ticker", "book"):
        c.send({"event": "subscribe", "feed": feed, "product_ids": IDS})
    await async_wait_until(lambda: len(c.frames) > 2500, message="data flows")
    acks = events(c)[1:]
    assert acks == [
        {"event": "subscribed", "feed": f, "product_ids": IDS} for f in ("trade", "ticker", "book")
    ]
    msgs = feeds(c)
    snaps = [m for m in msgs if m.get("feed") == "trade_snapshot"]
    assert [s["product_id"] for s in snaps] == IDS
    seqs = [t["seq"] for t in snaps[0]["trades"]]
    assert seqs == sorted(seqs, reverse=True) and len(seqs) == 20  # newest first
    trades = [m for m in msgs if m.get("feed") == "trade" and m["product_id"] == IDS[0]]
    assert trades[0]["seq"] == seqs[0] + 1
    book_snaps = [m for m in msgs if m.get("feed") == "book_snapshot"]
    assert len(book_snaps) == len(IDS) and book_snaps[0]["tickSize"] is None
    deltas = [m for m in msgs if m.get("feed") == "book" and m["product_id"] == IDS[0]]
    assert deltas[0]["seq"] == book_snaps[0]["seq"] + 1
    assert {d["side"] for d in deltas} == {"buy", "sell"}
    tickers = [m for m in msgs if m.get("feed") == "ticker"]
    assert {t["product_id"] for t in tickers} == set(IDS)
    ff = next(t for t in tickers if t["product_id"] == "FF_XBTUSD_261225")
    assert "funding_rate" not in ff and ff["maturityTime"] > 0  # funding omitted on dated futures
    pf = next(t for t in tickers if t["product_id"] == "PF_XBTUSD")
    assert pf["next_funding_rate_time"] > pf["time"] and pf["tag"] == "perpetual"
    n = core(c.frames).counters()
    assert n["malformed"] == 0 and n["unknown"] == 0 and n["gaps"] == 0 and n["duplicates"] == 0
    assert n["data"] > 2000


async def test_ticker_throttled_per_product(make_sim: Any) -> None:
    sim = await make_sim("kraken-futures", rate=4000.0, options=SimOptions(ticker_interval=0.2))
    c = await connect(sim.ws_url)
    c.send({"event": "subscribe", "feed": "ticker", "product_ids": ["PF_XBTUSD"]})
    await async_wait_until(lambda: sum(m.get("feed") == "ticker" for m in feeds(c)) >= 4)
    times = [m["time"] for m in feeds(c) if m.get("feed") == "ticker"]
    assert all(b - a >= 150 for a, b in itertools.pairwise(times))


async def test_errors_and_alerts(make_sim: Any) -> None:
    sim = await make_sim("kraken-futures", rate=0.0)
    c = await connect(sim.ws_url)
    c.send(b"nope")
    c.send({"event": "subscribe", "feed": "ticker", "product_ids": ["PF_NOPE"]})
    c.send({"event": "subscribe", "feed": "candles", "product_ids": ["PF_XBTUSD"]})
    c.send({"event": "subscribe", "feed": "fills"})
    c.send({"event": "subscribe", "feed": "trade"})
    c.send({"event": "challenge", "api_key": "k"})
    await async_wait_until(lambda: len(events(c)) >= 7)
    got = [(m["event"], m.get("message")) for m in events(c)[1:]]
    assert got[:5] == [
        ("error", "Json Error"),
        ("error", "Invalid product id"),
        ("alert", "Couldn't subscribe to invalid feed"),
        ("alert", "Failed to subscribe to authenticated feed"),
        ("error", "Invalid product id"),
    ]
    assert got[5][0] == "challenge" and len(got[5][1]) == 36
    c.send({"event": "subscribe", "feed": "trade", "product_ids": ["PF_XBTUSD"]})
    c.send({"event": "unsubscribe", "feed": "trade", "product_ids": ["PF_XBTUSD"]})
    await async_wait_until(lambda: any(m["event"] == "unsubscribed" for m in events(c)))
    assert sim.stats()["subscriptions"] == {"c1": 0}


async def test_heartbeat_feed(make_sim: Any) -> None:
    sim = await make_sim("kraken-futures", rate=0.0, options=SimOptions(heartbeat_interval=0.1))
    c = await connect(sim.ws_url)
    c.send({"event": "subscribe", "feed": "heartbeat"})
    await async_wait_until(lambda: sum(m.get("feed") == "heartbeat" for m in feeds(c)) >= 3)
    assert {"event": "subscribed", "feed": "heartbeat"} in c.json()
    hb = next(m for m in feeds(c) if m.get("feed") == "heartbeat")
    assert abs(hb["time"] - time.time() * 1000) < 5000
    assert core(c.frames).counters()["data"] == 0  # heartbeats are control frames


async def test_closed_without_ping(make_sim: Any) -> None:
    sim = await make_sim("kraken-futures", rate=500.0, options=SimOptions(ping_timeout=1.0))
    quiet = await connect(sim.ws_url)
    pinging = await connect(sim.ws_url)
    for c in (quiet, pinging):
        c.send({"event": "subscribe", "feed": "trade", "product_ids": ["PF_XBTUSD"]})

    async def keep_alive() -> None:  # the keep-alive under test: a ping every 0.2 s
        while True:
            pinging.ping()
            await asyncio.sleep(0.2)

    task = asyncio.create_task(keep_alive())
    try:
        await async_wait_until(quiet.disconnected.is_set, timeout=10, message="quiet closed")
        assert not pinging.disconnected.is_set()
    finally:
        task.cancel()
    assert pinging.pongs  # protocol pings are answered
    assert sim.stats()["connections"] == 1


async def test_rest_instruments_and_tickers(make_sim: Any) -> None:
    sim = await make_sim("kraken-futures", rate=0.0)
    status, _, body = await http_get(f"{sim.rest_url}/instruments")
    assert status == 200 and body["result"] == "success"
    syms = [i["symbol"] for i in body["instruments"]]
    assert len(syms) == 11 and "PF_XBTUSD" in syms
    ff = next(i for i in body["instruments"] if i["symbol"] == "FF_XBTUSD_261225")
    assert ff["lastTradingTime"] == "2026-12-25T08:00:00Z"
    pf = next(i for i in body["instruments"] if i["symbol"] == "PF_XBTUSD")
    assert "lastTradingTime" not in pf and pf["contractValueTradePrecision"] == 4
    _, _, tickers = await http_get(f"{sim.rest_url}/tickers")
    assert [t["symbol"] for t in tickers["tickers"]] == syms
    _, _, one = await http_get(f"{sim.rest_url}/tickers/PF_ETHUSD")
    assert one["ticker"]["symbol"] == "PF_ETHUSD"
    status, _, missing = await http_get(f"{sim.rest_url}/nothing")
    assert status == 404 and missing["result"] == "error"


async def test_seq_faults_seen_by_core(make_sim: Any) -> None:
    """drop -> gaps, duplicate -> duplicates, reorder -> late; a book gap asks for a resync."""
    sim = await make_sim(
        "kraken-futures",
        rate=4000.0,
        faults=FaultPlan(drop=0.01, duplicate=0.01, reorder=0.04),
        seed=11,
    )
    c = await connect(sim.ws_url)
    c.send({"event": "subscribe", "feed": "trade", "product_ids": IDS})
    c.send({"event": "subscribe", "feed": "book", "product_ids": IDS})
    await async_wait_until(lambda: len(c.frames) > 4000)
    p = Processor("kraken-futures", "t")
    batch = p.process(c.frames, time.time_ns())
    n = p.counters()
    f = sim.stats()["faults"]
    assert f["drop"] > 0 and f["duplicate"] > 0 and f["reorder"] > 0
    assert n["gaps"] >= 1 and n["duplicates"] >= 1 and n["late"] >= 1
    assert any(reason == "seq_gap" for _, reason in batch.resyncs)
    assert n["malformed"] == 0


async def test_fault_injection_at_run_time(make_sim: Any) -> None:
    sim = await make_sim("kraken-futures", rate=2000.0)
    c = await connect(sim.ws_url)
    c.send({"event": "subscribe", "feed": "trade", "product_ids": ["PF_XBTUSD"]})
    await async_wait_until(lambda: len(c.frames) > 50)
    assert sim.inject("drop", count=1) == 1
    await async_wait_until(lambda: sim.stats()["faults"].get("drop") == 1)
    await async_wait_until(lambda: core(c.frames).counters()["gaps"] == 1)
    sim.inject("disconnect")
    await asyncio.wait_for(c.disconnected.wait(), 5)
    assert sim.stats()["faults"]["disconnect"] == 1


async def test_rest_history_lists_the_trades_sent(make_sim: Any) -> None:
    sim = await make_sim("kraken-futures", rate=2000.0)
    c = await connect(sim.ws_url)
    c.send({"event": "subscribe", "feed": "trade", "product_ids": ["PF_XBTUSD"]})

    def sent() -> list[dict[str, Any]]:
        out = []
        for m in feeds(c):
            if m.get("feed") == "trade_snapshot":
                out += m["trades"]
            elif m.get("feed") == "trade":
                out.append(m)
        return out

    await async_wait_until(lambda: len(sent()) >= 250, timeout=10)
    await sim.set_rate(0)
    await asyncio.sleep(0.2)
    by_uid = {t["uid"]: t for t in sent()}
    status, _, body = await http_get(f"{sim.rest_url}/history?symbol=PF_XBTUSD")
    assert status == 200 and body["result"] == "success"
    page = body["history"]
    assert len(page) == 100
    times = [h["time"] for h in page]
    assert times == sorted(times, reverse=True)  # newest first
    for h in page:
        t = by_uid[h["uid"]]
        assert (h["trade_id"], h["side"], h["type"]) == (t["seq"], t["side"], t["type"])
        assert (h["price"], h["size"]) == (t["price"], t["qty"])
    # strictly before lastTime
    _, _, older = await http_get(f"{sim.rest_url}/history?symbol=PF_XBTUSD&lastTime={times[-1]}")
    assert older["history"] and all(h["time"] < times[-1] for h in older["history"])
    status, _, _ = await http_get(f"{sim.rest_url}/history?symbol=PF_XBTUSD&lastTime=yesterday")
    assert status == 400
    status, _, _ = await http_get(f"{sim.rest_url}/history?symbol=NOPE")
    assert status == 400


async def test_a_late_batch_is_dated_across_the_time_it_stands_for(make_sim: Any) -> None:
    """After the event loop was held up, the catch-up batch's trades are spread over the
    time since the last batch, not stamped all at one millisecond (which would put more
    trades at one time than a ``/history`` page holds)."""
    sim = await make_sim("kraken-futures", rate=4000.0)
    c = await connect(sim.ws_url)
    c.send({"event": "subscribe", "feed": "trade", "product_ids": ["PF_XBTUSD"]})
    await async_wait_until(lambda: len(feeds(c)) > 50, message="trades flow")
    start = len(c.frames)
    time.sleep(0.3)  # hold the simulator's loop up: the next batch covers 0.25 s
    await async_wait_until(lambda: len(c.frames) > start + 1500, message="caught up")
    trades = [m for m in feeds(c, start) if m.get("feed") == "trade"]
    times = [t["time"] for t in trades]
    assert times == sorted(times)
    per_ms = max(len(list(g)) for _, g in itertools.groupby(times))
    assert per_ms <= 20, per_ms
