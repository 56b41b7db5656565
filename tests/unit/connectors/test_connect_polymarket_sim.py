"""Polymarket end to end against the simulator: condition ids expanded to tokens,
counts, reconnect with exactly the desired set, condition stall, malformed frames."""

from __future__ import annotations

from pathlib import Path

import pytest

from capture_helpers import archive, capturing, data_count, kinds, sim_messages, ssmd_events
from helpers import async_wait_until
from sim_client import MakeSim
from ssmd.errors import ConfigError
from ssmd.runtime.sink import ArchiveSink


def _conditions(sim, n: int) -> list[str]:  # type: ignore[no-untyped-def]
    seen: dict[str, None] = {}
    for cond, _yes in sim.venue.by_token.values():
        seen[cond.condition_id] = None
    return list(seen)[:n]


async def test_condition_ids_expand_and_counts_match(tmp_path: Path, make_sim: MakeSim) -> None:
    sim = await make_sim("polymarket", rate=2000.0)
    conds = _conditions(sim, 3)
    async with capturing(sim, "polymarket", conds, tmp_path) as cap:
        assert len(cap.desired) == 6  # YES and NO token of each condition
        await async_wait_until(lambda: data_count(cap) >= 1000, timeout=20)
        await sim.set_rate(0)
        await async_wait_until(lambda: data_count(cap) == sim_messages(sim), timeout=10)
        sent = {k: n for k, n in sim.stats()["messages"].items() if n}
        assert list(sim.stats()["subscriptions"].values()) == [6]
    lines = archive(tmp_path, "polymarket")
    assert dict(kinds(lines)) == sent
    subjects = {x["subj"].rsplit(".", 1)[1] for x in lines if ".json.book." in x["subj"]}
    assert subjects == set(conds)


async def test_reconnect_stall_and_malformed(tmp_path: Path, make_sim: MakeSim) -> None:
    sim = await make_sim("polymarket", rate=4000.0)
    conds = _conditions(sim, 4)
    async with capturing(sim, "polymarket", conds, tmp_path, stall_timeout=0.5) as cap:
        await async_wait_until(lambda: data_count(cap) >= 4000, timeout=20)
        sim.inject("malformed", count=3)
        await async_wait_until(lambda: cap.totals()["malformed"] == 3, timeout=10)
        sim.inject("stall", instrument=conds[2], seconds=30)
        await async_wait_until(lambda: cap.totals()["stalls"] >= 1, timeout=10)
        sim.inject("disconnect")
        await async_wait_until(lambda: cap.totals()["reconnects"] == 1, timeout=10)
        await async_wait_until(
            lambda: list(sim.stats()["subscriptions"].values()) == [8], timeout=10
        )
        n = data_count(cap)
        await async_wait_until(lambda: data_count(cap) > n + 500, timeout=10)
    lines = archive(tmp_path, "polymarket")
    stalls = [x for x in lines if x["msg"].get("ssmd") == "stall"]
    cond = [x for x in stalls if x["subj"] == f"prod.polymarket.json.status.{conds[2]}"]
    assert len(cond[0]["msg"]["instrument"]) == 2  # both tokens resubscribed
    assert len([x for x in lines if ".json.malformed." in x["subj"]]) == 3
    events = ssmd_events(lines)
    i = events.index("disconnect")
    assert events[i : i + 2] == ["disconnect", "reconnect"]


async def test_more_tokens_than_one_connection_takes_are_sharded(
    tmp_path: Path, make_sim: MakeSim
) -> None:
    sim = await make_sim("polymarket", rate=2000.0, instruments=300)
    async with capturing(sim, "polymarket", [], tmp_path, all_=True) as cap:
        assert len(cap.desired) == 600
        assert [len(c.subs) for c in cap.connections] == [500, 100]
        await async_wait_until(
            lambda: sorted(sim.stats()["subscriptions"].values()) == [100, 500], timeout=10
        )
        await async_wait_until(lambda: data_count(cap) >= 1000, timeout=20)


async def test_unknown_condition_is_a_config_error_and_the_sink_is_closed(
    tmp_path: Path, make_sim: MakeSim
) -> None:
    sim = await make_sim("polymarket", rate=100.0)
    with pytest.raises(ConfigError, match="unknown condition"):
        async with capturing(sim, "polymarket", ["0x" + "ab" * 32], tmp_path):
            pass
    ArchiveSink(tmp_path, "polymarket", "test").close()  # the writer's lock was released
