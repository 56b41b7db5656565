"""The bus path on a real nats-server: publishing, the archiver, end to end.

* ``test_publish``: the same Kraken envelope lines published to JetStream
  by ssmd's bus sink (micro-batches per subject, ids, async confirmations)
  and by plain nats-py ``publish_async`` (one message per line), until every
  message is confirmed.
* ``test_drain``: a stream filled beforehand is drained into the archive by
  ssmd's archiver (Rust seq stamping and gzip writer, one ack per flush)
  and by a plain nats-py archiver (``fetch`` + per-message ``ack`` + stdlib
  ``gzip``).
* ``test_end_to_end``: ``tools/bench_bus.py e2e``: simulator, connector,
  nats-server and archiver as separate processes, counted for zero loss.

Needs ``NATS_URL`` (``bash .ci/services.sh run -- …``); timed run:
``python -m pytest benches/python/bench_bus.py --benchmark-only``.
``extra_info`` has ``lines_per_s``.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ssmd.bus.archiver import VenueArchiver
from ssmd.bus.nats import JetStreamSource, connect, ensure_streams, open_bus_sink
from ssmd.bus.streams import spec_for_venue, stream_specs
from ssmd.core import Processor
from ssmd.samples import frames

TIMED = 300_000
SMOKE = 3_000
CHUNK = 32  # lines per connector batch: grouped per subject like Batch.groups()


@pytest.fixture
def nats_env() -> Iterator[tuple[str, str]]:
    url = os.environ.get("NATS_URL", "").strip()
    if not url:
        pytest.skip("NATS_URL not set: run under .ci/run or bash .ci/services.sh run -- …")
    env = "b" + uuid.uuid4().hex[:8]
    yield url, env

    async def cleanup() -> None:
        nc = await connect(url)
        js = nc.jetstream()
        for info in await js.streams_info():
            if info.config.name.startswith(env.upper() + "_"):
                await js.delete_stream(info.config.name)
        await nc.close()

    asyncio.run(cleanup())


def _lines(n: int, env: str) -> list[bytes]:
    batch = Processor("kraken", "bench", env).process(frames("kraken", 20_000), time.time_ns())
    src = batch.lines().splitlines(keepends=True)
    return [src[i % len(src)] for i in range(n)]


def _subject(line: bytes) -> str:
    return line.split(b'"subj":"', 1)[1].split(b'"', 1)[0].decode()


Group = tuple[str, bytes, int, str]


def _groups(lines: list[bytes]) -> list[list[Group]]:
    """Connector batches of ``CHUNK`` lines, each grouped per subject like Batch.groups()."""
    out = []
    for start in range(0, len(lines), CHUNK):
        g: dict[str, list[bytes]] = {}
        for line in lines[start : start + CHUNK]:
            g.setdefault(_subject(line), []).append(line)
        out.append(
            [
                (s, b"".join(ls), len(ls), f"bench:{start}.{i}")
                for i, (s, ls) in enumerate(g.items())
            ]
        )
    return out


async def _publish_ssmd(url: str, env: str, batches: list[list[Group]]) -> int:
    """The connector's way: one batch per loop turn, so the sink sends while lines come in."""
    sink, nc = await open_bus_sink("kraken", env=env, url=url, max_pending_bytes=256 << 20)
    for groups in batches:
        for subj, data, count, msg_id in groups:
            sink.put(subj, data, msg_id, count)
        await asyncio.sleep(0)
        if sink.pending_bytes > 192 << 20:
            await sink.drain()
    await sink.aclose()
    await nc.close()
    return int(sink.published)


async def _fill(url: str, env: str, batches: list[list[Group]]) -> int:
    """Fill the stream with exactly one message per group (no merging); returns the last seq."""
    nc = await connect(url)
    js = nc.jetstream(publish_async_max_pending=8000)
    await ensure_streams(js, [spec_for_venue("kraken", stream_specs(env))])
    futs = []
    for groups in batches:
        for subj, data, _count, msg_id in groups:
            futs.append(await js.publish_async(subj, data, headers={"Nats-Msg-Id": msg_id}))
        if len(futs) >= 8000:
            await asyncio.gather(*futs)
            futs.clear()
    await asyncio.gather(*futs)
    info = await js.stream_info(spec_for_venue("kraken", stream_specs(env)).name)
    await nc.close()
    return int(info.state.last_seq)


