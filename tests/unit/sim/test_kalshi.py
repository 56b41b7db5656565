"""Kalshi simulator: the protocol of kalshi.md (auth, commands, seq), checked through the core."""

from __future__ import annotations

import asyncio
import base64
import socket
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from picows import WSHandshakeError

from helpers import async_wait_until
from sim_client import Client, connect, http_get
from ssmd.core import Processor
from ssmd.sim import FaultPlan, SimOptions


@pytest.fixture(scope="module")
def keys() -> tuple[rsa.RSAPrivateKey, bytes, rsa.RSAPrivateKey]:
    """A throw-away key pair (private key, public PEM) and an unrelated private key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return key, pem, other


def signed(key: rsa.RSAPrivateKey, ts_ms: int | None = None) -> dict[str, str]:
    """The sheet's reference signing (kalshi.md section 1.2) for the WebSocket upgrade."""
    ts = str(ts_ms if ts_ms is not None else int(time.time() * 1000))
    sig = key.sign(
        f"{ts}GET/trade-api/ws/v2".encode(),
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH),
        hashes.SHA256(),
    )
    return {
        "KALSHI-ACCESS-KEY": "8d2a0f1e-0000-4000-8000-000000000001",
        "KALSHI-ACCESS-TIMESTAMP": ts,
        "KALSHI-ACCESS-SIGNATURE": base64.b64encode(sig).decode(),
    }


def core(frames: list[bytes]) -> Processor:
    p = Processor("kalshi", "sim-test")
    p.process(frames, time.time_ns())
    return p


def replies(c: Client, start: int = 0) -> list[dict[str, Any]]:
    return [m for m in c.json(start) if m["type"] in ("subscribed", "ok", "error", "unsubscribed")]


async def test_signed_connection_subscribes_and_data_passes_core(make_sim: Any, keys: Any) -> None:
    key, pem, _ = keys
    sim = await make_sim(
        "kalshi", rate=4000.0, kalshi_public_key=pem, options=SimOptions(ping_interval=0.2)
    )
    assert sim.ws_url.endswith("/trade-api/ws/v2") and sim.rest_url.endswith("/trade-api/v2")
    markets = sim.venue.instrument_ids()[:12]
    c = await connect(sim.ws_url, signed(key))
    c.send({"id": 1, "cmd": "subscribe", "params": {"channels": ["ticker"], "market_tickers": markets, "send_initial_snapshot": True}})  # fmt: skip
    c.send({"id": 2, "cmd": "subscribe", "params": {"channels": ["trade"]}})
    c.send({"id": 3, "cmd": "subscribe", "params": {"channels": ["orderbook_delta"], "market_tickers": markets}})  # fmt: skip
    c.send({"id": 4, "cmd": "subscribe", "params": {"channels": ["market_lifecycle_v2"]}})
    await async_wait_until(lambda: len(c.frames) > 2500, message="data flows")
    assert replies(c) == [
        {"id": i, "type": "subscribed", "msg": {"channel": ch, "sid": i}}
        for i, ch in enumerate(["ticker", "trade", "orderbook_delta", "market_lifecycle_v2"], 1)
    ]
    msgs = c.json()
    initial = [m for m in msgs if m["type"] == "ticker"][: len(markets)]
    assert [m["msg"]["market_ticker"] for m in initial] == markets
    assert "seq" not in initial[0] and initial[0]["msg"]["price_dollars"].startswith("0.")
    snaps = [m for m in msgs if m["type"] == "orderbook_snapshot"]
    assert [s["seq"] for s in snaps] == list(range(1, len(markets) + 1))  # seq per sid from 1
    first_trade = next(m for m in msgs if m["type"] == "trade")
    assert first_trade["seq"] == 1 and set(first_trade["msg"]) >= {
        "trade_id", "yes_price_dollars", "no_price_dollars", "count_fp", "taker_outcome_side", "ts_ms"
    }  # fmt: skip
    kinds = {m["type"] for m in msgs}
    assert {"ticker", "trade", "orderbook_snapshot", "orderbook_delta"} <= kinds
    assert kinds & {"market_lifecycle_v2", "event_lifecycle"}
    n = core(c.frames).counters()
    assert n["malformed"] == 0 and n["unknown"] == 0 and n["gaps"] == 0 and n["duplicates"] == 0
    await async_wait_until(lambda: len(c.pings) >= 2)  # server Ping every ping_interval
    assert set(c.pings) == {b"heartbeat"}
    assert sim.stats()["rejected_upgrades"] == 0


