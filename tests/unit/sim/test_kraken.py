"""Kraken spot v2 simulator: the protocol of kraken.md, checked through the core."""

from __future__ import annotations

import asyncio
import itertools
import socket
import time
from typing import Any

from helpers import async_wait_until
from sim_client import Client, connect, http_get
from ssmd.core import Processor
from ssmd.sim import FaultPlan, SimOptions

SYMBOLS = ["BTC/USD", "ETH/USD", "DOGE/USD", "USDT/USD"]


async def precisions(rest_url: str) -> dict[str, tuple[int, int]]:
    """v2 symbol -> (pair_decimals, lot_decimals) from REST AssetPairs (wsname is v1)."""
    status, _, body = await http_get(f"{rest_url}/public/AssetPairs")
    assert status == 200 and body["error"] == []
    v1 = {"XBT": "BTC", "XDG": "DOGE"}
    out = {}
    for p in body["result"].values():
        base, quote = p["wsname"].split("/")
        out[f"{v1.get(base, base)}/{v1.get(quote, quote)}"] = (
            p["pair_decimals"],
            p["lot_decimals"],
        )
    return out


def core(frames: list[bytes], precs: dict[str, tuple[int, int]], depth: int = 10) -> Processor:
    p = Processor("kraken", "sim-test")
    p.set_book_depth(depth)
    for sym, (pp, qp) in precs.items():
        p.set_precision(sym, pp, qp)
    p.process(frames, time.time_ns())
    return p


def acks(client: Client, method: str = "subscribe") -> list[dict[str, Any]]:
    return [m for m in client.json() if m.get("method") == method]


async def subscribe_all(c: Client, symbols: list[str], trigger: str = "bbo") -> None:
    c.send(
        {
            "method": "subscribe",
            "params": {"channel": "book", "symbol": symbols, "depth": 10},
            "req_id": 1,
        }
    )
    c.send(
        {
            "method": "subscribe",
            "params": {"channel": "ticker", "symbol": symbols, "event_trigger": trigger},
            "req_id": 2,
        }
    )
    c.send({"method": "subscribe", "params": {"channel": "trade", "symbol": symbols}, "req_id": 3})


async def test_subscribe_acks_data_through_core(make_sim: Any) -> None:
    sim = await make_sim("kraken", rate=4000.0)
    assert sim.ws_url.endswith("/v2") and sim.rest_url.endswith("/0")
    precs = await precisions(sim.rest_url)
    c = await connect(sim.ws_url)
    await async_wait_until(lambda: c.frames, message="status on connect")
    status = c.json()[0]
    assert status["channel"] == "status" and status["data"][0]["system"] == "online"
    assert status["data"][0]["connection_id"] > 2**63  # the sheet's int64 trap
    await subscribe_all(c, [*SYMBOLS, "XBT/USD"])
    await async_wait_until(lambda: len(c.frames) > 3000, message="data flows")
    ok = [a for a in acks(c) if a["success"]]
    assert len(ok) == 3 * len(SYMBOLS)  # one ack per symbol and channel
    book_ack = next(a for a in ok if a["result"]["channel"] == "book")
    assert list(book_ack) == ["method", "req_id", "result", "success", "time_in", "time_out"]
    assert book_ack["result"] == {
        "channel": "book",
        "depth": 10,
        "snapshot": True,
        "symbol": "BTC/USD",
    }
    ticker_ack = next(a for a in ok if a["result"]["channel"] == "ticker")
    assert ticker_ack["result"]["event_trigger"] == "bbo"
    trade_ack = next(a for a in ok if a["result"]["channel"] == "trade")
    assert trade_ack["result"]["snapshot"] is False  # trade snapshot defaults to false
    errors = [a for a in acks(c) if not a["success"]]
    assert [(e["error"], e["symbol"]) for e in errors] == [
        ("Currency pair not supported XBT/USD", "XBT/USD")
    ] * 3
    p = core(c.frames, precs)
    n = p.counters()
    assert n["malformed"] == 0 and n["unknown"] == 0 and n["gaps"] == 0
    assert n["checksum_mismatch"] == 0 and n["checksum_ok"] > 500
    assert n["checksum_inferred"] == 0
    kinds = {m.get("channel") for m in c.json()}
    assert {"book", "ticker", "trade", "status"} <= kinds
    stats = sim.stats()
    assert stats["connections"] == 1 and stats["subscriptions"] == {"c1": 12}
    assert stats["messages"]["book"] > 100


