"""Confirmed publishing of CDC changes: a bounded window, re-sends, nothing dropped.

Every change is one JetStream message with ``Nats-Msg-Id = {lsn}:{n}``; a
re-send (no acknowledgement in time, the NATS connection came back, a
refusal that may pass) keeps the id, so the stream stores it once. At most
``window`` messages are in flight: :meth:`Publisher.publish` waits for room,
which bounds memory however large a transaction is. A message JetStream
refuses for good (error 400: over the stream's message size) cannot be
skipped without losing a change, so it ends the service with the reason
(:class:`ssmd.errors.SinkError`); :func:`fit` keeps bodies under the
server's max payload first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from typing import Any

import orjson

from ssmd.cdc.wal2json import Change
from ssmd.errors import SinkError

__all__ = ["Publisher", "fit"]

log = logging.getLogger("ssmd.cdc")

#: a column value larger than this is replaced when a body would not fit the server
BIG_VALUE = 64 << 10


def fit(change: Change, limit: int) -> tuple[bytes, list[str]]:
    """The body of ``change`` within ``limit`` bytes: values over 64 KiB are replaced by
    ``{"ssmd":"truncated","bytes":N}``; returns the body and the columns replaced."""
    body = change.body()
    if limit <= 0 or len(body) <= limit:
        return body, []
    cut: list[str] = []

    def shrink(cols: Any) -> dict[str, Any]:
        out = {}
        for k, v in cols.items():
            size = len(orjson.dumps(v))
            if size > BIG_VALUE:
                out[k] = {"ssmd": "truncated", "bytes": size}
                cut.append(k)
            else:
                out[k] = v
        return out

    smaller = Change(
        change.lsn,
        change.n,
        change.table,
        change.op,
        change.ts,
        change.key,
        shrink(change.new),
        shrink(change.old),
    )
    return smaller.body(), sorted(set(cut))


class Publisher:
    """Publishes changes through a :class:`ssmd.bus.nats.NatsTransport` (its ``sink``)."""

    def __init__(self, transport: Any, *, window: int = 1024, ack_timeout: float = 5.0) -> None:
        self.transport = transport
        self.window = max(1, window)
        self.ack_timeout = ack_timeout
        self._token = 0
        #: token -> (subject, body, msg id, sent at); insertion order = send order
        self._inflight: OrderedDict[int, tuple[str, bytes, str, float]] = OrderedDict()
        self._room = asyncio.Event()
        self._room.set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._failed: BaseException | None = None
        self._timer: asyncio.Task[None] | None = None
        self._sends: set[asyncio.Task[None]] = set()  # re-sends in progress
        # counters
        self.published = 0  # acknowledged
        self.duplicates = 0
        self.resent = 0
        self.truncated = 0

    async def start(self) -> None:
        await self.transport.start(self)
        self._timer = asyncio.create_task(self._resend_late(), name="ssmd-cdc-resend")

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer
            self._timer = None

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    async def publish(self, change: Change) -> None:
        """Send ``change`` (waits while the window is full)."""
        while len(self._inflight) >= self.window:
            self._check()
            self._room.clear()
            await self._room.wait()
        self._check()
        limit = int(getattr(self.transport, "max_payload", 0) or 0)
        body, cut = fit(change, limit - 1024 if limit else 0)
        if cut:
            self.truncated += 1
            log.warning(
                "cdc: %s of %s %s is over the server's max payload: column(s) %s truncated",
                change.msg_id,
                change.table,
                change.op,
                ", ".join(cut),
            )
        self._token += 1
        token = self._token
        self._inflight[token] = (change.subject, body, change.msg_id, time.monotonic())
        self._idle.clear()
        await self._send(token)

    async def _send(self, token: int) -> None:
        from ssmd.bus.sink import Refused, TransportDown

        entry = self._inflight.get(token)
        if entry is None:
            return
        subject, body, msg_id, _ = entry
        while True:
            try:
                await self.transport.send(subject, body, msg_id, token)
                return
            except TransportDown:
                await asyncio.sleep(0.25)  # NATS is reconnecting: send again when it is back
            except Refused as exc:
                self._fail(SinkError(f"cdc: NATS refused change {msg_id} for good: {exc}"))
                return

    async def wait_all(self) -> None:
        """Wait until everything published so far is acknowledged."""
        while self._inflight:
            self._check()
            await self._idle.wait()
        self._check()

    # -- the transport's callbacks ----------------------------------------

    def acked(
        self,
        token: int,
        ok: bool,
        duplicate: bool = False,
        error: str = "",
        permanent: bool = False,
    ) -> None:
        entry = self._inflight.get(token)
        if entry is None:
            return  # an answer to a message already sent again
        if not ok:
            if permanent:
                self._fail(SinkError(f"cdc: JetStream refused change {entry[2]} for good: {error}"))
                return
            log.warning("cdc: JetStream refused %s (%s); sending it again", entry[2], error)
            self._inflight[token] = (*entry[:3], time.monotonic())
            self.resent += 1
            self._spawn(token)
            return
        del self._inflight[token]
        self.published += 1
        if duplicate:
            self.duplicates += 1
        self._room.set()
        if not self._inflight:
            self._idle.set()

    def reconnected(self) -> None:
        """The NATS connection came back: what was in flight may be lost, send it again."""
        for token in list(self._inflight):
            self.resent += 1
            self._spawn(token)

    # -- internals ----------------------------------------------------------

    def _spawn(self, token: int) -> None:
        task = asyncio.get_running_loop().create_task(self._send(token))
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    def _fail(self, exc: BaseException) -> None:
        if self._failed is None:
            self._failed = exc
        self._room.set()
        self._idle.set()

    def _check(self) -> None:
        if self._failed is not None:
            raise self._failed

    async def _resend_late(self) -> None:
        period = max(0.05, self.ack_timeout / 4)
        while True:
            await asyncio.sleep(period)
            if not self._inflight or not self.transport.connected:
                continue
            limit = time.monotonic() - self.ack_timeout
            late = [t for t, (_, _, _, at) in self._inflight.items() if at <= limit]
            for token in late:
                entry = self._inflight[token]
                self._inflight[token] = (*entry[:3], time.monotonic())
                self.resent += 1
                await self._send(token)
            if late:
                log.warning(
                    "cdc: %d change(s) unacknowledged after %.1fs, sent again",
                    len(late),
                    self.ack_timeout,
                )
