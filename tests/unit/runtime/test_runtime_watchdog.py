"""Stall detection: busy keys flagged within the bound, quiet keys never."""

from __future__ import annotations

import pytest

from ssmd.runtime.watchdog import CONNECTION, ActivityTracker


def feed(t: ActivityTracker, key: str, rate: float, start: float, end: float) -> float:
    """Messages of ``key`` at ``rate``/s from ``start`` to ``end``; returns the last time."""
    step = 1.0 / rate
    now = start
    while now < end:
        t.seen(key, 1, now)
        now += step
    return now - step


def test_busy_key_is_flagged_within_the_bound_once() -> None:
    t = ActivityTracker(bound=10.0)
    last = feed(t, "BTC_USD", 20.0, 0.0, 120.0)
    assert t.rate("BTC_USD") == pytest.approx(20.0, rel=0.05)
    assert t.check(last + 9.9) == []
    stalls = t.check(last + 10.0)
    assert [s.key for s in stalls] == ["BTC_USD"]
    assert stalls[0].silent == pytest.approx(10.0) and not stalls[0].whole_connection
    assert t.check(last + 30) == []  # once per silence...
    assert [s.key for s in t.check(last + 70)] == ["BTC_USD"]  # ...and again after 6 bounds
    t.seen("BTC_USD", 1, last + 71)
    feed(t, "BTC_USD", 20.0, last + 71, last + 100)
    assert [s.key for s in t.check(last + 115)] == ["BTC_USD"]  # a new silence


def test_quiet_keys_are_never_flagged() -> None:
    t = ActivityTracker(bound=10.0)
    feed(t, "QUIET", 0.05, 0.0, 3600.0)  # one message every 20 s
    assert t.check(3600 + 3600) == []
    t.seen("ONCE", 1, 0.0)
    assert t.check(10_000.0) == []


def test_a_burst_is_not_a_rate() -> None:
    t = ActivityTracker(bound=10.0)
    for i in range(50):  # 5000 snapshot messages within half a second
        t.seen("BOOKS", 100, i * 0.01)
    assert t.rate("BOOKS") > 100
    assert t.check(30.0) == []
    feed(t, "BOOKS", 20.0, 30.0, 40.0)  # then a steady flow: judged
    assert [s.key for s in t.check(50.0)] == ["BOOKS"]


def test_slower_keys_are_flagged_later_in_proportion_to_their_rate() -> None:
    t = ActivityTracker(bound=10.0, min_expected=10.0)
    last = feed(t, "SLOW", 0.5, 0.0, 600.0)  # 10 expected messages take 20 s
    assert t.check(last + 15) == []
    assert [s.key for s in t.check(last + 21)] == ["SLOW"]


def test_connection_key_forget_and_restart() -> None:
    t = ActivityTracker(bound=1.0)
    last = feed(t, CONNECTION, 100.0, 0.0, 10.0)
    feed(t, "X", 100.0, 0.0, 10.0)
    t.forget("X")
    assert len(t) == 1
    t.restart(last + 5)  # resubscribed: silence counts from now
    assert t.check(last + 5.5) == []
    stalls = t.check(last + 6.1)
    assert [s.whole_connection for s in stalls] == [True]
    t.restart(last + 6.2)  # reconnected, still silent: not flagged again at once
    assert t.check(last + 7.5) == []


def test_bound_must_be_positive() -> None:
    with pytest.raises(ValueError):
        ActivityTracker(bound=0)