async def test_trimmed_numbers_need_precisions(make_sim: Any) -> None:
    """Wire numbers drop trailing zeros; the checksum uses the pair precisions."""
    sim = await make_sim("kraken", rate=3000.0)
    c = await connect(sim.ws_url)
    c.send(
        {"method": "subscribe", "params": {"channel": "book", "symbol": ["USDT/USD", "BTC/USD"]}}
    )
    await async_wait_until(lambda: len(c.frames) > 400)
    books = [f for f in c.frames if f.startswith(b'{"channel":"book"')]
    assert any(b'"qty":0,' in f or b'"qty":0}' in f for f in books)  # deletes
    # at least one price or qty written with fewer decimals than the pair has
    assert any(b"0," not in f for f in books)
    p = core(c.frames, await precisions(sim.rest_url))
    assert p.counters()["checksum_mismatch"] == 0 and p.counters()["checksum_ok"] > 100


async def test_ticker_trades_trigger_and_depth_25(make_sim: Any) -> None:
    sim = await make_sim("kraken", rate=3000.0)
    c = await connect(sim.ws_url)
    c.send({"method": "subscribe", "params": {"channel": "ticker", "symbol": ["ETH/USD"]}})
    c.send(
        {"method": "subscribe", "params": {"channel": "book", "symbol": ["ETH/USD"], "depth": 25}}
    )
    await async_wait_until(lambda: len(c.frames) > 500)
    msgs = c.json()
    ack = next(m for m in msgs if m.get("result", {}).get("channel") == "ticker")
    assert ack["result"]["event_trigger"] == "trades"
    snap = next(m for m in msgs if m.get("channel") == "book" and m["type"] == "snapshot")
    assert len(snap["data"][0]["bids"]) == 25 and len(snap["data"][0]["asks"]) == 25
    tickers = [m for m in msgs if m.get("channel") == "ticker"]
    assert tickers[0]["type"] == "snapshot" and len(tickers) > 10
    p = core(c.frames, await precisions(sim.rest_url), depth=25)
    assert p.counters()["checksum_mismatch"] == 0 and p.counters()["checksum_ok"] > 100


async def test_instrument_channel_agrees_with_rest(make_sim: Any) -> None:
    sim = await make_sim("kraken", rate=0.0)
    c = await connect(sim.ws_url)
    c.send({"method": "subscribe", "params": {"channel": "instrument"}, "req_id": 9})
    await async_wait_until(lambda: any(m.get("channel") == "instrument" for m in c.json()))
    inst = next(m for m in c.json() if m.get("channel") == "instrument")
    pairs = {p["symbol"]: (p["price_precision"], p["qty_precision"]) for p in inst["data"]["pairs"]}
    assert pairs == await precisions(sim.rest_url)
    assert "BTC/USD" in pairs and "XBT/USD" not in pairs


async def test_heartbeat_when_idle_and_app_ping(make_sim: Any) -> None:
    sim = await make_sim("kraken", rate=0.0, options=SimOptions(heartbeat_interval=0.1))
    c = await connect(sim.ws_url)
    await async_wait_until(lambda: c.frames)
    rounds = sim.housekeeping_rounds
    await async_wait_until(lambda: sim.housekeeping_rounds >= rounds + 10)  # 5 intervals
    assert "heartbeat" not in sim.stats()["controls"]  # only after a subscription
    c.send({"method": "subscribe", "params": {"channel": "trade", "symbol": ["BTC/USD"]}})
    await async_wait_until(
        lambda: sum(m.get("channel") == "heartbeat" for m in c.json()) >= 3, timeout=5
    )
    assert {"channel": "heartbeat"} in c.json()
    c.send({"method": "ping", "req_id": 101})
    await async_wait_until(lambda: any(m.get("method") == "pong" for m in c.json()))
    pong = next(m for m in c.json() if m.get("method") == "pong")
    assert list(pong) == ["method", "req_id", "time_in", "time_out"] and pong["req_id"] == 101
    c.ping(b"hello")  # a WebSocket protocol ping is answered too
    await async_wait_until(lambda: c.pongs == [b"hello"])


