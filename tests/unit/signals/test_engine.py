"""The engine over real envelope lines: built-ins in Rust vs their Python evaluate,
dollar volume per venue at the window edges, chunking, errors in user code."""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from typing import Any, ClassVar

import pytest

from signal_helpers import (
    T0,
    S,
    chunked,
    futures_trade,
    kalshi_lifecycle,
    kalshi_ticker,
    kalshi_trade,
    kraken_ticker,
    kraken_trade,
    lines,
    polymarket_bba,
    polymarket_trade,
)
from ssmd.signals import (
    Builder,
    Fire,
    Lifecycle,
    Param,
    Signal,
    SignalRun,
    SignalState,
    Spread,
    VolumeProfile,
    find_signal,
)


def mixed_trades(n: int, seed: int = 7) -> bytes:
    """Trades of every venue, several instruments each, in rx order per connection."""
    rng = random.Random(seed)
    out = bytearray()
    k, p, kr, f = [], [], [], []
    for i in range(n):
        rx = T0 + i * S // 20
        size = rng.choice(["50000.00", "120000.00", "300000.00", "10.00"])
        k.append(
            (
                rx,
                kalshi_trade(
                    f"KX-{i % 4}", f"0.{rng.randint(10, 90)}00", size, rng.choice(["yes", "no"]), i
                ),
            )
        )
        p.append(
            (
                rx,
                polymarket_trade(
                    str(1000 + i % 3),
                    "0xabc",
                    f"0.{rng.randint(10, 99)}",
                    str(rng.randint(1, 900_000)),
                ),
            )
        )
        kr.append(
            (
                rx,
                kraken_trade(
                    rng.choice(["BTC/USD", "BTC/EUR"]), "84000.5", f"{rng.randint(1, 400)}.125"
                ),
            )
        )
        f.append(
            (
                rx,
                futures_trade(
                    rng.choice(["PF_XBTUSD", "PI_XBTUSD"]),
                    "84000",
                    str(rng.randint(1, 900_000)),
                    i + 1,
                ),
            )
        )
    out += lines("kalshi", k, "k1")
    out += lines("polymarket", p, "p1")
    out += lines("kraken", kr, "r1")
    out += lines("kraken-futures", f, "f1")
    return bytes(out)


def run_all(run: SignalRun, data: bytes, chunk_lines: int | None = None) -> list[Fire]:
    if chunk_lines is None:
        return run.process(data)
    rng = random.Random(chunk_lines)
    out: list[Fire] = []
    for c in chunked(data, rng, chunk_lines):
        out += run.process(c)
    return out


@pytest.mark.parametrize("signal", ["volume-1m-1min", "volume-1m-5min"])
def test_volume_builtins_rust_rule_equals_python_evaluate(signal: str) -> None:
    data = mixed_trades(3000)
    sig = find_signal(signal).make()
    native = SignalRun(sig)
    python = SignalRun(sig, python=True)
    assert native.native and not python.native
    a, b = run_all(native, data), run_all(python, data)
    assert len(a) >= 4, a
    assert {f.venue for f in a} == {"kalshi", "polymarket", "kraken", "kraken-futures"}
    assert [f.body() for f in a] == [f.body() for f in b]
    assert [f.msg_id for f in a] == [f.msg_id for f in b]
    assert native.counters() == python.counters()
    assert native.counters()["not_usd"] > 0  # BTC/EUR trades: counted, no dollars


def test_price_jump_and_lifecycle_rust_rule_equals_python_evaluate() -> None:
    rng = random.Random(3)
    quotes_k, quotes_r, quotes_p = [], [], []
    for i in range(2000):
        rx = T0 + i * S // 4
        b = rng.randint(20, 80)
        quotes_k.append((rx, kalshi_ticker(f"KX-{i % 3}", f"0.{b:02d}00", f"0.{b + 2:02d}00")))
        px = 3000 + rng.randint(-200, 200)
        quotes_r.append((rx, kraken_ticker("ETH/USD", f"{px}.5", f"{px + 1}.5")))
        quotes_p.append((rx, polymarket_bba("77", "0xdef", f"0.{b:02d}", f"0.{b + 1:02d}")))
    data = lines("kalshi", quotes_k) + lines("kraken", quotes_r) + lines("polymarket", quotes_p)
    sig = find_signal("price-jump").make({"threshold": "0.1", "window": "30s"})
    a = run_all(SignalRun(sig), data, 50)
    b = run_all(SignalRun(sig, python=True), data, 50)
    assert len(a) > 10
    assert [f.body() for f in a] == [f.body() for f in b]

    events = [
        "created",
        "activated",
        "deactivated",
        "activated",
        "close_date_updated",
        "determined",
        "settled",
    ]
    lc = lines("kalshi", [(T0 + i, kalshi_lifecycle("KX-L", e)) for i, e in enumerate(events)])
    for phases, expect in [
        ("open,close,settle", ["activated", "deactivated", "activated", "determined", "settled"]),
        ("settle", ["determined", "settled"]),
    ]:
        sig = find_signal("lifecycle").make({"phases": phases})
        a = run_all(SignalRun(sig), lc, 2)
        b = run_all(SignalRun(sig, python=True), lc, 3)
        assert [f.payload["event"] for f in a] == expect
        assert [f.body() for f in a] == [f.body() for f in b]