async def test_bad_signatures_are_refused(make_sim: Any, keys: Any) -> None:
    key, pem, other = keys
    sim = await make_sim("kalshi", rate=0.0, kalshi_public_key=pem)
    bad = [
        signed(other),  # wrong key
        signed(key, int(time.time() * 1000) - 60_000),  # stale
        {k: v for k, v in signed(key).items() if k != "KALSHI-ACCESS-SIGNATURE"},  # missing
        {**signed(key), "KALSHI-ACCESS-TIMESTAMP": str(int(time.time()))},  # seconds, not ms
    ]
    for headers in bad:
        with pytest.raises(WSHandshakeError) as info:
            await connect(sim.ws_url, headers)
        assert info.value.response is not None and info.value.response.status == 401
    assert sim.stats()["rejected_upgrades"] == 4
    c = await connect(sim.ws_url, signed(key))  # and a good one still works
    c.send({"id": 1, "cmd": "list_subscriptions"})
    await async_wait_until(lambda: c.json())
    assert c.json() == [{"id": 1, "type": "ok", "msg": []}]


async def test_commands_and_error_codes(make_sim: Any) -> None:
    sim = await make_sim("kalshi", rate=0.0, options=SimOptions(kalshi_market_limit=3))
    mk = sim.venue.instrument_ids()
    anon = await connect(sim.ws_url)  # no key configured: accepted, but not authenticated
    anon.send({"id": 1, "cmd": "subscribe", "params": {"channels": ["orderbook_delta"], "market_tickers": mk[:1]}})  # fmt: skip
    await async_wait_until(lambda: anon.json())
    assert anon.json()[0] == {"id": 1, "type": "error", "msg": {"code": 9, "msg": "Authentication required"}}  # fmt: skip
    c = await connect(sim.ws_url, {"KALSHI-ACCESS-KEY": "k"})
    c.send(b"{oops")
    c.send({"id": 2, "cmd": "subscribe", "params": {"channels": ["tickerz"]}})
    c.send({"id": 3, "cmd": "subscribe", "params": {"channels": ["orderbook_delta"]}})
    c.send({"id": 4, "cmd": "frobnicate", "params": {}})
    c.send({"id": 5, "cmd": "subscribe", "params": {"channels": ["ticker"], "market_tickers": mk[:2]}})  # fmt: skip
    c.send({"id": 6, "cmd": "subscribe", "params": {"channels": ["orderbook_delta"], "market_tickers": mk[:4]}})  # fmt: skip
    c.send({"id": 7, "cmd": "update_subscription", "params": {"sids": [1, 2], "market_tickers": mk[2:3], "action": "add_markets"}})  # fmt: skip
    c.send({"id": 8, "cmd": "update_subscription", "params": {"sids": [99], "market_tickers": mk[2:3], "action": "add_markets"}})  # fmt: skip
    c.send({"id": 9, "cmd": "update_subscription", "params": {"sid": 1, "market_tickers": mk[2:3], "action": "add_markets"}})  # fmt: skip
    c.send({"id": 10, "cmd": "update_subscription", "params": {"sid": 1, "market_tickers": mk[3:5], "action": "add_markets"}})  # fmt: skip
    c.send({"id": 11, "cmd": "update_subscription", "params": {"sids": [1], "market_tickers": mk[:1], "action": "delete_markets"}})  # fmt: skip
    c.send({"id": 12, "cmd": "update_subscription", "params": {"sids": [1], "market_tickers": mk[1:2], "action": "get_snapshot"}})  # fmt: skip
    c.send({"id": 13, "cmd": "unsubscribe", "params": {"sids": [1]}})
    await async_wait_until(lambda: len(replies(c)) >= 13)
    got = [(m.get("id"), m["type"], m.get("msg", {}).get("code")) for m in replies(c) if isinstance(m.get("msg", {}), dict)]  # fmt: skip
    assert got == [
        (None, "error", 1),
        (2, "error", 8),
        (3, "error", 14),
        (4, "error", 5),
        (5, "subscribed", None),
        (6, "error", 26),
        (7, "error", 12),
        (8, "error", 7),
        (9, "ok", None),
        (10, "error", 26),
        (11, "ok", None),
        (12, "error", 13),  # get_snapshot is for orderbook sids
        (13, "unsubscribed", None),
    ]
    oks = [m for m in replies(c) if m["type"] == "ok"]
    assert oks[0]["msg"] == {"market_tickers": [*mk[:2], mk[2]]}  # the full list after the update
    assert oks[1]["msg"] == {"market_tickers": mk[1:3]}
    c.send({"id": 14, "cmd": "update_subscription", "params": {"sids": [1], "market_tickers": mk[1:2], "action": "get_snapshot"}})  # fmt: skip
    c.send({"id": 15, "cmd": "list_subscriptions"})
    await async_wait_until(lambda: any(m.get("id") == 15 for m in c.json()))
    assert next(m for m in c.json() if m.get("id") == 14)["msg"]["code"] == 7  # sid 1 is gone


