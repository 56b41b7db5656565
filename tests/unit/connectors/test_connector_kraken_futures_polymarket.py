"""Kraken Futures and Polymarket request shapes and control frames."""

from __future__ import annotations

import orjson

from ssmd.connectors.polymarket.symbols import market_tokens
from ssmd.connectors.registry import create


def test_kraken_futures_requests() -> None:
    s = create("kraken-futures", {"channels": ("ticker", "book")}).new_session(0)
    assert orjson.loads(s.on_open()[0]) == {"event": "subscribe", "feed": "heartbeat"}
    reqs = [orjson.loads(m) for m in s.subscribe(["PF_XBTUSD", "PI_XBTUSD"])]
    assert reqs == [
        {"event": "subscribe", "feed": "ticker", "product_ids": ["PF_XBTUSD", "PI_XBTUSD"]},
        {"event": "subscribe", "feed": "book", "product_ids": ["PF_XBTUSD", "PI_XBTUSD"]},
    ]
    assert [orjson.loads(m)["event"] for m in s.resync(["PF_XBTUSD"])] == [
        "unsubscribe",
        "subscribe",
    ]
    assert s.ping() is None  # a WebSocket protocol Ping
    (ev,), _ = s.on_control(
        "subscribed", b'{"event":"subscribed","feed":"ticker","product_ids":["PF_XBTUSD"]}'
    )
    assert (ev.kind, ev.instruments, ev.channel) == ("subscribed", ("PF_XBTUSD",), "ticker")
    (ev,), _ = s.on_control(
        "alert", b'{"event":"alert","message":"Couldn\'t subscribe to invalid feed"}'
    )
    assert ev.kind == "error" and "invalid feed" in ev.message
    assert create("kraken-futures").channels == ("ticker", "trade")


def test_polymarket_initial_then_operations() -> None:
    s = create("polymarket").new_session(0)
    first, later = (orjson.loads(s.subscribe([t])[0]) for t in ("1", "2"))
    assert first == {"assets_ids": ["1"], "type": "market", "custom_feature_enabled": True}
    assert later == {"assets_ids": ["2"], "operation": "subscribe", "custom_feature_enabled": True}
    assert orjson.loads(s.unsubscribe(["1"])[0]) == {
        "assets_ids": ["1"],
        "operation": "unsubscribe",
    }
    assert s.ping() == b"PING"
    (ev,), _ = s.on_control("pong", b"PONG")
    assert ev.kind == "pong"
    plain = create("polymarket", {"channels": ("book", "price_change")}).new_session(0)
    assert "custom_feature_enabled" not in orjson.loads(plain.subscribe(["1"])[0])


def test_polymarket_tokens_of_gamma_and_clob_markets() -> None:
    gamma = {"conditionId": "0xab", "clobTokenIds": '["11", "22"]'}
    assert market_tokens(gamma) == ("0xab", ["11", "22"])
    clob = {"condition_id": "0xcd", "tokens": [{"token_id": "33"}, {"token_id": "44"}]}
    assert market_tokens(clob) == ("0xcd", ["33", "44"])
    c = create("polymarket")
    c.resolution.subject_ids["11"] = "0xab"
    assert c.subject_id("11") == "0xab" and c.subject_id("99") == "99"
