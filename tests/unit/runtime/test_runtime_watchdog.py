"""Stall detection: busy keys flagged within the bound, quiet keys never."""

from __future__ import annotations

import pytest

from ssmd.runtime.stats import ConnectionStats
from ssmd.runtime.watchdog import CONNECTION, HEARTBEAT, ActivityTracker


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


# -- silences soon after a subscription (reported once a tick, as the supervisor does) --


def ticks(t: ActivityTracker, key: str, per_tick: int, start: float, end: float) -> float:
    """``per_tick`` messages of ``key`` reported once a second in ``[start, end]``; the last time."""
    now = start
    while now <= end + 1e-9:
        t.seen(key, per_tick, now)
        now += 1.0
    return now - 1.0


@pytest.mark.parametrize("silent_after", [2.0, 6.0, 30.0])
def test_a_busy_key_silent_soon_after_its_subscription_is_flagged_within_the_bound(
    silent_after: float,
) -> None:
    t = ActivityTracker(bound=10.0)
    t.watch("PF_XBTUSD", 0.0)
    last = ticks(t, "PF_XBTUSD", 50, 1.0, silent_after)  # 50 msg/s, reported each second
    assert t.rate("PF_XBTUSD") == pytest.approx(50.0, rel=0.05)
    assert t.check(last + 9.9) == []
    (stall,) = t.check(last + 10.0)
    assert stall.key == "PF_XBTUSD" and stall.basis == "rate"


def test_slow_but_busy_keys_soon_after_subscription_are_judged_by_what_was_observed() -> None:
    t = ActivityTracker(bound=10.0)
    t.watch("SLOW", 0.0)
    last = ticks(t, "SLOW", 2, 1.0, 6.0)  # 2 msg/s for 5 s: 10 expected messages take 5 s
    assert t.rate("SLOW") == pytest.approx(2.0, rel=0.05)
    assert [s.key for s in t.check(last + 10.0)] == ["SLOW"]


def test_a_snapshot_and_a_few_updates_are_not_a_rate() -> None:
    t = ActivityTracker(bound=10.0)
    for key in ("A", "B"):
        t.watch(key, 0.0)
        t.seen(key, 3, 0.05)  # the subscription's snapshots
    t.seen("A", 1, 1.5)  # one update: a quiet market
    for i in range(4):  # four updates over two seconds: still too little to call it busy
        t.seen("B", 1, 0.5 + i * 0.5)
    for now in (12.0, 60.0, 600.0, 3600.0):
        assert t.check(now) == []


def test_a_cadenced_key_is_held_to_its_cadence_from_the_subscription() -> None:
    t = ActivityTracker(bound=10.0)
    t.watch("NEVER", 0.0, cadence=1.0)  # acknowledged, never delivers
    t.watch("SNAP", 0.0, cadence=1.0)
    t.seen("SNAP", 2, 0.1)  # a snapshot, then silence
    t.watch("QUIET", 0.0)  # no cadence promised: never judged without a rate
    assert t.check(9.9) == []
    assert [(s.key, s.basis) for s in t.check(10.0)] == [("NEVER", "cadence")]
    (snap,) = t.check(10.1)
    assert (snap.key, snap.basis, snap.rate) == ("SNAP", "cadence", 1.0)
    later = [s.key for now in (100.0, 1000.0, 3600.0) for s in t.check(now)]
    assert sorted(later) == [
        "NEVER",
        "NEVER",
        "NEVER",
        "SNAP",
        "SNAP",
        "SNAP",
    ]  # retried, QUIET never


def test_a_slow_cadence_is_given_three_intervals() -> None:
    t = ActivityTracker(bound=10.0)
    t.watch(HEARTBEAT, 0.0, cadence=5.0)
    t.seen(HEARTBEAT, 1, 4.0)
    assert t.check(18.9) == []
    (stall,) = t.check(19.0)
    assert stall.whole_connection and stall.basis == "heartbeat"


def test_heartbeats_are_judged_by_cadence_only() -> None:
    t = ActivityTracker(bound=10.0)
    t.watch(HEARTBEAT, 0.0, cadence=5.0)
    last = ticks(t, HEARTBEAT, 1, 1.0, 100.0)  # reported once a tick: not a rate to hold it to
    assert t.check(last + 14.9) == []
    assert [s.basis for s in t.check(last + 15.0)] == ["heartbeat"]


