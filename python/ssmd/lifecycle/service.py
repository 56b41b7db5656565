"""``ssmd lifecycle run``: the bus's Kalshi lifecycle messages into PostgreSQL.

A durable pull consumer (``lifecycle``) of the Kalshi stream, filtered on
``{env}.kalshi.*.json.lifecycle.>``, resumes where it last acknowledged.
Each line of each message is applied in its own transaction
(:func:`ssmd.lifecycle.apply.apply_event`), then the batch is acknowledged:
a crash replays it, and the dedupe key (stream, sequence, line) makes the
replay change nothing. A line that cannot be read is published to
``deadletter.lifecycle`` with the reason, and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson

from ssmd.errors import ParseError
from ssmd.lifecycle.apply import apply_event, parse_line

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
    last_seq: int | None = None
    last_apply: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "stream": self.stream,
            "messages": self.messages,
            "events": self.events,
            "outcomes": dict(self.outcomes),
            "deadletters": self.deadletters,
            "last_seq": self.last_seq,
            "last_apply": self.last_apply,
        }


class LifecycleService:
    """Applies Kalshi lifecycle events from JetStream until stopped."""

    def __init__(
        self,
        dsn: str,
        nats_url: str,
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
        self.stats = LifecycleStats(self.stream)
        self.started = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> LifecycleStats:
        from ssmd.bus.nats import JetStreamSource, connect, ensure_streams
        from ssmd.bus.streams import spec_for_venue, stream_specs
        from ssmd.secmaster.db import check_schema
        from ssmd.secmaster.db import connect as pg_connect

        nc = await connect(self.nats_url, name="ssmd-lifecycle")
        conn = None
        try:
            specs = stream_specs(self.env)
            js = nc.jetstream()
            await ensure_streams(
                js, [spec_for_venue("kalshi", specs), *[s for s in specs if s.name == "DEADLETTER"]]
            )
            conn = await pg_connect(self.dsn)
            await check_schema(conn)
            source = JetStreamSource(
                nc,
                self.stream,
                self.durable,
                batch=self.batch,
                filter_subject=f"{self.env}.kalshi.*.json.lifecycle.>",
            )
            await source.start(await self._resume_at(js))
            self.started.set()
            while not stop.is_set():
                msgs = await source.fetch(self.batch, 0.25)
                if not msgs:
                    continue
                for seq, data in msgs:
                    await self._message(conn, nc, seq, data)
                await source.ack_upto(msgs[-1][0])
                self.stats.last_seq = msgs[-1][0]
            await source.close()
        finally:
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()
            await nc.close()
        return self.stats

    async def _resume_at(self, js: Any) -> int | None:
        """Where the durable consumer stopped acknowledging (``None``: from the start)."""
        from nats.js.errors import NotFoundError

        try:
            info = await js.consumer_info(self.stream, self.durable)
        except NotFoundError:
            return None
        floor = info.ack_floor.stream_seq if info.ack_floor else 0
        return floor or None

    async def _message(self, conn: Any, nc: Any, seq: int, data: bytes) -> None:
        st = self.stats
        st.messages += 1
        for index, line in enumerate(x for x in data.split(b"\n") if x.strip()):
            try:
                ev = parse_line(line, self.stream, seq, index)
            except ParseError as exc:
                await self._deadletter(nc, seq, index, line, str(exc))
                continue
            if ev is None:
                continue
            outcome = await apply_event(conn, ev)
            st.events += 1
            st.outcomes[outcome] += 1
            st.last_apply = time.time()
            if outcome == "unknown":
                log.info(
                    "lifecycle: %s %s for a market not in the secmaster (recorded)",
                    ev.event_type,
                    ev.ticker,
                )

    async def _deadletter(self, nc: Any, seq: int, index: int, line: bytes, reason: str) -> None:
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
        js = nc.jetstream()
        await js.publish(
            DEADLETTER_SUBJECT,
            body,
            headers={"Nats-Msg-Id": f"lifecycle:{self.stream}:{seq}:{index}"},
        )
