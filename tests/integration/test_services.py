"""The services .ci/run starts are the ones ssmd needs.

NATS must be >= 2.10 with JetStream (streams, message-id deduplication),
PostgreSQL must be 15 with wal_level=logical and a working wal2json plugin
(CDC), Redis must answer in the db the fixture hands out (cache).
"""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import urlsplit

import pytest

from helpers import async_wait_until

pytestmark = pytest.mark.integration


async def test_nats_is_2_10_or_newer_with_jetstream(nats_url: str) -> None:
    import nats
    from nats.aio.msg import Msg

    nc = await nats.connect(nats_url, connect_timeout=5, allow_reconnect=False)
    try:
        version = nc.connected_server_version
        assert (version.major, version.minor) >= (2, 10), f"nats-server {version} < 2.10"

        # Core pub/sub round trip.
        subject = f"ci.core.{uuid.uuid4().hex}"
        received: list[bytes] = []

        async def on_msg(msg: Msg) -> None:
            received.append(msg.data)

        sub = await nc.subscribe(subject, cb=on_msg)
        await nc.publish(subject, b"ping")
        await nc.flush()
        await async_wait_until(lambda: received, timeout=5, message="core NATS message")
        assert received == [b"ping"]
        await sub.unsubscribe()

        # JetStream: account info, a throwaway stream, publish deduplication.
        js = nc.jetstream()
        await js.account_info()  # raises if JetStream is not enabled
        token = uuid.uuid4().hex
        stream = f"CI_CHECK_{token}"
        subject = f"ci.js.{token}"
        await js.add_stream(name=stream, subjects=[subject])
        try:
            headers = {"Nats-Msg-Id": f"msg-{token}"}
            first = await js.publish(subject, b"one", headers=headers)
            second = await js.publish(subject, b"one", headers=headers)
            assert first.stream == stream
            assert not first.duplicate
            assert second.duplicate is True
            assert second.seq == first.seq
            info = await js.stream_info(stream)
            assert info.state.messages == 1
        finally:
            await js.delete_stream(stream)
    finally:
        await nc.close()


async def test_postgres_15_logical_wal2json(pg_dsn: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(pg_dsn, timeout=5)
    try:
        assert await conn.fetchval("SELECT current_database()") == urlsplit(pg_dsn).path[1:]
        assert await conn.fetchval("SHOW wal_level") == "logical"
        version_num = int(await conn.fetchval("SHOW server_version_num"))
        assert version_num // 10000 == 15, f"PostgreSQL {version_num} is not 15"

        await conn.execute("CREATE TABLE ci_check (id integer PRIMARY KEY, note text NOT NULL)")
        slot = f"ci_check_{uuid.uuid4().hex[:16]}"
        await conn.execute("SELECT pg_create_logical_replication_slot($1, 'wal2json')", slot)
        try:
            await conn.execute("INSERT INTO ci_check (id, note) VALUES (1, 'hello')")
            rows = await conn.fetch(
                "SELECT data FROM pg_logical_slot_get_changes($1, NULL, NULL, 'format-version', '2')",
                slot,
            )
        finally:
            await conn.execute("SELECT pg_drop_replication_slot($1)", slot)
    finally:
        await conn.close()

    changes: list[dict[str, Any]] = [json.loads(row["data"]) for row in rows]
    assert [c["action"] for c in changes] == ["B", "I", "C"], changes
    insert = changes[1]
    assert insert["schema"] == "public"
    assert insert["table"] == "ci_check"
    assert {c["name"]: c["value"] for c in insert["columns"]} == {"id": 1, "note": "hello"}


def test_redis_ping_set_get_in_fixture_db(redis_url: str) -> None:
    import redis

    db = int(urlsplit(redis_url).path.lstrip("/"))
    client = redis.Redis.from_url(redis_url, decode_responses=True, socket_timeout=5)
    try:
        assert client.ping() is True
        assert client.dbsize() == 0, "redis_url fixture must hand out a flushed db"
        key = f"ci:check:{uuid.uuid4().hex}"
        assert client.set(key, "value", ex=60) is True
        assert client.get(key) == "value"
        assert f"db{db}" in client.info("keyspace"), f"key not stored in db {db}"
    finally:
        client.close()