async def test_get_snapshot_and_unsubscribed_seq(make_sim: Any) -> None:
    sim = await make_sim("kalshi", rate=2000.0)
    mk = sim.venue.instrument_ids()[:3]
    c = await connect(sim.ws_url, {"KALSHI-ACCESS-KEY": "k"})
    c.send({"id": 1, "cmd": "subscribe", "params": {"channels": ["orderbook_delta"], "market_tickers": mk}})  # fmt: skip
    await async_wait_until(lambda: len(c.frames) > 200)
    c.send({"id": 2, "cmd": "update_subscription", "params": {"sids": [1], "market_tickers": mk[1:2], "action": "get_snapshot"}})  # fmt: skip
    await async_wait_until(lambda: any(m.get("id") == 2 for m in c.json()))
    snap = next(m for m in c.json() if m.get("id") == 2)
    assert snap["type"] == "orderbook_snapshot" and snap["msg"]["market_ticker"] == mk[1]
    c.send({"id": 3, "cmd": "unsubscribe", "params": {"sids": [1]}})
    await async_wait_until(lambda: any(m.get("id") == 3 for m in c.json()))
    unsub = next(m for m in c.json() if m.get("id") == 3)
    assert list(unsub) == ["id", "sid", "seq", "type"] and unsub["type"] == "unsubscribed"
    n = core(c.frames).counters()
    assert n["gaps"] == 0 and n["duplicates"] == 0 and n["malformed"] == 0


async def test_rest_cursor_pagination_walks_everything_once(make_sim: Any) -> None:
    sim = await make_sim("kalshi", rate=0.0)
    root = sim.rest_url
    seen: list[str] = []
    cursor = ""
    pages = 0
    while True:
        url = f"{root}/markets?limit=50" + (f"&cursor={cursor}" if cursor else "")
        status, _, body = await http_get(url)
        assert status == 200
        pages += 1
        seen += [m["ticker"] for m in body["markets"]]
        cursor = body["cursor"]
        if not cursor:
            break
    assert pages == 4 and len(seen) == len(set(seen)) == 192
    _, _, open_ = await http_get(f"{root}/markets?limit=1000&status=open")
    assert len(open_["markets"]) == len(sim.venue.instrument_ids()) == 160
    assert all(m["status"] == "active" for m in open_["markets"])
    _, _, settled = await http_get(f"{root}/markets?limit=1000&status=settled")
    assert len(settled["markets"]) == 32 and settled["cursor"] == ""
    _, _, series = await http_get(f"{root}/series")
    assert {s["category"] for s in series["series"]} >= {"Crypto", "Economics", "Politics"}
    _, _, crypto = await http_get(f"{root}/series?category=Crypto")
    assert [s["ticker"] for s in crypto["series"]] == ["KXBTCD", "KXETHD"]
    events: list[str] = []
    cursor = ""
    while True:
        _, _, body = await http_get(f"{root}/events?limit=7" + (f"&cursor={cursor}" if cursor else ""))  # fmt: skip
        events += [e["event_ticker"] for e in body["events"]]
        cursor = body["cursor"]
        if not cursor:
            break
    assert len(events) == len(set(events)) == 24
    _, _, nested = await http_get(f"{root}/events?series_ticker=FED&with_nested_markets=true")
    assert all(len(e["markets"]) == 8 for e in nested["events"])
    _, _, one = await http_get(f"{root}/markets/{seen[0]}")
    assert one["market"]["ticker"] == seen[0]
    status, _, err = await http_get(f"{root}/markets?cursor=%%%")
    assert status == 400 and err["error"]["code"] == "bad_request"
    _, _, fees = await http_get(f"{root}/series/fee_changes?show_historical=true")
    assert fees["series_fee_change_arr"]


