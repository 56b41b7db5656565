"""``ssmd lifecycle run``: the bus's Kalshi lifecycle messages into PostgreSQL.

A durable pull consumer (``lifecycle``) of the Kalshi stream, filtered on
``{env}.kalshi.*.json.lifecycle.>``, resumes where it last acknowledged.
Each line of each message is applied in its own transaction
(:func:`ssmd.lifecycle.apply.apply_event`), then the batch is acknowledged:
a crash replays it, and the dedupe key (stream, sequence, line) makes the
replay change nothing. A line that cannot be read, or that PostgreSQL
refuses as data (a NUL character in a string, a value out of range), is
published to ``deadletter.lifecycle`` with the reason, and counted. A
PostgreSQL restart is ridden out: the service reconnects with backoff and
applies the interrupted line again (:class:`~ssmd.secmaster.reconnect.PgSession`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import orjson

from ssmd.errors import ParseError
from ssmd.lifecycle.apply import apply_event, parse_line
from ssmd.secmaster.reconnect import PgSession, StoppedInOutage, first_line

__all__ = ["LifecycleService", "LifecycleStats"]

log = logging.getLogger("ssmd.lifecycle")

DEADLETTER_SUBJECT = "deadletter.lifecycle"


@dataclass
class LifecycleStats:
    stream: str
    messages: int = 0
    events: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)  # applied, recorded, unknown, …
    deadletters: int = 0
    reconnects: int = 0  # PostgreSQL outages ridden out
    last_seq: int | None = None
    last_apply: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "stream": self.stream,
            "messages": self.messages,
            "events": self.events,
            "outcomes": dict(self.outcomes),
            "deadletters": self.deadletters,
            "reconnects": self.reconnects,
            "last_seq": self.last_seq,
            "last_apply": self.last_apply,
        }


class LifecycleService:
    """Applies Kalshi lifecycle events from the bus until stopped.

    :meth:`run` consumes JetStream (``ssmd lifecycle run``);
    :meth:`run_in_process` consumes the in-process bus of a capture in the
    same process (``ssmd demo``). Both apply and acknowledge the same way.
    """

    def __init__(
        self,
        dsn: str,
        nats_url: str | None = None,
        *,
        env: str = "prod",
        durable: str = "lifecycle",
        batch: int = 500,
    ) -> None:
        self.dsn = dsn
        self.nats_url = nats_url
        self.env = env
        self.durable = durable
        self.batch = batch
        self.stream = f"{env}_kalshi".upper()
        self.filter_subject = f"{env}.kalshi.*.json.lifecycle.>"
        self.stats = LifecycleStats(self.stream)
        self.started = asyncio.Event()
        self._source: Any = None
        self._busy = False  # between a fetch that returned messages and their ack

    async def run(self, stop: asyncio.Event) -> LifecycleStats:
        """Consume the Kalshi stream on JetStream (``nats_url``), resuming at the ack floor."""
        from ssmd.bus.nats import JetStreamSource, connect, ensure_streams
        from ssmd.bus.streams import spec_for_venue, stream_specs

        if not self.nats_url:
            raise ValueError("LifecycleService.run needs a NATS URL")
        nc = await connect(self.nats_url, name="ssmd-lifecycle")
        db = self._session()
        try:
            specs = stream_specs(self.env)
            js = nc.jetstream()
            await ensure_streams(
                js, [spec_for_venue("kalshi", specs), *[s for s in specs if s.name == "DEADLETTER"]]
            )
            await db.open()
            source = JetStreamSource(
                nc, self.stream, self.durable, batch=self.batch, filter_subject=self.filter_subject
            )
            await source.start(await self._resume_at(js))

            async def deadletter(subject: str, body: bytes, msg_id: str) -> None:
                await js.publish(subject, body, headers={"Nats-Msg-Id": msg_id})

            await self.consume(db, source, deadletter, stop)
        finally:
            await db.close()
            await nc.close()
        return self.stats

    async def run_in_process(self, bus: Any, stop: asyncio.Event) -> LifecycleStats:
        """Consume the Kalshi stream of ``bus`` (a :class:`~ssmd.bus.memory.MemoryBus` that a
        capture in this process publishes to) from its start; dead letters go to the bus's
        ``DEADLETTER`` stream when it has one, else they are logged and counted only."""
        db = self._session()
        await db.open()
        try:
            source = bus.source(self.stream, self.durable, filter_subject=self.filter_subject)
            await source.start()

            async def deadletter(subject: str, body: bytes, msg_id: str) -> None:
                if "DEADLETTER" in bus.streams:
                    bus.publish(subject, body, msg_id)

            await self.consume(db, source, deadletter, stop)
        finally:
            await db.close()
        return self.stats

    def _session(self) -> PgSession:
        from ssmd.secmaster.db import check_schema

        return PgSession(self.dsn, "lifecycle", on_connect=check_schema, logger=log)

    async def consume(
        self,
        db: PgSession,
        source: Any,
        deadletter: Callable[[str, bytes, str], Awaitable[None]],
        stop: asyncio.Event,
    ) -> None:
        """Fetch, apply every line, acknowledge the batch; until ``stop`` is set.

        Stopped while PostgreSQL is away, it ends without acknowledging the
        batch in hand: the next run applies it (again, for its first lines).
        """
        self._source = source
        self.started.set()
        try:
            while not stop.is_set():
                msgs = await source.fetch(self.batch, 0.25)
                if not msgs:
                    continue
                self._busy = True
                for seq, data in msgs:
                    await self._message(db, deadletter, seq, data, stop)
                await source.ack_upto(msgs[-1][0])
                self.stats.last_seq = msgs[-1][0]
                self._busy = False
        except StoppedInOutage:
            log.warning(
                "lifecycle: stopped while PostgreSQL was away; the batch is not acknowledged"
            )
        finally:
            self.stats.reconnects = db.outages
        await source.close()

    async def caught_up(self) -> bool:
        """Whether the consumer has applied everything its source holds so far."""
        source = self._source
        return source is not None and (await source.pending()) == 0 and not self._busy

    async def _resume_at(self, js: Any) -> int | None:
        """Where the durable consumer stopped acknowledging (``None``: from the start)."""
        from nats.js.errors import NotFoundError

        try:
            info = await js.consumer_info(self.stream, self.durable)
        except NotFoundError:
            return None
        floor = info.ack_floor.stream_seq if info.ack_floor else 0
        return floor or None

    async def _message(
        self,
        db: PgSession,
        deadletter: Callable[[str, bytes, str], Awaitable[None]],
        seq: int,
        data: bytes,
        stop: asyncio.Event,
    ) -> None:
        import asyncpg  # type: ignore[import-untyped]

        st = self.stats
        st.messages += 1
        for index, line in enumerate(x for x in data.split(b"\n") if x.strip()):
            try:
                ev = parse_line(line, self.stream, seq, index)
            except ParseError as exc:
                await self._deadletter(deadletter, seq, index, line, str(exc))
                continue
            if ev is None:
                continue
            try:
                outcome = await db.call(partial(apply_event, ev=ev), stop)
            except (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError) as exc:
                # the event's own data (a NUL in a string, a value out of range): its
                # transaction rolled back; it goes aside, the stream goes on
                reason = f"PostgreSQL refused it: {first_line(exc)}"
                await self._deadletter(deadletter, seq, index, line, reason)
                continue
            st.events += 1
            st.outcomes[outcome] += 1
            st.last_apply = time.time()
            if outcome == "unknown":
                log.info(
                    "lifecycle: %s %s for a market not in the secmaster (recorded)",
                    ev.event_type,
                    ev.ticker,
                )

    async def _deadletter(
        self,
        deadletter: Callable[[str, bytes, str], Awaitable[None]],
        seq: int,
        index: int,
        line: bytes,
        reason: str,
    ) -> None:
        self.stats.deadletters += 1
        log.warning(
            "lifecycle: %s seq %d line %d: %s; sent to %s",
            self.stream,
            seq,
            index,
            reason,
            DEADLETTER_SUBJECT,
        )
        body = orjson.dumps(
            {
                "reason": reason,
                "stream": self.stream,
                "seq": seq,
                "index": index,
                "line": line.decode("utf-8", "replace"),
            }
        )
        await deadletter(DEADLETTER_SUBJECT, body, f"lifecycle:{self.stream}:{seq}:{index}")