def test_the_clock_restarts_with_a_reconnect_and_a_redrive() -> None:
    t = ActivityTracker(bound=10.0)
    t.watch("X", 0.0)
    last = ticks(t, "X", 50, 1.0, 20.0)
    t.restart(last + 3.0)  # reconnected; the venue acknowledges and then sends nothing
    assert t.check(last + 12.9) == []
    assert [s.key for s in t.check(last + 13.0)] == ["X"]
    t.watch("X", last + 13.5)  # redriven: a new subscription
    resumed = ticks(t, "X", 50, last + 14.0, last + 16.0)  # data for 2 s, then silence again
    assert t.check(resumed + 9.9) == []
    assert [s.key for s in t.check(resumed + 10.0)] == ["X"]


def test_the_connection_key_needs_half_a_bound_of_data() -> None:
    t = ActivityTracker(bound=10.0)
    ticks(t, CONNECTION, 5000, 1.0, 3.0)  # a burst of snapshots over three ticks
    assert t.check(60.0) == []
    last = ticks(t, CONNECTION, 100, 61.0, 70.0)
    assert [s.whole_connection for s in t.check(last + 10.0)] == [True]


def test_a_snapshot_answering_a_redrive_does_not_reset_the_retry_interval() -> None:
    t = ActivityTracker(bound=10.0)
    t.watch("X", 0.0)
    last = ticks(t, "X", 50, 1.0, 20.0)
    assert [s.key for s in t.check(last + 10.0)] == ["X"]
    t.watch("X", last + 10.5)  # redriven: the venue answers with a snapshot, then nothing
    t.seen("X", 1, last + 10.6)
    assert t.check(last + 25.0) == [] and t.check(last + 69.9) == []
    assert [s.key for s in t.check(last + 70.0)] == ["X"]  # retried after max_factor bounds


def test_the_snapshots_after_a_reconnect_are_not_a_rate() -> None:
    """200 quiet markets, one update every 30 s between them: quiet before a reconnect and
    after it. The 200 snapshots that answer the reconnect (over two ticks) are no rate,
    neither for the markets nor for the connection, so nothing is flagged and the
    connection is not reconnected again and again."""
    t = ActivityTracker(bound=10.0)
    stats = ConnectionStats("kalshi", "c1", None)
    keys = [f"M{i}" for i in range(200)]

    def report(now: float, which: list[str]) -> None:
        subjects = [(f"prod.kalshi.crypto.json.orderbook_snapshot.{k}", 1, 100) for k in which]
        stats.account(None, subjects, now)  # type: ignore[arg-type]  # no metrics: no lag
        stats.settle(t, set(keys), {})

    def run(start: float, end: float) -> list[str]:
        flagged = []
        now = start
        while now < end:
            if int(now) % 30 == 0:
                report(now, [keys[int(now) // 30 % 200]])
            flagged += [s.key for s in t.check(now)]
            now += 1.0
        return flagged

    for k in keys:
        t.watch(k, 0.0)
    report(0.5, keys)
    assert run(1.0, 300.0) == []
    t.restart(300.0)
    report(300.5, keys[:100])
    report(301.5, keys[100:])
    assert run(302.0, 900.0) == []
    # a redrive of every market answered by snapshots is no rate either
    for k in keys:
        t.watch(k, 900.0)
    report(900.5, keys)
    assert run(901.0, 1200.0) == []


def test_a_busy_key_answered_by_a_snapshot_after_a_reconnect_and_then_silent_is_flagged() -> None:
    t = ActivityTracker(bound=10.0)
    t.watch("X", 0.0)
    last = ticks(t, "X", 50, 1.0, 20.0)
    t.restart(last + 3.0)
    assert t.seen("X", 1, last + 3.5) == 0  # the snapshot: kept out of the rate
    assert t.check(last + 13.4) == []
    assert [s.key for s in t.check(last + 13.5)] == ["X"]  # judged by its rate from before
    assert t.seen("X", 1, last + 14.0) == 1
