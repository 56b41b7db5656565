"""``ssmd lifecycle run``: Kalshi lifecycle events from the bus into PostgreSQL.

Forward only, once, whatever the delivery; unknown markets kept; unreadable
lines dead-lettered.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from helpers import async_wait_until

pytestmark = pytest.mark.integration

UTC = dt.timezone.utc


@pytest.fixture
async def markets_db(pg_dsn: str) -> AsyncIterator[str]:
    from ssmd.secmaster import db

    conn = await db.connect(pg_dsn)
    try:
        await db.migrate(conn)
        await conn.execute(
            "INSERT INTO series (ticker, category, raw) VALUES ('S', 'Crypto', '{}');"
            " INSERT INTO events (event_ticker, series_ticker, raw) VALUES ('E', 'S', '{}');"
            " INSERT INTO markets (ticker, event_ticker, status, raw)"
            " SELECT 'M' || g, 'E', 'initialized', '{}' FROM generate_series(1, 4) g"
        )
    finally:
        await conn.close()
    yield pg_dsn


def _line(env: str, ticker: str, msg: dict[str, Any], kind: str = "market_lifecycle_v2") -> bytes:
    subj = f"{env}.kalshi.crypto.json.lifecycle.{ticker}"
    return orjson.dumps(
        {
            "rx": 1_796_000_000_000_000_000,
            "conn": "c1",
            "subj": subj,
            "msg": {"type": kind, "sid": 1, "msg": msg},
        }
    )


async def _publish(nats_url: str, env: str, items: list[tuple[str, bytes]]) -> None:
    import nats

    from ssmd.bus.nats import ensure_streams
    from ssmd.bus.streams import spec_for_venue, stream_specs

    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        await ensure_streams(js, [spec_for_venue("kalshi", stream_specs(env))])
        for i, (ticker, data) in enumerate(items):
            await js.publish(
                f"{env}.kalshi.crypto.json.lifecycle.{ticker}",
                data,
                headers={"Nats-Msg-Id": f"{env}:{i}"},
            )
    finally:
        await nc.close()


def _run(dsn: str, nats_url: str, env: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "ssmd", "lifecycle", "run", "--log-level", "warning", "--json"],
        env={**os.environ, "DATABASE_URL": dsn, "NATS_URL": nats_url, "SSMD_ENV": env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _stop(proc: subprocess.Popen[bytes]) -> dict[str, Any]:
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()
    return dict(orjson.loads(out))


async def _rows(dsn: str, sql: str) -> list[Any]:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


async def test_events_move_markets_forward_once(
    markets_db: str, nats_url: str, bus_env: str
) -> None:
    dsn, env = markets_db, bus_env
    t = 1_796_000_000
    items = [
        (
            "M1",
            _line(
                env,
                "M1",
                {
                    "market_ticker": "M1",
                    "event_type": "created",
                    "open_ts": t,
                    "close_ts": t + 3600,
                },
            ),
        ),
        ("M1", _line(env, "M1", {"market_ticker": "M1", "event_type": "activated"})),
        (
            "M1",
            _line(
                env,
                "M1",
                {"market_ticker": "M1", "event_type": "deactivated", "is_deactivated": True},
            ),
        ),
        ("M1", _line(env, "M1", {"market_ticker": "M1", "event_type": "activated"})),
        (
            "M1",
            _line(
                env,
                "M1",
                {"market_ticker": "M1", "event_type": "close_date_updated", "close_ts": t + 60},
            ),
        ),
        (
            "M1",
            _line(
                env,
                "M1",
                {
                    "market_ticker": "M1",
                    "event_type": "determined",
                    "result": "yes",
                    "settlement_value": "1.0000",
                    "determination_ts": t + 70,
                },
            ),
        ),
        (
            "M1",
            _line(
                env, "M1", {"market_ticker": "M1", "event_type": "settled", "settled_ts": t + 80}
            ),
        ),
        # an old activated arriving after the settlement: recorded, not applied
        ("M1", _line(env, "M1", {"market_ticker": "M1", "event_type": "activated"})),
        ("M2", _line(env, "M2", {"market_ticker": "M2", "event_type": "activated"})),
        ("GONE", _line(env, "GONE", {"market_ticker": "GONE", "event_type": "activated"})),
        (
            "E",
            _line(
                env,
                "E",
                {"event_ticker": "E", "series_ticker": "S", "title": "x"},
                kind="event_lifecycle",
            ),
        ),
        (
            "M3",
            b'{"rx":1,"conn":"c1","subj":"x","msg":{"type":"market_lifecycle_v2","msg":{"event_type":"activated"}}}',
        ),
        ("M4", b"not json at all"),
    ]
    # two lines in one bus message (a micro-batch) are two events
    items.append(
        (
            "M4",
            _line(env, "M4", {"market_ticker": "M4", "event_type": "activated"})
            + b"\n"
            + _line(env, "M4", {"market_ticker": "M4", "event_type": "deactivated"}),
        )
    )
    await _publish(nats_url, env, items)
    proc = _run(dsn, nats_url, env)
    try:
        await async_wait_until(
            lambda: _count(dsn, "SELECT count(*) FROM market_lifecycle_events", 13),
            timeout=30,
            message="every event recorded",
        )
    finally:
        stats = _stop(proc)
    assert stats["events"] == 13 and stats["deadletters"] == 2
    assert stats["outcomes"]["unknown"] == 1
    (m1,) = await _rows(dsn, "SELECT * FROM markets WHERE ticker = 'M1'")
    assert m1["status"] == "finalized" and m1["result"] == "yes"
    assert str(m1["settlement_value_dollars"]) == "1.0000"
    assert m1["open_time"] == dt.datetime.fromtimestamp(t, UTC)
    assert m1["close_time"] == dt.datetime.fromtimestamp(t + 60, UTC)
    assert m1["settlement_ts"] == dt.datetime.fromtimestamp(t + 80, UTC)
    statuses = {
        r["ticker"]: r["status"] for r in await _rows(dsn, "SELECT ticker, status FROM markets")
    }
    assert statuses == {"M1": "finalized", "M2": "active", "M3": "initialized", "M4": "inactive"}
    applied = await _rows(
        dsn,
        "SELECT event_type, applied FROM market_lifecycle_events WHERE market_ticker = 'M1' ORDER BY stream_seq",
    )
    assert [r["applied"] for r in applied] == [True, True, True, True, True, True, True, False]
    # replay everything (a consumer that lost its place): nothing changes
    await _reset_consumer(nats_url, env)
    proc = _run(dsn, nats_url, env)
    try:
        await async_wait_until(lambda: _consumer_caught_up(nats_url, env), timeout=30)
    finally:
        stats = _stop(proc)
    assert stats["outcomes"] == {"duplicate": 13}
    assert await _count(dsn, "SELECT count(*) FROM market_lifecycle_events", 13)
    # the dead letters say why
    bad = await _deadletters(nats_url)
    mine = sorted((b["reason"], b["line"]) for b in bad if b["stream"] == f"{env.upper()}_KALSHI")
    assert len(mine) == 2, mine  # once each: the replay re-published them under the same ids
    assert mine[0][0] == "market_lifecycle_v2 without a ticker"
    assert mine[1][0].startswith("not an envelope line") and mine[1][1] == "not json at all"


async def _count(dsn: str, sql: str, n: int) -> bool:
    rows = await _rows(dsn, sql)
    return bool(rows[0][0] == n)


async def _reset_consumer(nats_url: str, env: str) -> None:
    import nats

    nc = await nats.connect(nats_url)
    try:
        await nc.jetstream().delete_consumer(f"{env.upper()}_KALSHI", "lifecycle")
    finally:
        await nc.close()


async def _consumer_caught_up(nats_url: str, env: str) -> bool:
    import nats

    nc = await nats.connect(nats_url)
    try:
        info = await nc.jetstream().consumer_info(f"{env.upper()}_KALSHI", "lifecycle")
        return bool(
            info.num_pending == 0 and info.num_ack_pending == 0 and info.delivered.stream_seq
        )
    except Exception:
        return False
    finally:
        await nc.close()


async def _deadletters(nats_url: str) -> list[dict[str, Any]]:
    import nats

    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        info = await js.stream_info("DEADLETTER")
        out = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg("DEADLETTER", seq)
            out.append(orjson.loads(msg.data))
        return out
    finally:
        await nc.close()


async def test_an_event_postgresql_refuses_is_dead_lettered(
    markets_db: str, nats_url: str, bus_env: str
) -> None:
    """A NUL character in the event (jsonb refuses ``\\u0000``; text columns refuse NUL too):
    PostgreSQL's data error sends that event to ``deadletter.lifecycle`` with the reason;
    the service applies the next one and keeps running."""
    dsn, env = markets_db, bus_env
    items = [
        ("M1", _line(env, "M1", {"market_ticker": "M1", "event_type": "activated", "x": "a\0b"})),
        ("M2", _line(env, "M2", {"market_ticker": "M\0" + "2", "event_type": "activated"})),
        ("M3", _line(env, "M3", {"market_ticker": "M3", "event_type": "activated"})),
    ]
    await _publish(nats_url, env, items)
    proc = _run(dsn, nats_url, env)
    try:
        await async_wait_until(
            lambda: _count(dsn, "SELECT count(*) FROM markets WHERE status = 'active'", 1),
            timeout=30,
            message="the event after the refused ones applied",
        )
        assert proc.poll() is None, proc.communicate()[1].decode()
    finally:
        stats = _stop(proc)
    assert stats["events"] == 1 and stats["deadletters"] == 2, stats
    assert await _count(dsn, "SELECT count(*) FROM market_lifecycle_events", 1)
    (m3,) = await _rows(dsn, "SELECT status FROM markets WHERE ticker = 'M3'")
    assert m3["status"] == "active"
    bad = [b for b in await _deadletters(nats_url) if b["stream"] == f"{env.upper()}_KALSHI"]
    assert len(bad) == 2 and all(b["reason"].startswith("PostgreSQL refused it: ") for b in bad)
    assert {b["index"] for b in bad} == {0}
