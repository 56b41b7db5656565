"""Suite-wide fixtures: the real services started by ``.ci/run``.

``.ci/run`` (or ``bash .ci/services.sh run -- python -m pytest -m integration``)
starts nats-server with JetStream, PostgreSQL 15 with wal2json and redis-server
on loopback and exports their addresses:

* ``NATS_URL``      nats://127.0.0.1:<port>
* ``DATABASE_URL``  postgresql://ssmd@127.0.0.1:<port>/ssmd (superuser role)
* ``REDIS_URL``     redis://127.0.0.1:<port>/0

Fixtures here hand each test its own slice of a service (``pg_dsn``: a fresh
database; ``redis_url``: a flushed db number; NATS tests pick unique stream and
subject names). When a variable is unset or its server does not answer, the
fixture skips with the reason, unless ``SSMD_REQUIRE_SERVICES=1`` (set by
``.ci/run``), where a missing service is a failure instead.

The venues are simulated: ``make_sim`` starts ``ssmd sim`` servers on
loopback and stops every one at teardown, so no test needs its own
``try/finally``.

Keep this file to services and simulators; area-specific fixtures go in
subdirectory conftests. Nothing here imports ``ssmd`` at module level.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NoReturn, TypeVar
from urllib.parse import SplitResult, urlsplit, urlunsplit

import pytest

T = TypeVar("T")

_CONNECT_TIMEOUT = 3.0
_REDIS_DBS = 16  # redis-server default `databases`
_redis_db_counter = itertools.count()

_START_HINT = {
    "NATS_URL": "run under .ci/run or start nats-server -js",
    "DATABASE_URL": "run under .ci/run or start PostgreSQL 15 with wal_level=logical and wal2json",
    "REDIS_URL": "run under .ci/run or start redis-server",
}


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("SSMD_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (SSMD_REQUIRE_SERVICES=1: services are required)", pytrace=False)
    pytest.skip(reason)


def _service_url(var: str, default_port: int) -> SplitResult:
    """Read ``var``, check its host:port accepts TCP connections, return it parsed."""
    raw = os.environ.get(var, "").strip()
    if not raw:
        _unavailable(f"{var} not set: {_START_HINT[var]}")
    url = urlsplit(raw)
    host = url.hostname or "127.0.0.1"
    port = url.port or default_port
    error: OSError | None = None
    try:
        with socket.create_connection((host, port), timeout=_CONNECT_TIMEOUT):
            pass
    except OSError as exc:
        error = exc
    if error is not None:  # outside the except block: no chained traceback
        _unavailable(f"{var}={raw} is unreachable ({host}:{port}: {error}): {_START_HINT[var]}")
    return url


def _run_async(make_coro: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion from sync fixture code.

    It runs in a worker thread with its own ``asyncio.run`` so it never touches
    the event loop pytest-asyncio manages for the test.
    """

    async def main() -> T:
        return await make_coro()

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="conftest-async") as pool:
        return pool.submit(asyncio.run, main()).result()


@pytest.fixture(scope="session")
def nats_url() -> str:
    """URL of the JetStream-enabled nats-server from ``NATS_URL``.

    Shared by the session: tests must use unique stream names and subjects
    (e.g. suffixed with ``uuid.uuid4().hex``) and delete what they create.
    """
    return urlunsplit(_service_url("NATS_URL", 4222))


@pytest.fixture
def bus_env(nats_url: str) -> Iterator[str]:
    """A fresh ``SSMD_ENV`` (stream names ``{ENV}_*``) on the shared server; its streams
    are deleted afterwards."""
    env = "t" + uuid.uuid4().hex[:10]
    yield env

    async def cleanup() -> None:
        import nats

        nc = await nats.connect(nats_url)
        js = nc.jetstream()
        for info in await js.streams_info():
            if info.config.name.startswith(env.upper() + "_"):
                await js.delete_stream(info.config.name)
        await nc.close()

    _run_async(cleanup)


@pytest.fixture
def pg_dsn() -> Iterator[str]:
    """DSN of a fresh, uniquely named PostgreSQL database, dropped afterwards.

    The role is the superuser from ``DATABASE_URL``, so tests may create
    logical replication slots (wal2json); leftover slots are dropped too.
    """
    url = _service_url("DATABASE_URL", 5432)
    import asyncpg  # test extra; imported lazily so collection never needs it

    admin_dsn = urlunsplit(url)
    name = f"ssmd_test_{uuid.uuid4().hex[:16]}"

    async def create() -> None:
        conn = await asyncpg.connect(admin_dsn, timeout=_CONNECT_TIMEOUT)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    async def drop() -> None:
        conn = await asyncpg.connect(admin_dsn, timeout=_CONNECT_TIMEOUT)
        try:
            # Terminate and wait (up to 10 s each) for every backend and
            # walsender on the database, which releases the slots they hold;
            # then drop its replication slots, which would block DROP DATABASE.
            await conn.execute(
                "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity"
                " WHERE datname = $1 AND pid <> pg_backend_pid()",
                name,
            )
            await conn.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
                " WHERE database = $1",
                name,
            )
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    _run_async(create)
    try:
        yield urlunsplit(url._replace(path=f"/{name}"))
    finally:
        _run_async(drop)


@pytest.fixture
def redis_url() -> Iterator[str]:
    """URL of a Redis logical database (cycling through 0-15), flushed before use."""
    url = _service_url("REDIS_URL", 6379)
    import redis  # test extra; imported lazily so collection never needs it

    db = next(_redis_db_counter) % _REDIS_DBS
    dsn = urlunsplit(url._replace(path=f"/{db}"))
    client = redis.Redis.from_url(dsn, socket_timeout=_CONNECT_TIMEOUT)
    try:
        client.flushdb()
    finally:
        client.close()
    yield dsn


@pytest.fixture
async def make_sim() -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """``await make_sim(venue, **start_sim_kwargs)``: a simulator on loopback, stopped at teardown."""
    from ssmd.sim import start_sim

    sims: list[Any] = []

    async def make(venue: str, **kw: Any) -> Any:
        sim = await start_sim(venue, **kw)
        sims.append(sim)
        return sim

    try:
        yield make
    finally:
        for sim in reversed(sims):
            await sim.stop()
