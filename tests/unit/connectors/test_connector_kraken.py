"""Kraken spot: request shapes, ack interpretation, v1 → v2 symbols."""

from __future__ import annotations

import orjson
import pytest

from ssmd.connectors.base import InstrumentQuery
from ssmd.connectors.kraken.symbols import pairs_from_rest
from ssmd.connectors.registry import create
from ssmd.errors import ConfigError
from ssmd.secmaster.symbols import kraken_root, kraken_v2_symbol
from ssmd.secmaster.sync.kraken import PAIRS, spot_row


def _session(**cfg: object):  # type: ignore[no-untyped-def]
    return create("kraken", cfg).new_session(0)


def test_subscribe_one_request_per_channel_with_all_symbols() -> None:
    s = _session()
    reqs = [orjson.loads(m) for m in s.subscribe(["BTC/USD", "ETH/USD"])]
    assert [r["params"]["channel"] for r in reqs] == ["ticker", "trade", "book"]
    ticker, trade, book = reqs
    assert ticker["params"] == {
        "channel": "ticker",
        "symbol": ["BTC/USD", "ETH/USD"],
        "event_trigger": "bbo",
    }
    assert trade["params"] == {"channel": "trade", "symbol": ["BTC/USD", "ETH/USD"]}
    assert book["params"]["depth"] == 10
    assert [r["req_id"] for r in reqs] == [1, 2, 3]
    assert all(r["method"] == "subscribe" for r in reqs)


def test_requests_are_chunked_and_channels_narrow() -> None:
    s = _session(symbols_per_request=2, channels=("book",))
    reqs = [orjson.loads(m) for m in s.subscribe(["A/USD", "B/USD", "C/USD"])]
    assert [r["params"]["symbol"] for r in reqs] == [["A/USD", "B/USD"], ["C/USD"]]
    unsub = [orjson.loads(m) for m in s.unsubscribe(["A/USD"])]
    assert unsub[0]["method"] == "unsubscribe" and unsub[0]["params"]["depth"] == 10


def test_resync_resubscribes_only_that_book() -> None:
    s = _session()
    reqs = [orjson.loads(m) for m in s.resync(["BTC/USD"])]
    assert [(r["method"], r["params"]["channel"], r["params"]["symbol"]) for r in reqs] == [
        ("unsubscribe", "book", ["BTC/USD"]),
        ("subscribe", "book", ["BTC/USD"]),
    ]
    assert _session(channels=("ticker",)).resync(["BTC/USD"]) == []


def test_acks_errors_and_pong() -> None:
    s = _session()
    ack = b'{"method":"subscribe","result":{"channel":"book","depth":10,"symbol":"ALGO/USD"},"success":true}'
    (ev,), out = s.on_control("subscribe", ack)
    assert (ev.kind, ev.instruments, ev.channel, out) == ("subscribed", ("ALGO/USD",), "book", [])
    err = b'{"error":"Currency pair not supported XBT/USD","method":"subscribe","success":false,"symbol":"XBT/USD"}'
    (ev,), _ = s.on_control("error", err)
    assert ev.kind == "error" and ev.instruments == ("XBT/USD",)
    assert "not supported" in ev.message
    (ev,), _ = s.on_control("pong", b'{"method":"pong","req_id":3}')
    assert ev.kind == "pong"
    assert s.on_control("heartbeat", b'{"channel":"heartbeat"}') == ([], [])
    assert orjson.loads(s.ping() or b"")["method"] == "ping"


def test_v1_names_map_to_v2() -> None:
    assert kraken_v2_symbol("XBT/USD") == "BTC/USD"
    assert kraken_v2_symbol("XDG/XBT") == "DOGE/BTC"
    assert kraken_v2_symbol("ETH/USD") == "ETH/USD"
    assert kraken_root("https://api.kraken.com/0/public/") == "https://api.kraken.com/0"
    body = {
        "error": [],
        "result": {
            "XXBTZUSD": {
                "altname": "XBTUSD",
                "wsname": "XBT/USD",
                "pair_decimals": 1,
                "lot_decimals": 8,
            },
            "NOWS": {"altname": "NOWS"},
        },
    }
    pairs = pairs_from_rest(body)
    assert list(pairs) == ["BTC/USD"] and pairs["BTC/USD"]["key"] == "XXBTZUSD"
    # the secmaster sync stores the symbol the connector subscribes
    row = spot_row("XXBTZUSD", body["result"]["XXBTZUSD"])  # type: ignore[index]
    assert row[PAIRS.columns.index("symbol")] == "BTC/USD"
    with pytest.raises(ConfigError, match="EQuery"):
        pairs_from_rest({"error": ["EQuery:Unknown asset pair"], "result": {}})


def test_config_rejects_unknown_keys_and_channels() -> None:
    with pytest.raises(ConfigError, match="unknown KrakenConfig setting"):
        create("kraken", {"bogus": 1})
    with pytest.raises(ConfigError, match="unknown channel"):
        create("kraken", {"channels": ("ohlc",)})
    assert InstrumentQuery().empty