async def test_request_errors(make_sim: Any) -> None:
    sim = await make_sim("kraken", rate=0.0)
    c = await connect(sim.ws_url)
    await async_wait_until(lambda: c.frames)
    c.send(b"{not json")
    c.send(
        {"method": "subscribe", "params": {"channel": "ohlcx", "symbol": ["BTC/USD"]}, "req_id": 5}
    )
    c.send(
        {"method": "subscribe", "params": {"channel": "book", "symbol": ["BTC/USD"], "depth": 7}}
    )
    c.send({"method": "subscribe", "params": {"channel": "trade"}})
    c.send({"method": "unsubscribe", "params": {"channel": "trade", "symbol": ["BTC/USD"]}})
    c.send({"method": "subscribe", "params": {"channel": "trade", "symbol": ["BTC/USD"]}})
    c.send({"method": "subscribe", "params": {"channel": "trade", "symbol": ["BTC/USD"]}})
    c.send({"method": "unsubscribe", "params": {"channel": "trade", "symbol": ["BTC/USD"]}})
    await async_wait_until(lambda: len(c.json()) >= 9)
    msgs = c.json()[1:]
    errors = [m["error"] for m in msgs if m.get("success") is False]
    assert errors == [
        "EGeneral:Invalid arguments",
        "Channel ohlcx not supported",
        "EGeneral:Invalid arguments:depth",
        "EGeneral:Invalid arguments:symbol",
        "Subscription Not Found",
        "Already subscribed",
    ]
    assert next(m for m in msgs if "ohlcx" in m.get("error", ""))["req_id"] == 5
    unsub = [m for m in msgs if m.get("method") == "unsubscribe" and m["success"]]
    assert unsub[0]["result"] == {"channel": "trade", "symbol": "BTC/USD"}
    assert sim.stats()["subscriptions"] == {"c1": 0}


async def test_asset_pairs_lists_the_universe(make_sim: Any) -> None:
    sim = await make_sim("kraken", rate=0.0, instruments=30)
    status, _, body = await http_get(f"{sim.rest_url}/public/AssetPairs")
    assert status == 200 and body["error"] == [] and len(body["result"]) == 30
    btc = body["result"]["XXBTZUSD"]
    assert btc["wsname"] == "XBT/USD" and btc["altname"] == "XBTUSD"
    assert (btc["pair_decimals"], btc["lot_decimals"]) == (1, 8) and btc["tick_size"] == "0.1"
    _, _, one = await http_get(f"{sim.rest_url}/public/AssetPairs?pair=XBTUSD,ETHUSD")
    assert sorted(one["result"]) == ["XETHZUSD", "XXBTZUSD"]
    status, _, bad = await http_get(f"{sim.rest_url}/public/AssetPairs?pair=NOPE")
    assert status == 200 and bad["error"] == ["EQuery:Unknown asset pair"]
    status, _, missing = await http_get(f"{sim.rest_url}/public/Nothing")
    assert status == 404 and missing["error"] == ["EGeneral:Unknown method"]


async def test_rest_rate_limit_429_retry_after(make_sim: Any) -> None:
    sim = await make_sim("kraken", rate=0.0, options=SimOptions(rest_rate=1.0, rest_burst=2))
    codes = [(await http_get(f"{sim.rest_url}/public/AssetPairs"))[:2] for _ in range(3)]
    assert [s for s, _ in codes] == [200, 200, 429]
    assert int(codes[2][1]["Retry-After"]) >= 1
    sim2 = await make_sim("kraken", rate=0.0)
    assert sim2.inject("rest_throttle", count=1, retry_after=3) == 1
    status, headers, body = await http_get(f"{sim2.rest_url}/public/AssetPairs")
    assert status == 429 and headers["Retry-After"] == "3" and body["error"]
    assert (await http_get(f"{sim2.rest_url}/public/AssetPairs"))[0] == 200
    assert sim2.stats()["faults"] == {"rest_throttle": 1}


