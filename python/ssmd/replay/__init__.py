"""``ssmd replay``: archive lines back onto the bus, in ``rx`` order (docs/data.md).

The archive is read through the merging reader (every writer's files, all
venues chosen, ``rx`` order), each line's subject is moved under the chosen
environment (``prod.kraken.json.trade.BTC_USD`` → ``{env}.kraken.json…``,
in the subject and in the line's ``subj``) and the archiver's stream
sequence (``"seq"``) is dropped, since the line gets a new one in the new
stream. Lines are published through the connector's confirmed publisher
(:class:`~ssmd.bus.sink.BusSink`: micro-batches per subject, a
``Nats-Msg-Id`` per message, acknowledgements awaited at the end) with back
pressure instead of drops (consecutive lines of one subject go as one
message, and nothing is merged across subjects, so the order holds), at the recorded pace (``speed=1``), faster
(``speed=10``) or as fast as the bus takes them (``speed=None``). The
``prod`` environment is refused unless ``allow_prod`` is set.

:func:`replay` takes the sinks from a factory, so the same code publishes to
NATS JetStream (``ssmd replay --nats``) and to the in-process bus.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ssmd.archive import ArchiveReader, OnWarning, chunks, list_files
from ssmd.errors import ConfigError, SinkError

__all__ = ["ReplayResult", "archive_lines", "check_env", "replay", "rewrite"]

log = logging.getLogger("ssmd.replay")

_ENV = re.compile(r"[a-z0-9][a-z0-9_-]*")

#: ``(venue) -> sink``; the sink is a started :class:`~ssmd.bus.sink.BusSink`
SinkFactory = Callable[[str], Awaitable[Any]]


def check_env(env: str, allow_prod: bool) -> str:
    """The target environment: a subject token, and never ``prod`` unless allowed."""
    if not _ENV.fullmatch(env):
        raise ConfigError(
            f"bad --env {env!r}: lower-case letters, digits, '-' and '_' (a subject token)"
        )
    if env == "prod" and not allow_prod:
        raise ConfigError(
            "replaying onto prod would mix old data into live streams: choose another --env,"
            " or pass --allow-prod if that is really what you want"
        )
    return env


def archive_lines(
    root: str | os.PathLike[str],
    venues: Iterable[str],
    first_day: str | None,
    last_day: str | None,
    rx_from: int | None,
    rx_to: int | None,
    on_warning: OnWarning | None = None,
) -> Iterable[bytes]:
    """Lines of ``venues`` in ``rx`` order (all venues' files merged), without newlines."""
    venues = list(venues)
    files = [
        f for v in venues for f in list_files(root, v, first_day, last_day, include_parts=True)
    ]
    if not files:
        which = ", ".join(venues) or "any venue"
        raise ConfigError(f"no archive files in {root} for {which} in that range")
    reader = ArchiveReader(files, rx_from=rx_from, rx_to=rx_to)
    for chunk in chunks(reader, on_warning):
        lines = chunk.split(b"\n")
        lines.pop()
        yield from lines


def rewrite(line: bytes, env: bytes) -> tuple[str, str, bytes]:
    """``(venue, subject, line)`` of an archive line moved under ``env``, without ``seq``."""
    if line.startswith(b'{"rx":'):
        i = line.find(b",", 6)
        if line.startswith(b',"seq":', i):
            j = line.index(b',"conn":', i)
            line = line[:i] + line[j:]
    s = line.index(b'"subj":"') + 8
    e = line.index(b'"', s)
    dot = line.index(b".", s, e)
    subject = env + line[dot:e]
    venue_end = line.find(b".", dot + 1, e)
    venue = line[dot + 1 : venue_end].decode()
    return venue, subject.decode(), line[:s] + subject + line[e:]


@dataclass
class ReplayResult:
    lines: int = 0
    per_venue: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    #: span of the replayed lines' receive times, ns
    first_rx: int | None = None
    last_rx: int | None = None
    dropped: int = 0
    acked: int = 0


async def replay(
    lines: Iterable[bytes],
    sinks: SinkFactory,
    env: str,
    *,
    speed: float | None = 1.0,
    run_id: str | None = None,
    batch: int = 512,
    clock: Callable[[], float] = time.monotonic,
) -> ReplayResult:
    """Publish ``lines`` (archive lines in ``rx`` order) under ``env``.

    ``speed``: 1 is the recorded pace, 10 ten times faster, ``None`` as fast
    as the bus confirms. Lines are never dropped: when the publisher's queue
    is past its high-water mark, reading waits. Every sink is drained and
    closed at the end; lines the bus never confirmed are a
    :class:`~ssmd.errors.SinkError`.
    """
    if speed is not None and speed <= 0:
        raise ConfigError(f"bad speed {speed}: a positive number, or max")
    run = run_id or f"replay-{os.getpid()}-{time.time_ns():x}"
    target = env.encode()
    opened: dict[str, Any] = {}
    result = ReplayResult()
    started = clock()
    n = 0
    run_subject: str | None = None
    run_lines: list[bytes] = []
    run_sink: Any = None

    def send() -> None:
        # consecutive lines of one subject become one bus message (the archiver
        # numbers them [M, i]); the sink merges nothing more, so order holds
        nonlocal run_lines
        if run_lines:
            run_sink.put(
                run_subject, b"".join(run_lines), f"{run}:{n - len(run_lines)}", len(run_lines)
            )
            run_lines = []

    try:
        for line in lines:
            rx = _rx(line)
            if result.first_rx is None:
                result.first_rx = rx
            result.last_rx = rx
            if speed is not None and rx is not None and result.first_rx is not None:
                due = started + (rx - result.first_rx) / 1e9 / speed
                wait = due - clock()
                if wait > 0.001:
                    send()
                    await asyncio.sleep(wait)
            venue, subject, out = rewrite(line, target)
            sink = opened.get(venue)
            if sink is None:
                sink = opened[venue] = await sinks(venue)
                sink.merge_bytes = 0
            if subject != run_subject or len(run_lines) >= batch:
                send()
                run_subject, run_sink = subject, sink
            run_lines.append(out + b"\n")
            n += 1
            result.per_venue[venue] = result.per_venue.get(venue, 0) + 1
            if n % batch == 0:
                await _backpressure(sink)
        send()
        result.lines = n
    finally:
        for venue, sink in opened.items():
            await sink.aclose()
            stats = sink.stats()
            result.dropped += int(stats.get("dropped_lines", 0))
            result.acked += int(stats.get("lines_acked", 0))
            log.info("replay %s: %s", venue, stats)
    result.seconds = clock() - started
    if result.dropped or result.acked < result.lines:
        raise SinkError(
            f"replay: the bus confirmed {result.acked} of {result.lines} lines"
            f" ({result.dropped} dropped)"
        )
    return result


async def _backpressure(sink: Any) -> None:
    """Wait while the sink holds more than its high-water mark (never drop)."""
    await asyncio.sleep(0)
    while sink.queued_bytes > sink.high_water:
        await asyncio.sleep(0.002)


def _rx(line: bytes) -> int | None:
    if not line.startswith(b'{"rx":'):
        return None
    end = 6
    while end < len(line) and 48 <= line[end] <= 57:
        end += 1
    return int(line[6:end]) if end > 6 else None
