"""Helpers of the CDC tests: ``ssmd cdc run`` processes, a random workload, the stream read back.

Imported as ``from cdc_helpers import ...`` (``tests/`` is on the test path).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
from typing import Any

import orjson

from helpers import async_wait_until

__all__ = [
    "CDC_FLAGS",
    "SsmdProcs",
    "Workload",
    "cache_equals",
    "check_stream",
    "count_ge",
    "has_slot",
    "read_stream",
    "redis_rows",
    "start_cdc",
    "stop",
    "view_rows",
    "wait_slot",
]

CDC_FLAGS = ("--poll", "10ms", "--heartbeat", "1s", "--log-level", "warning")


def start_cdc(
    dsn: str, nats_url: str, table: str, slot: str, *extra: str
) -> subprocess.Popen[bytes]:
    """``ssmd cdc run`` of one table through one slot, in a process of its own."""
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "ssmd", "cdc", "run"),
            *("--tables", table, "--slot", slot, *CDC_FLAGS, *extra),
        ],
        env={**os.environ, "DATABASE_URL": dsn, "NATS_URL": nats_url},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


class SsmdProcs:
    """``ssmd`` commands run as subprocesses with one environment (``env``, set before
    the first :meth:`start`), their stderr kept, stopped together by :meth:`stop_all`."""

    def __init__(self) -> None:
        self.env: dict[str, str] = dict(os.environ)
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        p = subprocess.Popen(
            [sys.executable, "-m", "ssmd", *args, "--log-level", "info"],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.procs.append(p)
        return p

    def stop_all(self) -> list[tuple[int | None, str]]:
        """SIGTERM to those still running; ``(exit status, stderr)`` of each."""
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        errors = [p.communicate(timeout=60)[1].decode() for p in self.procs]
        return [(p.returncode, err) for p, err in zip(self.procs, errors, strict=True)]


def stop(proc: subprocess.Popen[bytes]) -> tuple[bytes, bytes]:
    """SIGTERM, then its (stdout, stderr)."""
    proc.send_signal(signal.SIGTERM)
    return proc.communicate(timeout=30)


async def read_stream(nats_url: str, table: str) -> list[tuple[str, dict[str, Any], str]]:
    """Every message of ``cdc.{table}.>`` in stream order: (subject, body, msg id)."""
    import nats

    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        info = await js.stream_info("SECMASTER_CDC")
        if not info.state.messages:
            return []
        sub = await js.pull_subscribe(f"cdc.{table}.>", stream="SECMASTER_CDC")
        out = []
        while True:
            try:
                msgs = await sub.fetch(1000, timeout=0.5)
            except (nats.errors.TimeoutError, asyncio.TimeoutError):
                break
            for m in msgs:
                assert m.headers is not None
                out.append((m.subject, orjson.loads(m.data), m.headers["Nats-Msg-Id"]))
                await m.ack()
        await sub.unsubscribe()
        return out
    finally:
        await nc.close()


async def count_ge(nats_url: str, table: str, n: int) -> bool:
    """At least ``n`` messages of ``cdc.{table}.>`` are in the stream."""
    import nats

    nc = await nats.connect(nats_url)
    try:
        info = await nc.jetstream().stream_info("SECMASTER_CDC", subjects_filter=f"cdc.{table}.>")
        return sum((info.state.subjects or {}).values()) >= n
    finally:
        await nc.close()


async def has_slot(dsn: str, slot: str) -> bool:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        return bool(
            await conn.fetchval("SELECT 1 FROM pg_replication_slots WHERE slot_name = $1", slot)
        )
    finally:
        await conn.close()


async def wait_slot(dsn: str, slot: str, proc: subprocess.Popen[bytes]) -> None:
    """Wait until the service created its slot: changes from then on are captured."""

    async def exists() -> bool:
        if proc.poll() is not None:
            raise AssertionError(proc.communicate()[1].decode())
        return await has_slot(dsn, slot)

    await async_wait_until(exists, timeout=30, message=f"slot {slot}")


class Workload:
    """Random inserts, updates and deletes of ``table (id int, v bigint, price numeric, note
    text)`` in transactions, remembering every committed change as (op, id, v)."""

    def __init__(self, table: str, seed: int) -> None:
        self.table = table
        self.rng = random.Random(seed)
        self.expected: list[tuple[str, int, int | None]] = []
        self.live: list[int] = []
        self.next_id = 0
        self.counter = 0

    async def transaction(self, conn: Any) -> None:
        """One transaction of 1 to 20 random changes."""
        ops: list[tuple[str, int, int | None]] = []
        name, rng = self.table, self.rng
        async with conn.transaction():
            for _ in range(rng.randint(1, 20)):
                self.counter += 1
                r = rng.random()
                if r < 0.5 or not self.live:
                    self.next_id += 1
                    await conn.execute(
                        f"INSERT INTO {name} VALUES ($1, $2, $3, 'x')",
                        self.next_id,
                        self.counter,
                        f"{self.counter}.0100",
                    )
                    self.live.append(self.next_id)
                    ops.append(("insert", self.next_id, self.counter))
                elif r < 0.85:
                    rid = rng.choice(self.live)
                    await conn.execute(f"UPDATE {name} SET v = $2 WHERE id = $1", rid, self.counter)
                    ops.append(("update", rid, self.counter))
                else:
                    rid = self.live.pop(rng.randrange(len(self.live)))
                    await conn.execute(f"DELETE FROM {name} WHERE id = $1", rid)
                    ops.append(("delete", rid, None))
        self.expected += ops

    async def big(self, conn: Any, rows: int = 1500) -> None:
        """One transaction of ``rows`` inserts."""
        async with conn.transaction():
            for _ in range(rows):
                self.counter += 1
                self.next_id += 1
                await conn.execute(
                    f"INSERT INTO {self.table} VALUES ($1, $2, $3, 'big')",
                    self.next_id,
                    self.counter,
                    f"{self.counter}.0100",
                )
                self.live.append(self.next_id)
                self.expected.append(("insert", self.next_id, self.counter))


def check_stream(got: list[tuple[str, dict[str, Any], str]], work: Workload) -> None:
    """The stream holds every committed change of ``work`` once, in (lsn, n) order."""
    from ssmd.cdc.wal2json import parse_lsn

    ids = [i for _, _, i in got]
    assert len(ids) == len(set(ids)), "a change was stored twice"
    seen = [
        (b["op"], b["key"]["id"], None if b["op"] == "delete" else b["new"]["v"]) for _, b, _ in got
    ]
    missing = set(work.expected) - set(seen)
    extra = set(seen) - set(work.expected)
    assert not missing and not extra, (sorted(missing)[:5], sorted(extra)[:5])
    assert sorted(seen) == sorted(work.expected)  # both ways, multiplicities too
    order = [(parse_lsn(b["lsn"]), b["n"]) for _, b, _ in got]
    assert order == sorted(order)
    for subj, b, msg_id in got:
        assert subj == f"cdc.{work.table}.{b['op']}" and msg_id == f"{b['lsn']}:{b['n']}"
        if b["op"] == "insert":
            assert b["new"]["price"] == f"{b['new']['v']}.0100"  # exact numeric text


async def view_rows(dsn: str) -> dict[tuple[str, str], dict[str, str]]:
    """The ``instruments`` view as the cache stores it: (venue, instrument) to its fields."""
    import asyncpg

    from ssmd.cache.store import FIELDS, text

    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT " + ", ".join(FIELDS) + " FROM instruments")
    finally:
        await conn.close()
    return {
        (r["venue"], r["instrument_id"]): {f: t for f in FIELDS if (t := text(r[f])) is not None}
        for r in rows
    }


async def redis_rows(url: str) -> dict[tuple[str, str], dict[str, str]]:
    """Every ``ssmd:{venue}:inst:{instrument}`` hash in Redis, its view fields only."""
    import redis.asyncio as aioredis

    from ssmd.cache.store import FIELDS

    r = aioredis.from_url(url)
    try:
        out = {}
        async for key in r.scan_iter(match="ssmd:*:inst:*", count=1000):
            k = key.decode()
            _, venue, _, inst = k.split(":", 3)
            h = {a.decode(): b.decode() for a, b in (await r.hgetall(k)).items()}
            out[(venue, inst)] = {f: v for f, v in h.items() if f in FIELDS}
        return out
    finally:
        await r.aclose()


async def cache_equals(dsn: str, redis_url: str) -> bool:
    """Redis holds the (non-empty) ``instruments`` view, row for row."""
    view, cached = await view_rows(dsn), await redis_rows(redis_url)
    return bool(view) and view == cached
