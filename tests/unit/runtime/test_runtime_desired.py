"""The desired set: after any sequence of subscribe/unsubscribe/reconnect/redrive
events, what the venue has subscribed equals the desired set, each instrument
exactly once (docs/connect.md: never a second subscription on one connection).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from picows import WSMsgType

from ssmd.connectors.registry import create
from ssmd.runtime.capture import Capture
from ssmd.runtime.desired import ShardPlan, SubscriptionState
from ssmd.runtime.sink import MemorySink
from ssmd.runtime.supervisor import Connection

UNIVERSE = [f"S{i}/USD" for i in range(6)]

ops = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.lists(st.sampled_from(UNIVERSE), max_size=6)),
        st.tuples(st.just("remove"), st.lists(st.sampled_from(UNIVERSE), max_size=6)),
        st.tuples(st.just("drop"), st.integers(0, 2)),
        st.tuples(st.just("connect"), st.integers(0, 2)),
        st.tuples(st.just("redrive"), st.lists(st.sampled_from(UNIVERSE), max_size=3)),
    ),
    max_size=40,
)


# -- pure: shard plan + per-connection state ------------------------------------


@settings(max_examples=300)
@given(ops, st.integers(1, 4))
def test_plan_and_state_keep_venue_equal_to_desired(events: list[Any], cap: int) -> None:
    plan = ShardPlan(cap)
    states: list[SubscriptionState] = []
    venue: list[Counter[str]] = []  # what the venue has on each connection

    def state(i: int) -> SubscriptionState:
        while len(states) <= i:
            states.append(SubscriptionState())
            venue.append(Counter())
            # a new shard connects right away, like the capture's connections
            for inst in states[-1].connected():
                venue[-1][inst] += 1
        return states[i]

    for op, arg in events:
        if op == "add":
            for i, insts in plan.place(arg).items():
                for inst in state(i).add(insts):
                    venue[i][inst] += 1
        elif op == "remove":
            for i, insts in plan.unplace(arg).items():
                for inst in state(i).remove(insts):
                    venue[i][inst] -= 1
        elif op == "drop" and arg < len(states):
            states[arg].disconnected()
            venue[arg].clear()
        elif op == "connect" and arg < len(states) and not states[arg].live:
            for inst in states[arg].connected():
                venue[arg][inst] += 1
        elif op == "redrive":
            for i, s in enumerate(states):
                for inst in s.redrive(arg):
                    venue[i][inst] -= 1  # unsubscribe
                    venue[i][inst] += 1  # subscribe
        for i, s in enumerate(states):
            assert all(n in (0, 1) for n in venue[i].values())
            if s.live:
                assert {k for k, n in venue[i].items() if n} == s.desired
    for i, s in enumerate(states):
        if not s.live:
            for inst in s.connected():
                venue[i][inst] += 1
    seen: Counter[str] = Counter()
    for c in venue:
        seen.update(k for k, n in c.items() if n == 1)
    assert set(seen) == set(plan.owner)
    assert all(n == 1 for n in seen.values())
    assert all(size <= cap for size in plan.sizes)


def test_plan_reuses_freed_room() -> None:
    plan = ShardPlan(2)
    assert plan.place(["a", "b", "c"]) == {0: ["a", "b"], 1: ["c"]}
    assert plan.unplace(["a"]) == {0: ["a"]}
    assert plan.place(["d", "e"]) == {0: ["d"], 1: ["e"]}
    assert plan.place(["d"]) == {}
    assert plan.shards == 2 and len(plan) == 4
    with pytest.raises(ValueError):
        ShardPlan(0)


def test_plan_sends_a_returning_instrument_home() -> None:
    plan = ShardPlan(2)
    plan.place(["a", "b", "c", "d"])
    plan.unplace(["d"])  # shard 1 has room
    plan.unplace(["a"])  # shard 0 has room
    assert plan.place(["d"]) == {1: ["d"]}  # its former shard, not the first free one
    assert plan.place(["x"]) == {0: ["x"]}
    plan.unplace(["d"])
    plan.place(["y"])  # takes shard 1's room
    assert plan.place(["d"]) == {2: ["d"]}  # home is full: first free


# -- through the capture, with real Kraken requests on a model venue -------------


class ModelTransport:
    """Stands in for a picows transport: applies Kraken requests to a model venue."""

    is_disconnected = False
    is_close_frame_sent = False

    def __init__(self) -> None:
        self.subs: Counter[tuple[str, str]] = Counter()
        self.violations: list[str] = []

    def send(self, mt: WSMsgType, payload: bytes) -> None:
        req = orjson.loads(payload)
        ch = req["params"]["channel"]
        for sym in req["params"]["symbol"]:
            key = (ch, sym)
            if req["method"] == "subscribe":
                if self.subs[key]:
                    self.violations.append(f"second subscription of {key}")
                self.subs[key] += 1
            elif self.subs[key]:
                self.subs[key] -= 1
            else:
                self.violations.append(f"unsubscribe of {key} that is not subscribed")

    def symbols(self, channel: str) -> set[str]:
        return {s for (c, s), n in self.subs.items() if c == channel and n}


async def _scenario(events: list[Any], cap: int) -> None:
    connector = create("kraken", {"max_per_connection": cap, "ws_url": "ws://127.0.0.1:9/v2"})
    transports: dict[int, ModelTransport] = {}

    def model_connection(capture: Capture, index: int) -> Connection:
        """A connection that never dials: it talks to a model of the venue."""
        c = capture.build_connection(index)
        t = transports[index] = ModelTransport()
        c.opened(t)  # type: ignore[arg-type]
        return c

    cap_ = Capture(
        connector, MemorySink(), writer="t", with_metrics=False, connection_factory=model_connection
    )
    for op, arg in events:
        if op == "add":
            cap_.add(arg)
        elif op == "remove":
            cap_.remove(arg)
        elif op == "drop" and arg < len(cap_.connections):
            c = cap_.connections[arg]
            if c.transport is not None:
                c.closed()
                transports[arg] = ModelTransport()  # the venue forgets everything
        elif op == "connect" and arg < len(cap_.connections):
            c = cap_.connections[arg]
            if c.transport is None:
                c.opened(transports[arg])  # type: ignore[arg-type]
        elif op == "redrive":
            for c in cap_.connections:
                c.redrive(arg)
                c.resync(arg)
    for i, c in enumerate(cap_.connections):
        if c.transport is None:
            c.opened(transports[i])  # type: ignore[arg-type]
    union: Counter[str] = Counter()
    for i, c in enumerate(cap_.connections):
        t = transports[i]
        assert not t.violations, t.violations
        for ch in connector.channels:
            assert t.symbols(ch) == c.subs.desired
        union.update(c.subs.desired)
    assert set(union) == cap_.desired
    assert all(n == 1 for n in union.values())


@settings(max_examples=150, deadline=None)
@given(ops, st.integers(1, 4))
def test_capture_keeps_venue_equal_to_desired(events: list[Any], cap: int) -> None:
    asyncio.run(_scenario(events, cap))


def test_status_lines_of_reconnect_are_in_the_sink() -> None:
    async def run() -> MemorySink:
        sink = MemorySink()
        connector = create("kraken", {"ws_url": "ws://127.0.0.1:9/v2"})
        capture = Capture(connector, sink, writer="t", with_metrics=False, env="test")
        conn = capture.build_connection(0)
        conn.add(["BTC/USD"])
        conn.opened(ModelTransport())  # type: ignore[arg-type]
        conn.close_reason = "test"
        conn.closed()
        conn.opened(ModelTransport())  # type: ignore[arg-type]
        return sink

    lines = [orjson.loads(x) for x in asyncio.run(run()).lines()]
    assert [x["msg"]["ssmd"] for x in lines] == ["disconnect", "reconnect"]
    d, r = lines
    assert list(d) == ["rx", "conn", "subj", "msg"]
    assert d["subj"] == f"test.kraken.json.status.{d['conn']}"
    assert d["msg"]["reason"] == "test" and d["msg"]["instruments"] == 1
    assert r["msg"]["instruments"] == 1 and r["rx"] >= d["rx"]
