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
    #: the commands the simulator received naming each id after it went silent (or, for
    #: the busy id, after the first silence)
    redrives: dict[str, list[bytes]] = field(default_factory=dict)


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


def _names(sim: Any, venue: str, inst: str) -> list[bytes]:
    """How the connector's commands name ``inst``: Polymarket subscribes a condition's tokens."""
    if venue != "polymarket":
        return [inst.encode()]
    return [tok.encode() for tok, (c, _) in sim.venue.by_token.items() if c.condition_id == inst]


def _commands(sim: Any, names: list[bytes], since: float) -> list[bytes]:
    return [p for t, _, p in sim.ws_log if t > since and any(n in p for n in names)]


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
        quiet_since: dict[str, float] = {}
        for inst, delay in zip(case.ids[:3], DELAYS, strict=True):
            await asyncio.sleep(max(0.0, subscribed + delay - time.monotonic()))
            sim.inject("stall", instrument=inst, seconds=600)
            case.silenced_at[inst] = time.time_ns()
            quiet_since[inst] = time.monotonic()
        quiet_since[case.ids[3]] = quiet_since[case.ids[0]]  # the busy one: never redriven
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
        names = {i: _names(sim, case.venue, i) for i in quiet_since}
        # each silenced id is unsubscribed and subscribed again, by name, on every venue
        await async_wait_until(
            lambda: all(len(_commands(sim, names[i], quiet_since[i])) >= 2 for i in case.ids[:3]),
            timeout=5,
            message=f"{case.name}: each silenced instrument redriven",
        )
        case.redrives = {i: _commands(sim, names[i], quiet_since[i]) for i in quiet_since}
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
        assert case.redrives[busy] == [], (case.name, case.redrives[busy])
        for inst in silence:  # an unsubscribe, then a subscribe, of that instrument
            assert len(case.redrives[inst]) >= 2, (case.name, inst, case.redrives[inst])
            assert (
                b"unsub" in case.redrives[inst][0].lower() or b"delete" in case.redrives[inst][0]
            ), (case.name, case.redrives[inst][0])
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


async def test_quiet_markets_stay_quiet_across_a_reconnect_and_busy_ones_are_judged(
    tmp_path: Path, make_sim: MakeSim
) -> None:
    """Kalshi: 100 quiet markets (a message every 20 s between them) answer a reconnect with
    100 book snapshots; those are no rate, so the connection is not taken for a busy one
    that fell silent (which would reconnect it again every half minute). Kraken: a busy
    symbol silenced at a reconnect is flagged within the bound of its silence (by the rate
    it had before) and redriven; the other busy ones are not."""
    key, key_path = _kalshi_key(tmp_path)
    kalshi = await make_sim("kalshi", rate=0.05, kalshi_public_key=key.public_key())
    kraken = await make_sim("kraken", rate=1000.0)

    async def quiet() -> None:
        ids = kalshi.venue.instrument_ids()[:100]
        settings = {"api_key": "kid", "private_key_path": key_path}
        settings["channels"] = ("ticker", "trade", "orderbook_delta")
        async with capturing(kalshi, "kalshi", ids, tmp_path / "q", **settings) as cap:
            await async_wait_until(lambda: data_count(cap) >= 100, timeout=20)
            await asyncio.sleep(BOUND / 2 + 1)  # long enough a span to be judged by rate
            kalshi.inject("disconnect")
            await async_wait_until(lambda: cap.totals()["reconnects"] >= 1, timeout=20)
            await async_wait_until(lambda: data_count(cap) >= 200, timeout=20)  # snapshots
            await asyncio.sleep(2 * BOUND + SLACK)
            assert (cap.totals()["reconnects"], cap.totals()["stalls"]) == (1, 0)

    async def busy() -> None:
        ids = kraken.venue.instrument_ids()[:3]
        async with capturing(kraken, "kraken", ids, tmp_path / "b") as cap:
            await async_wait_until(lambda: data_count(cap) >= 3000, timeout=20)  # busy
            kraken.inject("disconnect")
            await async_wait_until(lambda: cap.totals()["reconnects"] >= 1, timeout=20)
            # silent from the reconnect on: judged by the rate it had before
            kraken.inject("stall", instrument=ids[0], seconds=600)
            silenced, since = time.time_ns(), time.monotonic()
            await async_wait_until(lambda: cap.totals()["stalls"] >= 1, timeout=BOUND + SLACK + 5)
            await async_wait_until(
                lambda: len(_commands(kraken, [ids[0].encode()], since)) >= 2, timeout=5
            )
            assert cap.totals()["reconnects"] == 1
        lines = archive(tmp_path / "b", "kraken")
        stalls = [x for x in lines if x["msg"].get("ssmd") == "stall"]
        assert [x["msg"]["instrument"] for x in stalls] == [ids[0]]
        late = (stalls[0]["rx"] - silenced) / 1e9
        assert BOUND - 0.5 <= late <= BOUND + SLACK, late

    await asyncio.gather(quiet(), busy())