async def test_corrupt_checksum_seen_as_mismatch_and_resync(make_sim: Any) -> None:
    sim = await make_sim("kraken", rate=3000.0, faults=FaultPlan(corrupt_checksum=0.05), seed=3)
    c = await connect(sim.ws_url)
    c.send({"method": "subscribe", "params": {"channel": "book", "symbol": SYMBOLS}})
    await async_wait_until(lambda: sim.stats()["faults"].get("corrupt_checksum", 0) >= 3)
    p = Processor("kraken", "t")
    for sym, (pp, qp) in (await precisions(sim.rest_url)).items():
        p.set_precision(sym, pp, qp)
    batch = p.process(c.frames, time.time_ns())
    assert p.counters()["checksum_mismatch"] >= 1
    assert batch.resyncs and all(reason == "checksum" for _, reason in batch.resyncs)
    # a resync is an unsubscribe/subscribe: a fresh snapshot arrives
    sym = batch.resyncs[0][0]
    c.send({"method": "unsubscribe", "params": {"channel": "book", "symbol": [sym]}})
    c.send({"method": "subscribe", "params": {"channel": "book", "symbol": [sym]}})
    start = len(c.frames)
    await async_wait_until(
        lambda: any(
            m.get("type") == "snapshot" and m["data"][0]["symbol"] == sym for m in c.json(start)
        )
    )


async def test_drop_breaks_checksum_malformed_counted(make_sim: Any) -> None:
    sim = await make_sim("kraken", rate=3000.0, faults=FaultPlan(drop=0.02, malformed=0.02))
    c = await connect(sim.ws_url)
    c.send({"method": "subscribe", "params": {"channel": "book", "symbol": SYMBOLS}})
    await async_wait_until(lambda: len(c.frames) > 1500)
    await sim.set_rate(0)  # then everything the simulator made has arrived: compare all of it
    await async_wait_until(lambda: len(c.frames) == sim.connections()[0].frames_out)
    p = core(c.frames, await precisions(sim.rest_url))
    faults = sim.stats()["faults"]
    assert faults["drop"] > 0 and faults["malformed"] > 0
    assert p.counters()["malformed"] == faults["malformed"]  # every broken frame is seen
    assert p.counters()["checksum_mismatch"] >= 1  # a lost update breaks the book


async def test_stall_keeps_keepalives(make_sim: Any) -> None:
    sim = await make_sim("kraken", rate=2000.0, options=SimOptions(heartbeat_interval=0.1))
    c = await connect(sim.ws_url)
    c.send({"method": "subscribe", "params": {"channel": "trade", "symbol": SYMBOLS}})
    await async_wait_until(lambda: len(c.frames) > 100)
    assert sim.inject("stall", seconds=30.0) == 1
    trades, sent = sim.sent_messages["trade"], sim.sent_controls.copy()
    c.send({"method": "ping", "req_id": 7})
    await async_wait_until(
        lambda: (
            sim.sent_controls["pong"] > sent["pong"]
            and sim.sent_controls["heartbeat"] >= sent["heartbeat"] + 3
        )
    )
    assert sim.sent_messages["trade"] == trades  # no data during the stall, keep-alives go on
    assert sim.inject("stall", seconds=0.0) == 1  # over
    mark = len(c.frames)
    await async_wait_until(lambda: any(m.get("channel") == "trade" for m in c.json(mark)))
    assert any(m.get("method") == "pong" and m.get("req_id") == 7 for m in c.json())
    assert sim.stats()["faults"]["stall"] == 1


async def test_instrument_stall_only_that_symbol(make_sim: Any) -> None:
    sim = await make_sim("kraken", rate=3000.0)
    c = await connect(sim.ws_url)
    c.send(
        {"method": "subscribe", "params": {"channel": "trade", "symbol": ["BTC/USD", "ETH/USD"]}}
    )
    await async_wait_until(lambda: len(c.frames) > 100)
    conn = sim.connections()[0]
    sim.inject("stall", instrument="BTC/USD", seconds=30.0)
    start = conn.frames_out  # frames from here to `end` are made during the stall
    await async_wait_until(lambda: len(c.frames) >= start + 100)  # while ETH/USD goes on
    end = conn.frames_out
    assert sim.instrument_stalled("BTC/USD")
    syms = {m["data"][0]["symbol"] for m in c.json(start, end) if m.get("channel") == "trade"}
    assert syms == {"ETH/USD"}
    sim.inject("stall", instrument="BTC/USD", seconds=0.0)  # over
    mark = len(c.frames)
    await async_wait_until(
        lambda: any(
            m.get("channel") == "trade" and m["data"][0]["symbol"] == "BTC/USD"
            for m in c.json(mark)
        )
    )