async def _publish_plain(url: str, env: str, lines: list[bytes]) -> None:
    nc = await connect(url)
    js = nc.jetstream(publish_async_max_pending=8000)
    await ensure_streams(js, [spec_for_venue("kraken", stream_specs(env))])
    futs = []
    for i, line in enumerate(lines):
        futs.append(await js.publish_async(_subject(line), line, headers={"Nats-Msg-Id": f"p:{i}"}))
        if len(futs) >= 8000:
            await asyncio.gather(*futs)
            futs.clear()
    await asyncio.gather(*futs)
    await nc.close()


@pytest.mark.parametrize("impl", ["ssmd-bus-sink", "nats-py-publish-async"])
def test_publish(benchmark: Any, nats_env: tuple[str, str], impl: str) -> None:
    url, env = nats_env
    n = SMOKE if benchmark.disabled else TIMED
    lines = _lines(n, env)
    batches = _groups(lines)
    benchmark.group = "bus publish"
    messages: list[int] = []

    def run() -> None:
        if impl == "ssmd-bus-sink":
            messages.append(asyncio.run(_publish_ssmd(url, env, batches)))
        else:
            asyncio.run(_publish_plain(url, env, lines))
            messages.append(n)

    t0 = time.perf_counter()
    benchmark.pedantic(run, rounds=1, iterations=1)
    secs = time.perf_counter() - t0
    benchmark.extra_info.update(lines=n, lines_per_s=round(n / secs), bus_messages=messages[0])


async def _drain_ssmd(url: str, env: str, root: Path, last: int) -> int:
    nc = await connect(url)
    arch = VenueArchiver(
        JetStreamSource(nc, spec_for_venue("kraken", stream_specs(env)).name),
        root,
        "kraken",
        env=env,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(arch.run(stop))
    deadline = time.monotonic() + 600
    while (arch.stats.last_seq or 0) < last and not task.done() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    stop.set()
    await task
    await nc.close()
    return arch.stats.lines


async def _drain_plain(url: str, env: str, root: Path, last: int) -> int:
    """The obvious nats-py archiver: fetch, gzip.write per message, ack per message."""
    from nats.errors import TimeoutError as NatsTimeout

    nc = await connect(url)
    js = nc.jetstream()
    stream = spec_for_venue("kraken", stream_specs(env)).name
    psub = await js.pull_subscribe(f"{env}.kraken.>", durable="plain", stream=stream)
    n = seq = 0
    deadline = time.monotonic() + 600
    with gzip.open(root / "plain.jsonl.gz", "wb", compresslevel=1) as out:
        while seq < last and time.monotonic() < deadline:
            try:
                msgs = await psub.fetch(1000, timeout=1)
            except NatsTimeout:
                continue
            for m in msgs:
                out.write(m.data)
                n += m.data.count(b"\n")
                seq = m.metadata.sequence.stream
            out.flush()
            os.fsync(out.fileno())
            for m in msgs:
                await m.ack()
    await nc.close()
    return n


@pytest.mark.parametrize("impl", ["ssmd-archiver", "nats-py-fetch-gzip"])
def test_drain(benchmark: Any, nats_env: tuple[str, str], impl: str, tmp_path: Path) -> None:
    url, env = nats_env
    n = SMOKE if benchmark.disabled else TIMED
    batches = _groups(_lines(n, env))
    last = asyncio.run(_fill(url, env, batches))
    assert last == sum(len(b) for b in batches)
    benchmark.group = "bus drain"
    got: list[int] = []

    def run() -> None:
        fn = _drain_ssmd if impl == "ssmd-archiver" else _drain_plain
        got.append(asyncio.run(fn(url, env, tmp_path, last)))

    t0 = time.perf_counter()
    benchmark.pedantic(run, rounds=1, iterations=1)
    secs = time.perf_counter() - t0
    assert got == [n]
    benchmark.extra_info.update(lines=n, lines_per_s=round(n / secs), bus_messages=last)


def test_end_to_end(benchmark: Any, nats_env: tuple[str, str]) -> None:
    """Simulator -> connector -> nats-server -> archiver, each its own process."""
    tool = Path(__file__).resolve().parents[2] / "tools" / "bench_bus.py"
    seconds = "3" if benchmark.disabled else "20"
    result: dict[str, Any] = {}

    def run() -> None:
        out = subprocess.run(
            [sys.executable, str(tool), "e2e", "--venue", "kraken", "--seconds", seconds],
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
        )
        result.update(json.loads(out.stdout[out.stdout.index("{") :]))

    benchmark.pedantic(run, rounds=1, iterations=1)
    assert result["zero_loss"], result
    benchmark.extra_info.update(result)