async def test_rest_429_with_retry_after(make_sim: Any) -> None:
    sim = await make_sim("kalshi", rate=0.0, options=SimOptions(rest_rate=2.0, rest_burst=2))
    got = [await http_get(f"{sim.rest_url}/series") for _ in range(3)]
    assert [s for s, _, _ in got] == [200, 200, 429]
    assert int(got[2][1]["Retry-After"]) >= 1
    assert got[2][2]["error"]["code"] == "too_many_requests"


async def test_seq_faults_seen_by_core(make_sim: Any) -> None:
    sim = await make_sim(
        "kalshi", rate=4000.0, faults=FaultPlan(drop=0.01, duplicate=0.01, reorder=0.02), seed=5
    )
    mk = sim.venue.instrument_ids()[:5]
    c = await connect(sim.ws_url, {"KALSHI-ACCESS-KEY": "k"})
    c.send({"id": 1, "cmd": "subscribe", "params": {"channels": ["trade"], "market_tickers": mk}})  # fmt: skip
    c.send({"id": 2, "cmd": "subscribe", "params": {"channels": ["orderbook_delta"], "market_tickers": mk}})  # fmt: skip
    await async_wait_until(lambda: len(c.frames) > 3000)
    p = Processor("kalshi", "t")
    batch = p.process(c.frames, time.time_ns())
    n = p.counters()
    assert n["gaps"] >= 1 and n["duplicates"] >= 1 and n["late"] >= 1
    # an orderbook gap asks to resync the markets of that sid
    assert {m for m, reason in batch.resyncs if reason == "seq_gap"} == set(mk)


async def test_slow_reader_gets_error_25_and_loses_subscriptions(make_sim: Any) -> None:
    sim = await make_sim("kalshi", rate=40_000.0, options=SimOptions(max_queue_bytes=64 * 1024))
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
    writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    writer.write(
        b"GET /trade-api/ws/v2 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
    payload = b'{"id":1,"cmd":"subscribe","params":{"channels":["trade"]}}'
    mask = b"\x01\x02\x03\x04"
    writer.write(
        bytes((0x81, 0x80 | len(payload)))
        + mask
        + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    )
    await async_wait_until(lambda: sim.stats()["faults"].get("slow_reader", 0) >= 1)
    stats = sim.stats()
    assert stats["connections"] == 1 and stats["subscriptions"] == {"c1": 0}  # still connected
    assert stats["controls"]["error"] == 1
    writer.close()


async def test_one_subscription_stalls(make_sim: Any) -> None:
    """A stall of one channel: its sid goes quiet, the other sid and the socket go on."""
    sim = await make_sim("kalshi", rate=3000.0)
    mk = sim.venue.instrument_ids()[:4]
    c = await connect(sim.ws_url, {"KALSHI-ACCESS-KEY": "k"})
    c.send({"id": 1, "cmd": "subscribe", "params": {"channels": ["trade"], "market_tickers": mk}})  # fmt: skip
    c.send({"id": 2, "cmd": "subscribe", "params": {"channels": ["orderbook_delta"], "market_tickers": mk}})  # fmt: skip
    await async_wait_until(lambda: len(c.frames) > 200)
    conn = sim.connections()[0]
    sim.inject("stall", channel="trade", seconds=30.0)
    start = conn.frames_out  # frames from here to `end` are made during the stall
    await async_wait_until(lambda: len(c.frames) >= start + 100)  # while the book sid goes on
    end = conn.frames_out
    assert sim.instrument_stalled("channel:trade")
    assert {m["type"] for m in c.json(start, end)} == {"orderbook_delta"}
    sim.inject("stall", channel="trade", seconds=0.0)  # over
    mark = len(c.frames)
    await async_wait_until(lambda: any(m["type"] == "trade" for m in c.json(mark)))
    assert sim.stats()["faults"]["channel_stall"] == 1
    assert core(c.frames).counters()["gaps"] == 0  # a stall loses nothing
