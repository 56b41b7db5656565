"""Kalshi end to end against the simulator: signed upgrade, counts, a refused
key, reconnect with exactly the desired set, book gap → get_snapshot, stall."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from capture_helpers import archive, capturing, data_count, kinds, sim_messages, ssmd_events
from helpers import async_wait_until
from sim_client import MakeSim
from ssmd.connectors.base import InstrumentQuery
from ssmd.connectors.registry import create
from ssmd.errors import ConfigError, ConnectorError


def _key(tmp_path: Path, name: str) -> tuple[rsa.RSAPrivateKey, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / name
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,  # PKCS#1
            serialization.NoEncryption(),
        )
    )
    return key, str(path)


@pytest.fixture
def keys(tmp_path: Path) -> tuple[rsa.RSAPrivateKey, str, str]:
    key, path = _key(tmp_path, "good.pem")
    _, wrong = _key(tmp_path, "wrong.pem")
    return key, path, wrong


@pytest.fixture
def kalshi_sim(make_sim: MakeSim, keys: tuple[rsa.RSAPrivateKey, str, str]) -> MakeSim:
    """``await kalshi_sim(rate=…)``: the Kalshi simulator checking signatures of ``keys``."""

    async def start(rate: float = 2000.0) -> Any:
        return await make_sim("kalshi", rate=rate, kalshi_public_key=keys[0].public_key())

    return start


async def test_counts_match_and_lines_carry_categories(
    tmp_path: Path, keys, kalshi_sim: MakeSim
) -> None:  # type: ignore[no-untyped-def]
    _, path, _ = keys
    sim = await kalshi_sim()
    markets = sim.venue.instrument_ids()[:4]
    async with capturing(
        sim, "kalshi", markets, tmp_path / "a", api_key="kid", private_key_path=path
    ) as cap:
        await async_wait_until(lambda: data_count(cap) >= 1000, timeout=20)
        await sim.set_rate(0)
        await async_wait_until(lambda: data_count(cap) == sim_messages(sim), timeout=10)
        sent = dict(sim.stats()["messages"])
        assert sim.stats()["rejected_upgrades"] == 0
        assert cap.totals()["gaps"] == 0
    lines = archive(tmp_path / "a", "kalshi")
    got = kinds(lines)
    assert {k: n for k, n in sent.items() if n} == dict(got)
    data = [x for x in lines if ".json.ticker." in x["subj"]]
    assert data and all(".unknown.json." not in x["subj"] for x in data)  # /series categories


async def test_wrong_key_is_refused_without_retrying(
    tmp_path: Path, keys, kalshi_sim: MakeSim
) -> None:  # type: ignore[no-untyped-def]
    _, _, wrong = keys
    sim = await kalshi_sim()
    with pytest.raises(ConnectorError, match="HTTP 401"):
        async with capturing(
            sim, "kalshi", ["X"], tmp_path, api_key="kid", private_key_path=wrong
        ) as cap:
            await cap.wait(10)
    assert sim.stats()["rejected_upgrades"] == 1


async def test_disconnect_resubscribes_exactly_the_desired_set(
    tmp_path: Path, keys, kalshi_sim: MakeSim
) -> None:  # type: ignore[no-untyped-def]
    _, path, _ = keys
    sim = await kalshi_sim()
    markets = sim.venue.instrument_ids()[:5]
    async with capturing(
        sim, "kalshi", markets, tmp_path, api_key="kid", private_key_path=path
    ) as cap:
        await async_wait_until(lambda: data_count(cap) >= 300, timeout=20)
        before = list(sim.stats()["subscriptions"].values())
        cap.remove(markets[:1])
        cap.add(markets[:1])  # through update_subscription on the live sids
        sim.inject("disconnect")
        await async_wait_until(lambda: cap.totals()["reconnects"] == 1, timeout=10)
        await async_wait_until(
            lambda: list(sim.stats()["subscriptions"].values()) == before, timeout=10
        )
        n = data_count(cap)
        await async_wait_until(lambda: data_count(cap) > n + 200, timeout=10)
        assert cap.totals()["venue_errors"] == 0
    events = ssmd_events(archive(tmp_path, "kalshi"))
    assert events[:2] == ["disconnect", "reconnect"]


async def test_book_gap_asks_for_a_snapshot(tmp_path: Path, keys, kalshi_sim: MakeSim) -> None:  # type: ignore[no-untyped-def]
    _, path, _ = keys
    sim = await kalshi_sim()
    markets = sim.venue.instrument_ids()[:2]
    async with capturing(
        sim,
        "kalshi",
        markets,
        tmp_path,
        api_key="kid",
        private_key_path=path,
        channels=("orderbook_delta",),
    ) as cap:
        await async_wait_until(lambda: data_count(cap) >= 200, timeout=20)
        books = sim.stats()["messages"]["book"]
        sim.inject("drop", count=1)
        await async_wait_until(lambda: cap.totals()["gaps"] >= 1, timeout=10)
        conn = cap.connections[0]
        await async_wait_until(lambda: conn.stats.resync_requests >= 1, timeout=5)
        await async_wait_until(lambda: sim.stats()["messages"]["book"] > books + 50, timeout=5)
        assert cap.totals()["venue_errors"] == 0
    events = ssmd_events(archive(tmp_path, "kalshi"))
    assert "gap" in events and "resync" in events


async def test_market_stall_is_redriven(tmp_path: Path, keys, kalshi_sim: MakeSim) -> None:  # type: ignore[no-untyped-def]
    _, path, _ = keys
    sim = await kalshi_sim(rate=3000.0)
    markets = sim.venue.instrument_ids()[:3]
    async with capturing(
        sim,
        "kalshi",
        markets,
        tmp_path,
        api_key="kid",
        private_key_path=path,
        stall_timeout=0.5,
    ) as cap:
        await async_wait_until(lambda: data_count(cap) >= 3000, timeout=20)
        sim.inject("stall", instrument=markets[1], seconds=30)
        await async_wait_until(lambda: cap.totals()["stalls"] >= 1, timeout=10)
        assert cap.totals()["venue_errors"] == 0
    stalls = [x["msg"] for x in archive(tmp_path, "kalshi") if x["msg"].get("ssmd") == "stall"]
    (stall,) = [m for m in stalls if m.get("instrument") == markets[1]]
    assert stall["action"] == "resubscribe"


async def test_category_discovery(tmp_path: Path, keys, kalshi_sim: MakeSim) -> None:  # type: ignore[no-untyped-def]
    _, path, _ = keys
    sim = await kalshi_sim()
    series = sim.venue.series
    category = series[0]["category"]
    in_cat = {s["ticker"] for s in series if s["category"] == category}
    connector = create(
        "kalshi",
        {
            "ws_url": sim.ws_url,
            "rest_url": sim.rest_url,
            "api_key": "k",
            "private_key_path": path,
        },
    )
    async with httpx.AsyncClient() as client:
        res = await connector.resolve(InstrumentQuery(categories=(category.upper(),)), client)
    assert res.instruments
    assert all(m.split("-", 1)[0] in in_cat for m in res.instruments)
    assert res.categories[next(iter(in_cat))] == category


async def test_terminal_subscription_errors_resubscribe(
    tmp_path: Path, keys, kalshi_sim: MakeSim
) -> None:  # type: ignore[no-untyped-def]
    _, path, _ = keys
    sim = await kalshi_sim()
    markets = sim.venue.instrument_ids()[:3]
    async with capturing(
        sim, "kalshi", markets, tmp_path, api_key="kid", private_key_path=path
    ) as cap:
        await async_wait_until(lambda: data_count(cap) >= 300, timeout=20)
        before = list(sim.stats()["subscriptions"].values())
        sim.inject("slow_reader")  # error 25 ends every data subscription
        await async_wait_until(lambda: cap.totals()["venue_errors"] >= 3, timeout=10)
        await async_wait_until(
            lambda: list(sim.stats()["subscriptions"].values()) == before, timeout=10
        )
        n = data_count(cap)
        await async_wait_until(lambda: data_count(cap) > n + 200, timeout=10)
        assert cap.totals()["reconnects"] == 0
    resyncs = [x["msg"] for x in archive(tmp_path, "kalshi") if x["msg"].get("ssmd") == "resync"]
    channels = {r["channel"] for r in resyncs}
    assert {"ticker", "trade", "market_lifecycle_v2"} <= channels
    assert all("error 25" in r["reason"] for r in resyncs)


async def test_unreadable_key_fails_before_any_connection(
    tmp_path: Path, keys, kalshi_sim: MakeSim
) -> None:  # type: ignore[no-untyped-def]
    _, _, _ = keys
    sim = await kalshi_sim()
    bad = tmp_path / "bad.pem"
    bad.write_text("-----BEGIN RSA PRIVATE KEY-----\nnot base64\n-----END RSA PRIVATE KEY-----\n")
    with pytest.raises(ConfigError, match="not a PEM RSA private key") as info:
        async with capturing(
            sim, "kalshi", ["X"], tmp_path, api_key="k", private_key_path=str(bad)
        ):
            pass
    assert "\n" not in str(info.value)
    stats = sim.stats()
    assert stats["connections_total"] == 0 and stats["rest_requests"] == 0


async def test_duplicates_and_reordering_are_recorded_and_nothing_else_lost(
    tmp_path: Path, keys, kalshi_sim: MakeSim
) -> None:  # type: ignore[no-untyped-def]
    _, path, _ = keys
    sim = await kalshi_sim()
    markets = sim.venue.instrument_ids()[:4]
    async with capturing(
        sim,
        "kalshi",
        markets,
        tmp_path,
        api_key="kid",
        private_key_path=path,
        channels=("trade",),
    ) as cap:
        await async_wait_until(lambda: data_count(cap) >= 300, timeout=20)
        sim.inject("duplicate", count=2)
        await async_wait_until(lambda: cap.totals()["duplicates"] == 2, timeout=10)
        sim.inject("reorder", count=1)
        await async_wait_until(lambda: cap.totals()["late"] >= 1, timeout=10)
        await sim.set_rate(0)
        sent = sim.stats()["messages"]["trade"]
        # every trade the venue sent once is archived once: duplicates dropped, late kept
        await async_wait_until(lambda: data_count(cap) == sent, timeout=10)
    events = ssmd_events(archive(tmp_path, "kalshi"))
    assert events.count("duplicate") == 2 and "late" in events
