"""Stalls that begin soon after a subscription, against every venue's simulator.

One capture per venue runs at once (about 45 s in all, the stall bound at its
default of 10 s). On each, one busy instrument goes silent 2 s, one 6 s and
one 30 s after the subscription: each must be flagged within the bound of its
silence and redriven. One instrument stays busy and one is silenced before
the connection opens (acknowledged, snapshot, then nothing): that one is a
quiet market, never flagged, except where the venue promises a cadence
(Kraken Futures' ticker, about once a second), where the same silence is a
stall. Nothing here may reconnect: these are instrument stalls.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from capture_helpers import archive, capturing, data_count
from helpers import async_wait_until
from sim_client import MakeSim

BOUND = 10.0
#: a stall is checked once a tick (1 s at the default bound) on data settled that tick
SLACK = 2.5
DELAYS = (2.0, 6.0, 30.0)

pytestmark = pytest.mark.slow


@dataclass
class Case:
    name: str
    venue: str
    #: ids to capture: three to silence, one busy, one quiet (silenced before the connection)
    ids: list[str]
    settings: dict[str, Any] = field(default_factory=dict)
    #: channels with a promised cadence are subscribed: the quiet one is a stall too
    cadenced: bool = False
    #: wall-clock ns when each silenced id went silent
    silenced_at: dict[str, int] = field(default_factory=dict)
    subjects: dict[str, str] = field(default_factory=dict)
    lines: list[dict[str, Any]] = field(default_factory=list)
    connected_ns: int = 0


def _conditions(sim: Any, n: int) -> list[str]:
    seen: dict[str, None] = {}
    for cond, _yes in sim.venue.by_token.values():
        seen[cond.condition_id] = None
    return list(seen)[:n]


def _kalshi_key(tmp_path: Path) -> tuple[Any, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "kalshi.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return key, str(path)


def _acks(sim: Any) -> int:
    """Requests the simulator acknowledged (keep-alives left out)."""
    controls = sim.stats()["controls"]
    return sum(n for k, n in controls.items() if k not in ("ping", "pong", "heartbeat"))


async def _run(case: Case, sim: Any, root: Path) -> None:
    quiet = case.ids[4]
    sim.inject("stall", instrument=quiet, seconds=600)  # before the connection opens
    async with capturing(sim, case.venue, case.ids, root, **case.settings) as cap:
        conn = cap.connections[0]
        await async_wait_until(lambda: conn.live, timeout=20, message=f"{case.name} live")
        subscribed = time.monotonic()
        case.connected_ns = time.time_ns()
        case.subjects = {i: cap.connector.subject_id(i) for i in case.ids}
        await async_wait_until(lambda: data_count(cap) > 20, timeout=10)
        acks = _acks(sim)
        for inst, delay in zip(case.ids[:3], DELAYS, strict=True):
            await asyncio.sleep(max(0.0, subscribed + delay - time.monotonic()))
            sim.inject("stall", instrument=inst, seconds=600)
            case.silenced_at[inst] = time.time_ns()
        await async_wait_until(
            lambda: cap.totals()["stalls"] >= 3 + case.cadenced,
            timeout=BOUND + SLACK + 5,
            message=f"{case.name}: stalls flagged",
        )
        assert cap.totals()["reconnects"] == 0, case.name
        if case.venue != "polymarket":  # redriven: the venue acknowledged more requests
            await async_wait_until(  # (Polymarket acknowledges nothing)
                lambda: _acks(sim) >= acks + 2 * 3,
                timeout=5,
                message=f"{case.name}: redrives acknowledged",
            )
    case.lines = archive(root, case.venue)


def _stalls(case: Case) -> dict[str, list[dict[str, Any]]]:
    """Stall lines by the id whose status subject they carry."""
    by_token = {tok: inst for inst, tok in case.subjects.items()}
    out: dict[str, list[dict[str, Any]]] = {}
    for x in case.lines:
        if isinstance(x["msg"], dict) and x["msg"].get("ssmd") == "stall":
            token = x["subj"].rsplit(".", 1)[1]
            out.setdefault(by_token.get(token, token), []).append(x)
    return out


def _last_data_rx(case: Case, inst: str, before: int) -> int:
    """Receive time of the last data line naming ``inst`` before ``before`` (0: none)."""
    needle = orjson.dumps(inst)
    last = 0
    for x in case.lines:
        msg = x["msg"]
        data = isinstance(msg, (dict, list)) and "ssmd" not in msg
        if x["rx"] < before and data and needle in orjson.dumps(msg):
            last = max(last, x["rx"])
    return last


async def test_silences_soon_after_subscribe_are_flagged_within_the_bound_on_every_venue(
    tmp_path: Path, make_sim: MakeSim
) -> None:
    key, key_path = _kalshi_key(tmp_path)
    sims = {
        "kalshi": await make_sim("kalshi", rate=1000.0, kalshi_public_key=key.public_key()),
        "kraken": await make_sim("kraken", rate=1000.0),
        "kraken-futures": await make_sim("kraken-futures", rate=600.0),
        "kraken-futures-trades": await make_sim("kraken-futures", rate=600.0),
        "polymarket": await make_sim("polymarket", rate=1000.0),
    }
    cases = [
        Case(
            "kalshi",
            "kalshi",
            sims["kalshi"].venue.instrument_ids()[:5],
            {"api_key": "kid", "private_key_path": key_path},
        ),
        Case("kraken", "kraken", sims["kraken"].venue.instrument_ids()[:5]),
        Case(
            "kraken-futures",
            "kraken-futures",
            sims["kraken-futures"].venue.instrument_ids()[:5],
            cadenced=True,
        ),
        Case(
            "kraken-futures-trades",
            "kraken-futures",
            sims["kraken-futures-trades"].venue.instrument_ids()[:5],
            {"channels": ("trade",)},  # no cadence promised: judged by rate alone
        ),
        Case("polymarket", "polymarket", _conditions(sims["polymarket"], 5)),
    ]
    await asyncio.gather(*(_run(c, sims[c.name], tmp_path / c.name) for c in cases))

    for case in cases:
        stalls = _stalls(case)
        silence, busy, quiet = case.ids[:3], case.ids[3], case.ids[4]
        for inst in silence:
            assert inst in stalls, f"{case.name}: {inst} silenced, never flagged"
            first = stalls[inst][0]
            # silent from the connector's view: after the last of its data the connector read
            # (a loaded machine can still be reading data sent before the stall was injected)
            since = max(case.silenced_at[inst], _last_data_rx(case, inst, first["rx"]))
            late = (first["rx"] - since) / 1e9
            assert BOUND - 0.5 <= late <= BOUND + SLACK, (case.name, inst, late)
            msg = first["msg"]
            assert msg["scope"] == "instrument" and msg["action"] == "resubscribe", msg
            assert msg["silent_ms"] >= BOUND * 1000, msg
        assert busy not in stalls, f"{case.name}: busy {busy} flagged: {stalls[busy]}"
        if case.cadenced:  # acknowledged, then nothing on a cadenced channel: a stall
            (first, *_) = stalls[quiet]
            late = (first["rx"] - case.connected_ns) / 1e9
            assert first["msg"]["basis"] == "cadence" and late <= BOUND + SLACK, (late, first)
        else:
            assert quiet not in stalls, f"{case.name}: quiet {quiet} flagged: {stalls[quiet]}"
        assert not [s for s in stalls if s not in case.ids], (case.name, list(stalls))


async def _frozen(venue: str, sim: Any, root: Path, cadence: float, **settings: Any) -> None:
    ids = sim.venue.instrument_ids()[:2]
    async with capturing(sim, venue, ids, root, **settings) as cap:
        conn = cap.connections[0]
        await async_wait_until(lambda: conn.live, timeout=20, message=f"{venue} live")
        # idle but alive: a few heartbeats arrive and nothing is flagged
        hb = sim.stats()["controls"].get("heartbeat", 0)
        await async_wait_until(
            lambda: sim.stats()["controls"].get("heartbeat", 0) >= hb + 2, timeout=4 * cadence
        )
        assert cap.totals()["stalls"] == 0
        frozen_ns = time.time_ns()
        sim.inject("stall", seconds=600, keepalive=False)  # nothing at all, socket open
        await async_wait_until(
            lambda: cap.totals()["reconnects"] >= 1,
            timeout=max(BOUND, 3 * cadence) + SLACK + 5,
            message=f"{venue}: reconnected after the heartbeats stopped",
        )
    (stall, *_) = [x for x in archive(root, venue) if x["msg"].get("ssmd") == "stall"]
    late = (stall["rx"] - frozen_ns) / 1e9
    expected = max(BOUND, 3 * cadence)
    assert expected - 0.5 <= late <= expected + SLACK, (venue, late)
    msg = stall["msg"]
    assert (msg["scope"], msg["basis"], msg["action"]) == ("connection", "heartbeat", "reconnect")


async def test_a_venue_that_stops_its_heartbeats_is_reconnected_within_its_cadence(
    tmp_path: Path, make_sim: MakeSim
) -> None:
    kraken = await make_sim("kraken", rate=0.0)  # idle: heartbeats about once a second
    futures = await make_sim("kraken-futures", rate=0.0)  # heartbeat feed, every 5 s
    await asyncio.gather(
        _frozen("kraken", kraken, tmp_path / "k", 1.0),
        _frozen("kraken-futures", futures, tmp_path / "f", 5.0, channels=("trade",)),
    )