async def test_disconnect_after_messages(make_sim: Any) -> None:
    sim = await make_sim("kraken", rate=3000.0, faults=FaultPlan(disconnect_after=200))
    c = await connect(sim.ws_url)
    c.send({"method": "subscribe", "params": {"channel": "trade", "symbol": SYMBOLS}})
    await asyncio.wait_for(c.disconnected.wait(), 5)
    data = [m for m in c.json() if m.get("channel") == "trade"]
    assert len(data) == 200
    assert c.close_code == 1001
    await async_wait_until(lambda: sim.stats()["connections"] == 0)
    assert sim.stats()["faults"]["disconnect"] == 1


async def test_slow_reader_is_disconnected(make_sim: Any) -> None:
    """A venue does not wait for a reader: past the queue bound it drops the connection."""
    sim = await make_sim("kraken", rate=50_000.0, options=SimOptions(max_queue_bytes=64 * 1024))

    reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    writer.write(
        b"GET /v2 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101")
    # one masked text frame: subscribe, then never read again
    payload = b'{"method":"subscribe","params":{"channel":"book","symbol":["BTC/USD","ETH/USD"]}}'
    mask = b"\x01\x02\x03\x04"
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    writer.write(bytes((0x81, 0x80 | len(payload))) + mask + masked)
    await async_wait_until(lambda: sim.stats()["faults"].get("slow_reader", 0) >= 1)
    await async_wait_until(lambda: sim.stats()["connections"] == 0)
    writer.close()


async def test_rest_trades_lists_what_the_trade_channel_sent(make_sim: Any) -> None:
    sim = await make_sim("kraken", rate=2000.0)
    c = await connect(sim.ws_url)
    c.send({"method": "subscribe", "params": {"channel": "trade", "symbol": ["BTC/USD"]}})
    c.send({"method": "subscribe", "params": {"channel": "ticker", "symbol": ["ETH/USD"]}})

    def sent() -> list[int]:
        return [t["trade_id"] for m in c.json() if m.get("channel") == "trade" for t in m["data"]]

    await async_wait_until(lambda: len(sent()) >= 120, timeout=10)
    await sim.set_rate(0)
    await asyncio.sleep(0.2)
    ids = sent()
    # whole, by any name of the pair, in pages: `last` back as `since` (ties listed again)
    got: list[int] = []
    since = 0
    for _ in range(100):
        status, _, body = await http_get(
            f"{sim.rest_url}/public/Trades?pair=XBTUSD&since={since}&count=25"
        )
        assert status == 200 and body["error"] == [] and set(body["result"]) == {"XXBTZUSD", "last"}
        rows = body["result"]["XXBTZUSD"]
        assert all(len(r) == 7 and r[3] in "bs" and r[4] in "ml" for r in rows)
        got += [r[6] for r in rows if r[6] not in got]
        if len(rows) < 25:
            break
        since = int(body["result"]["last"])
    assert got == ids
    # without `since`: the newest `count`, oldest first
    _, _, body = await http_get(f"{sim.rest_url}/public/Trades?pair=BTC/USD&count=5")
    assert [r[6] for r in body["result"]["XXBTZUSD"]] == ids[-5:]
    # a ticker-only pair traded without a trade channel: not listed
    _, _, body = await http_get(f"{sim.rest_url}/public/Trades?pair=ETH/USD")
    assert body["result"]["XETHZUSD"] == []
    _, _, body = await http_get(f"{sim.rest_url}/public/Trades?pair=NOPE")
    assert body == {"error": ["EQuery:Unknown asset pair"]}


async def test_a_late_batch_is_dated_across_the_time_it_stands_for(make_sim: Any) -> None:
    """After the event loop was held up, the catch-up batch's trades are spread over the
    time since the last batch rather than all at one instant (``public/Trades`` pages
    by time: more trades at one time than a page holds could not be listed)."""
    sim = await make_sim("kraken", rate=4000.0)
    c = await connect(sim.ws_url)
    c.send({"method": "subscribe", "params": {"channel": "trade", "symbol": ["BTC/USD"]}})
    await async_wait_until(lambda: len(c.frames) > 50, message="trades flow")
    start = len(c.frames)
    time.sleep(0.3)  # hold the simulator's loop up: the next batch covers 0.25 s
    await async_wait_until(lambda: len(c.frames) > start + 1000, message="caught up")
    times = [
        t["timestamp"]
        for m in c.json(start)
        if m.get("channel") == "trade" and m.get("type") == "update"
        for t in m["data"]
    ]
    assert times == sorted(times)
    per_time = max(len(list(g)) for _, g in itertools.groupby(times))
    assert per_time <= 20, per_time
