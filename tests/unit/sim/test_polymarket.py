"""Polymarket market-channel simulator: the protocol of polymarket.md, checked through the core."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import orjson

from helpers import async_wait_until
from sim_client import Client, connect, http_get
from ssmd.core import Processor
from ssmd.sim import SimOptions


def events(c: Client, start: int = 0, end: int | None = None) -> list[dict[str, Any]]:
    """Every event of frames ``start`` to ``end``, array frames flattened (PONG and
    broken frames skipped)."""
    out: list[dict[str, Any]] = []
    for m in c.json(start, end):
        out.extend(m if isinstance(m, list) else [m])
    return out


def kind(e: dict[str, Any]) -> str:
    return str(e.get("event_type") or ("book" if "bids" in e else "?"))


def assets_of(e: dict[str, Any]) -> set[str]:
    if "price_changes" in e:
        return {i["asset_id"] for i in e["price_changes"]}
    return {e["asset_id"]} if "asset_id" in e else set()


async def test_subscribe_books_data_through_core(make_sim: Any) -> None:
    sim = await make_sim("polymarket", rate=3000.0)
    assert sim.ws_url.endswith("/ws/market") and sim.urls()["clob"].endswith("/clob")
    tokens = sim.venue.instrument_ids()[:30]
    c = await connect(sim.ws_url)
    c.send({"assets_ids": tokens, "type": "market", "custom_feature_enabled": True})
    c.send(b"PING")
    await async_wait_until(lambda: len(events(c)) > 1500, message="data flows")
    assert b"PONG" in c.frames
    evs = events(c)
    dump = evs[: len(tokens)]
    assert all(kind(e) == "book" for e in dump) and {e["asset_id"] for e in dump} == set(tokens)
    assert any("event_type" not in e for e in dump)  # initial books without event_type
    assert any(f.startswith(b"[") for f in c.frames)  # array frames
    kinds = Counter(kind(e) for e in evs)
    assert {"book", "price_change", "last_trade_price", "best_bid_ask"} <= set(kinds)
    pc = next(e for e in evs if kind(e) == "price_change")
    assert list(pc) == ["market", "price_changes", "timestamp", "event_type"]
    assert set(pc["price_changes"][0]) == {
        "asset_id", "price", "size", "side", "hash", "best_bid", "best_ask"
    }  # fmt: skip
    book = next(e for e in evs[len(tokens) :] if kind(e) == "book")
    bids = [float(b["price"]) for b in book["bids"]]
    asks = [float(a["price"]) for a in book["asks"]]
    assert bids == sorted(bids) and asks == sorted(asks, reverse=True)  # best last on both
    assert bids[-1] < asks[-1]
    p = Processor("polymarket", "sim-test")
    p.process(c.frames, time.time_ns())
    n = p.counters()
    assert n["malformed"] == 0 and n["unknown"] == 0 and n["data"] == len(evs)
    assert n["control"] == 1  # the PONG
    assert sim.stats()["subscriptions"] == {"c1": 30}


async def test_mirror_books_and_custom_features_off(make_sim: Any) -> None:
    sim = await make_sim("polymarket", rate=3000.0)
    cond = sim.venue.conditions[0]
    c = await connect(sim.ws_url)
    c.send({"assets_ids": [cond.yes, cond.no], "type": "market"})
    await async_wait_until(lambda: len(events(c)) > 300)
    yes, no = events(c)[:2]
    # the NO book mirrors the YES book: NO best bid = 1 - YES best ask
    if yes["asset_id"] != cond.yes:
        yes, no = no, yes
    assert round(1 - float(yes["asks"][-1]["price"]), 3) == float(no["bids"][-1]["price"])
    assert not {"best_bid_ask", "new_market", "market_resolved"} & {kind(e) for e in events(c)}


async def test_operation_subscribe_unsubscribe(make_sim: Any) -> None:
    sim = await make_sim("polymarket", rate=3000.0)
    toks = sim.venue.instrument_ids()
    c = await connect(sim.ws_url)
    c.send({"assets_ids": toks[:2], "type": "market"})
    await async_wait_until(lambda: len(events(c)) > 50)
    c.send({"assets_ids": toks[2:4], "operation": "subscribe"})
    c.send({"assets_ids": toks[:2], "operation": "unsubscribe"})
    await async_wait_until(lambda: sim.stats()["subscriptions"] == {"c1": 2})
    mark = sim.connections()[0].frames_out  # every later frame was made after both
    await async_wait_until(lambda: len(events(c, mark)) > 200)
    seen = set().union(*(assets_of(e) for e in events(c, mark)))
    assert seen == set(toks[2:4])
    assert sim.stats()["subscriptions"] == {"c1": 2}


async def test_asset_cap_stops_updates_for_the_excess(make_sim: Any) -> None:
    sim = await make_sim("polymarket", rate=3000.0, options=SimOptions(polymarket_asset_limit=4))
    toks = sim.venue.instrument_ids()[:8]
    c = await connect(sim.ws_url)
    c.send({"assets_ids": toks, "type": "market", "custom_feature_enabled": True})
    await async_wait_until(lambda: len(events(c)) > 400)
    evs = events(c)
    assert {e["asset_id"] for e in evs[:8]} == set(toks)  # every initial book arrives
    updated = set().union(*(assets_of(e) for e in evs[8:] if kind(e) != "new_market"))
    updated -= {e["asset_id"] for e in evs[8:] if kind(e) == "market_resolved"}
    assert updated == set(toks[:4])


async def test_gamma_keyset_walks_the_universe_once(make_sim: Any) -> None:
    sim = await make_sim("polymarket", rate=0.0)
    root = sim.urls()["gamma"]
    seen: list[str] = []
    url = f"{root}/markets/keyset?limit=30"
    pages = 0
    while True:
        status, _, body = await http_get(url)
        assert status == 200
        pages += 1
        seen += [m["conditionId"] for m in body["markets"]]
        if "next_cursor" not in body:
            break
        url = f"{root}/markets/keyset?limit=30&after_cursor={body['next_cursor']}"
    assert pages == 4 and len(seen) == len(set(seen)) == 100
    assert set(seen) == {c.condition_id for c in sim.venue.conditions}
    m = body["markets"][-1]
    assert orjson.loads(m["clobTokenIds"]) and orjson.loads(m["outcomes"]) == ["Yes", "No"]
    assert m["events"][0]["tags"][0]["label"]
    _, _, open_only = await http_get(f"{root}/markets/keyset?limit=100&closed=false")
    assert len(open_only["markets"]) == 95 and "next_cursor" not in open_only
    assert (await http_get(f"{root}/markets/keyset?offset=10"))[0] == 400
    _, _, first = await http_get(f"{root}/markets/keyset?limit=5")
    _, _, again = await http_get(f"{root}/markets/keyset?limit=5&cursor={first['next_cursor']}")
    assert again["markets"] == first["markets"]  # `cursor=` is not the keyset parameter
    cid = seen[42]
    _, _, one = await http_get(f"{root}/markets/keyset?condition_ids={cid}")
    assert [m["conditionId"] for m in one["markets"]] == [cid]
    _, _, legacy = await http_get(f"{root}/markets?limit=10&offset=95")
    assert isinstance(legacy, list) and len(legacy) == 5
    _, _, evs = await http_get(f"{root}/events/keyset?limit=500")
    assert sum(len(e["markets"]) for e in evs["events"]) == 100


async def test_clob_markets_cursor_until_lte(make_sim: Any) -> None:
    sim = await make_sim("polymarket", rate=0.0, instruments=1200)
    clob = sim.urls()["clob"]
    cursor = "MA=="
    seen: list[str] = []
    while cursor != "LTE=":
        status, _, body = await http_get(f"{clob}/markets?next_cursor={cursor}")
        assert status == 200 and body["count"] == len(body["data"])
        seen += [m["condition_id"] for m in body["data"]]
        cursor = body["next_cursor"]
    assert len(seen) == len(set(seen)) == 1200
    assert len(sim.venue.instrument_ids()) == 2400


async def test_stall_one_condition(make_sim: Any) -> None:
    sim = await make_sim("polymarket", rate=3000.0)
    a, b = sim.venue.conditions[:2]
    c = await connect(sim.ws_url)
    c.send({"assets_ids": [a.yes, a.no, b.yes, b.no], "type": "market"})
    await async_wait_until(lambda: len(events(c)) > 100)
    conn = sim.connections()[0]
    sim.inject("stall", instrument=a.condition_id, seconds=30.0)
    start = conn.frames_out  # frames from here to `end` are made during the stall
    await async_wait_until(lambda: len(c.frames) >= start + 100)  # while b goes on
    end = conn.frames_out
    assert sim.instrument_stalled(a.condition_id)
    during = {e["market"] for e in events(c, start, end)}
    assert during == {b.condition_id}
    sim.inject("stall", instrument=a.condition_id, seconds=0.0)  # over
    mark = len(c.frames)
    await async_wait_until(lambda: any(e["market"] == a.condition_id for e in events(c, mark)))
