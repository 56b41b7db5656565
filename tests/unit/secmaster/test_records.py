"""Venue records to rows: field readers, volatile keys, per-venue mapping (no database)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from secmaster_venues import offline
from ssmd.secmaster.sync import base
from ssmd.secmaster.sync.base import BadRecord, Volatile, opt_dec, opt_ts, parse_ts, req_str
from ssmd.secmaster.sync.kalshi import MARKETS, market_row
from ssmd.secmaster.sync.kraken import PAIRS, perpetual_row, spot_row
from ssmd.secmaster.sync.polymarket import CONDITIONS, TOKENS, market_rows

UTC = dt.timezone.utc


@pytest.mark.parametrize("fast", [True, False])
def test_parse_ts_rfc3339_forms(monkeypatch: pytest.MonkeyPatch, fast: bool) -> None:
    monkeypatch.setattr(base, "_FAST_ISO", fast)  # False: the Python 3.10 path
    want = dt.datetime(2026, 7, 18, 21, 1, 12, 331402, tzinfo=UTC)
    assert parse_ts("2026-07-18T21:01:12.331402Z") == want
    assert parse_ts("2026-07-18T21:01:12.331402123Z") == want  # nanoseconds cut
    assert parse_ts("2026-07-18T23:01:12.331402+02:00") == want
    assert parse_ts("2026-01-30") == dt.datetime(2026, 1, 30, tzinfo=UTC)
    assert parse_ts("2026-01-30T21:00:00").tzinfo is not None
    with pytest.raises(ValueError):
        parse_ts("yesterday")


def test_field_readers_reject_wrong_types() -> None:
    assert opt_dec({"x": "0.0100"}, "x") == Decimal("0.0100")
    assert opt_dec({"x": 118499.99}, "x") == Decimal("118499.99")
    assert opt_dec({"x": ""}, "x") is None and opt_ts({"t": ""}, "t") is None
    for rec, fn, key in (
        ({"x": True}, opt_dec, "x"),
        ({"x": "NaN"}, opt_dec, "x"),
        ({"x": "lots"}, opt_dec, "x"),
        ({"t": 1752958800}, opt_ts, "t"),
        ({"t": "soon"}, opt_ts, "t"),
        ({"k": 5}, req_str, "k"),
        ({}, req_str, "k"),
    ):
        with pytest.raises(BadRecord, match=key):
            fn(rec, key)  # type: ignore[operator]


def test_volatile_keys_are_dropped_and_remembered() -> None:
    v = Volatile(r"^(volume|yes_bid)")
    rec = {"ticker": "A", "volume_fp": "1", "yes_bid_dollars": "0.4", "title": "t"}
    assert v.strip(rec) == {"ticker": "A", "title": "t"}
    assert rec["volume_fp"] == "1"  # the record itself is left alone
    clean = {"ticker": "B"}
    assert v.strip(clean) is clean


KALSHI = offline("kalshi")
KRAKEN = offline("kraken")
FUTURES = offline("kraken-futures")
POLYMARKET = offline("polymarket")


def kalshi_market() -> dict[str, object]:
    return dict(KALSHI.market_json(KALSHI.markets[0]))


def kraken_perpetual() -> dict[str, object]:
    return dict(FUTURES.instrument(FUTURES.by_symbol["PF_XBTUSD"]))


def polymarket_market(i: int) -> dict[str, object]:
    return dict(POLYMARKET.gamma_market(POLYMARKET.conditions[i]))


def test_kalshi_market_row() -> None:
    m = KALSHI.markets[0]
    row = dict(zip(MARKETS.columns, market_row(kalshi_market()), strict=True))
    assert row["ticker"] == m.ticker and row["status"] == "active"
    assert row["tick_size"] == Decimal("0.0100") and row["floor_strike"] == Decimal(str(m.strike))
    assert row["close_time"] == dt.datetime(2026, 12, 31, 21, tzinfo=UTC)
    assert "yes_bid" not in row["raw"] and "rules_primary" in row["raw"]
    legacy = kalshi_market()
    del legacy["price_ranges"]
    legacy["tick_size"] = 1  # deprecated cents
    assert market_row(legacy)[MARKETS.columns.index("tick_size")] == Decimal("0.01")


def test_kraken_rows() -> None:
    btc = KRAKEN.by_symbol["BTC/USD"]
    row = dict(zip(PAIRS.columns, spot_row(btc.key, KRAKEN.asset_pair(btc)), strict=True))
    assert (row["pair"], row["symbol"], row["base"], row["quote"]) == (
        "XXBTZUSD",
        "BTC/USD",
        "BTC",
        "USD",
    )
    perp = dict(zip(PAIRS.columns, perpetual_row(kraken_perpetual(), set()), strict=True))
    assert (perp["pair"], perp["market_type"], perp["status"]) == (
        "PF_XBTUSD",
        "perpetual",
        "online",
    )
    lower = kraken_perpetual() | {"symbol": "pf_xbtusd", "postOnly": True}
    assert perpetual_row(lower, set())[0] == "PF_XBTUSD"
    assert perpetual_row(lower, set())[PAIRS.columns.index("status")] == "post_only"
    assert perpetual_row(kraken_perpetual(), {"PF_XBTUSD"})[7] == "suspended"


def test_polymarket_rows_accept_plain_arrays_and_derive_status() -> None:
    m = polymarket_market(3)
    m["outcomes"] = ["Yes", "No"]
    m["clobTokenIds"] = ["11", "22"]
    cond, toks = market_rows(m)
    row = dict(zip(CONDITIONS.columns, cond, strict=True))
    assert row["status"] == "active" and row["category"] == POLYMARKET.conditions[3].category
    assert [dict(zip(TOKENS.columns, t, strict=True))["outcome"] for t in toks] == ["Yes", "No"]
    assert "bestBid" not in row["raw"] and '"volume"' not in row["raw"]
    for change, status in (
        ({"closed": True}, "closed"),
        ({"closed": True, "umaResolutionStatus": "resolved"}, "settled"),
        ({"active": False}, "inactive"),
        ({"acceptingOrders": False}, "suspended"),
    ):
        assert (
            market_rows(polymarket_market(1) | change)[0][CONDITIONS.columns.index("status")]
            == status
        )


def test_a_record_of_unexpected_shape_is_skipped(caplog: pytest.LogCaptureFixture) -> None:
    writer = base.Writer(None, base.SyncResult("kalshi"))

    def to_row(rec: dict[str, object]) -> tuple[object, ...]:
        return (rec["ticker"], rec["nested"]["x"])  # type: ignore[index]

    recs = [{"ticker": "A", "nested": {"x": 1}}, {"ticker": "B", "nested": 3}, {"ticker": "C"}]
    rows = writer.parse("markets", "market", recs, to_row, ("ticker",))
    assert rows == [("A", 1)]
    stats = writer.result.tables["markets"]
    assert (stats.fetched, stats.skipped) == (3, 2)
    assert "market B skipped: unexpected shape (TypeError" in caplog.text
    assert "market C skipped: unexpected shape (KeyError" in caplog.text


def test_settings_urls_rates_and_env() -> None:
    from ssmd.errors import ConfigError
    from ssmd.secmaster.config import SecmasterSettings

    s = SecmasterSettings.load(
        {"SSMD_KRAKEN_REST_URL": "http://h:1/0/public/", "SSMD_KALSHI_RATE": "3"}
    )
    assert s.api("kraken").base_url == "http://h:1/0"  # /public accepted, as by the connector
    assert s.api("kalshi").rate == 3.0
    assert s.api("kalshi").base_url == "https://api.elections.kalshi.com/trade-api/v2"
    assert s.database_url is None
    flags = SecmasterSettings.load(
        {"DATABASE_URL": "postgresql://env/db"},
        database_url="postgresql://flag/db",
        urls={"polymarket": "http://sim:9/"},
    )
    assert flags.database_url == "postgresql://flag/db"
    assert flags.api("polymarket").base_url == "http://sim:9"
    with pytest.raises(ConfigError, match="SSMD_KRAKEN_RATE"):
        SecmasterSettings.load({"SSMD_KRAKEN_RATE": "fast"})