class Dollars(Signal):
    id = "dollars"
    name = "dollar volume over 10 s"
    params: ClassVar[Mapping[str, Param]] = {"threshold": Param(float, 1000.0)}
    requires: ClassVar[Mapping[str, Builder]] = {"volume": VolumeProfile(window="10s")}

    def evaluate(self, state: SignalState) -> bool:
        return bool(state.volume.dollar_volume >= self.threshold)


def test_fires_do_not_depend_on_chunk_boundaries() -> None:
    data = mixed_trades(2000, seed=11)
    sig = Dollars(threshold=3e6)
    whole = run_all(SignalRun(sig), data)
    assert len(whole) > 20
    for n in (1, 3, 17, 500):
        assert run_all(SignalRun(sig), data, n) == whole, n


@pytest.mark.parametrize(
    ("venue", "frame", "dollars"),
    [
        # Kalshi: contracts x the YES price, whatever the taker side
        ("kalshi", lambda i: kalshi_trade("KX", "0.2500", "1000.00", "no", i), 250.0),
        ("polymarket", lambda i: polymarket_trade("9", "0xa", "0.5", "500", "SELL"), 250.0),
        ("kraken", lambda i: kraken_trade("BTC/USD", "100.5", "2", "sell"), 201.0),
        ("kraken-futures", lambda i: futures_trade("PF_XBTUSD", "50", "5", i), 250.0),
        # inverse contracts are sized in USD already
        ("kraken-futures", lambda i: futures_trade("PI_XBTUSD", "84000", "250", i), 250.0),
    ],
)
def test_dollar_volume_per_venue_at_the_window_edges(
    venue: str, frame: Any, dollars: float
) -> None:
    def trades(*at: int) -> bytes:
        return lines(venue, [(T0 + d, frame(i + 1)) for i, d in enumerate(at)])

    # five trades; the fifth exactly 10 s after the first, which has just left the window
    edge = trades(0, 2 * S, 4 * S, 6 * S, 10 * S)
    assert SignalRun(Dollars(threshold=dollars * 5)).process(edge) == []
    four = SignalRun(Dollars(threshold=dollars * 4)).process(edge)
    assert [f.rx for f in four] == [T0 + 6 * S]
    assert four[0].payload["dollar_volume"] == dollars * 4
    assert four[0].payload["trades"] == 4
    # one nanosecond earlier the first trade still counts
    early = trades(0, 2 * S, 4 * S, 6 * S, 10 * S - 1)
    five = SignalRun(Dollars(threshold=dollars * 5)).process(early)
    assert [f.rx for f in five] == [T0 + 10 * S - 1]
    assert five[0].payload["dollar_volume"] == dollars * 5


class Flaky(Signal):
    id = "flaky"
    name = "raises for one instrument"
    requires: ClassVar[Mapping[str, Builder]] = {"volume": VolumeProfile(window="1m")}

    def evaluate(self, state: SignalState) -> bool:
        if state.instrument == "KX-1":
            raise ValueError("no good")
        return state.volume.trades >= 1  # type: ignore[no-any-return]


def test_errors_in_evaluate_are_counted_per_instrument_and_the_run_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    data = lines(
        "kalshi",
        [(T0 + i, kalshi_trade(f"KX-{i % 2}", "0.5000", "1.00", seq=i + 1)) for i in range(10)],
    )
    run = SignalRun(Flaky())
    with caplog.at_level(logging.WARNING, "ssmd.signals"):
        fires = run.process(data)
    assert [f.instrument for f in fires] == ["KX-0"]
    assert run.errors[("kalshi", "KX-1")] == 5
    assert run.counters()["errors"] == 5
    assert "test_engine.py:" in run.first_error[("kalshi", "KX-1")]
    assert "ValueError: no good" in run.first_error[("kalshi", "KX-1")]
    assert len([r for r in caplog.records if "KX-1" in r.getMessage()]) == 1


def test_a_payload_that_is_not_a_dict_is_an_error_and_interrupts_propagate() -> None:
    class BadPayload(Flaky):
        def evaluate(self, state: SignalState) -> bool:
            return True

        def payload(self, state: SignalState) -> Any:
            return [1]

    data = lines("kalshi", [(T0, kalshi_trade("KX-0", "0.5000", "1.00"))])
    run = SignalRun(BadPayload())
    assert run.process(data) == []
    assert "payload() must return a dict, not list" in run.first_error[("kalshi", "KX-0")]

    class Interrupted(Flaky):
        def evaluate(self, state: SignalState) -> bool:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        SignalRun(Interrupted()).process(data)


def test_state_views() -> None:
    seen: list[Any] = []

    class Look(Flaky):
        def evaluate(self, state: SignalState) -> bool:
            seen.append(
                (
                    state.venue,
                    state.instrument,
                    state.rx,
                    state.ts,
                    state.record,
                    state.volume.as_dict(),
                )
            )
            with pytest.raises(AttributeError, match="declared no builder 'price'"):
                state.price  # noqa: B018
            with pytest.raises(AttributeError, match="volume_profile has no field 'nope'"):
                state.volume.nope  # noqa: B018
            return False

    SignalRun(Look()).process(
        lines("kalshi", [(T0, kalshi_trade("KX-9", "0.4000", "10.00", "no"))])
    )
    venue, inst, rx, ts, record, view = seen[0]
    assert (venue, inst, rx, ts, record) == (
        "kalshi",
        "KX-9",
        T0,
        1_790_000_000_000_000_000,
        "trade",
    )
    assert view == {
        "window": 60.0,
        "dollar_volume": 4.0,
        "contracts": 10.0,
        "trades": 1,
        "buy_contracts": 0.0,
        "sell_contracts": 10.0,
        "buy_sell_ratio": 0.0,
        "avg_trade_size": 10.0,
        "last_price": 0.4,
        "unpriced": 0,
    }


class Views(Signal):
    """Records every builder's view at every record."""

    id = "views"
    name = "records the spread and lifecycle views"
    requires: ClassVar[Mapping[str, Builder]] = {
        "spread": Spread(window="10s"),
        "life": Lifecycle(),
    }
    seen: ClassVar[list[tuple[int, str, dict[str, Any], dict[str, Any]]]] = []

    def evaluate(self, state: SignalState) -> bool:
        Views.seen.append((state.rx, state.record, state.spread.as_dict(), state.life.as_dict()))
        return False


def test_spread_builder_values_over_its_window() -> None:
    Views.seen.clear()
    quotes = [
        (T0, kraken_ticker("ETH/USD", "3000.5", "3001.5")),
        (T0 + 4 * S, kraken_ticker("ETH/USD", "3000", "3004")),
        # 12 s: the first quote (12 s old) has left the 10 s window, the second has not
        (T0 + 12 * S, kraken_ticker("ETH/USD", "2999", "3001")),
        (T0 + 22 * S, kraken_ticker("ETH/USD", "2999", "3001")),  # exactly 10 s after
    ]
    SignalRun(Views()).process(lines("kraken", quotes))
    got = [(rx - T0, view) for rx, record, view, _ in Views.seen if record == "quote"]
    assert [rx for rx, _ in got] == [0, 4 * S, 12 * S, 22 * S]
    first, second, third, fourth = (v for _, v in got)
    assert first == {
        "window": 10.0,
        "bid": 3000.5,
        "ask": 3001.5,
        "bid_size": 1.0,
        "ask_size": 1.0,
        "spread": 1.0,
        "spread_pct": pytest.approx(1.0 / 3001.0),
        "avg_spread": 1.0,
        "quotes": 1,
    }
    assert (second["spread"], second["avg_spread"], second["quotes"]) == (4.0, 2.5, 2)
    assert second["spread_pct"] == pytest.approx(4.0 / 3002.0)
    assert (third["bid"], third["ask"], third["spread"]) == (2999.0, 3001.0, 2.0)
    assert (third["avg_spread"], third["quotes"]) == (3.0, 2)  # (4 + 2) / 2
    assert third["spread_pct"] == pytest.approx(2.0 / 3000.0)
    # 10 s after the third quote it has left too: the window is (rx - 10 s, rx]
    assert (fourth["avg_spread"], fourth["quotes"]) == (2.0, 1)


def test_lifecycle_builder_changed_rx_follows_the_phase() -> None:
    Views.seen.clear()
    events = ["created", "close_date_updated", "activated", "activated", "deactivated"]
    lc = [(T0 + i * S, kalshi_lifecycle("KX-L", e)) for i, e in enumerate(events)]
    SignalRun(Views()).process(lines("kalshi", lc))
    got = [(v["event"], v["phase"], v["rx"], v["changed_rx"], v["events"]) for *_, v in Views.seen]
    assert got == [
        ("created", "other", T0, T0, 1),
        ("close_date_updated", "other", T0 + S, T0, 2),  # same phase: unchanged
        ("activated", "open", T0 + 2 * S, T0 + 2 * S, 3),
        ("activated", "open", T0 + 3 * S, T0 + 2 * S, 4),
        ("deactivated", "close", T0 + 4 * S, T0 + 4 * S, 5),
    ]
