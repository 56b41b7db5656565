"""The archiver's durable pull consumer (``AckPolicy.ALL``), fetching in batches with its own pull requests."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

import orjson

from ssmd.bus.nats.admin import api_error
from ssmd.bus.nats.direct import (
    ack_stream_seq,
    drop_subscription,
    header_status,
    subscribe_direct,
)
from ssmd.errors import ConfigError, SinkError

__all__ = ["JetStreamSource"]


log = logging.getLogger("ssmd.bus")


class JetStreamSource:
    """A durable pull consumer read in batches (the archiver's input).

    :meth:`fetch` returns ``(stream_seq, payload)`` pairs in stream order;
    :meth:`ack_upto` acknowledges everything delivered up to a sequence (one
    confirmed ``+ACK`` on the last message: ``AckPolicy.ALL``).
    """

    def __init__(
        self,
        nc: Any,
        stream: str,
        durable: str = "archiver",
        *,
        batch: int = 4096,
        max_bytes: int = 32 << 20,
        ack_wait: float = 120.0,
        expires: float = 2.0,
        filter_subject: str | None = None,
        filter_subjects: Sequence[str] | None = None,
    ) -> None:
        self.nc = nc
        self.stream = stream
        self.durable = durable
        #: only messages of this subject (``None``: every message of the stream)
        self.filter_subject = filter_subject
        #: or only those of any of these subjects (nats-server 2.10 and later)
        self.filter_subjects = list(filter_subjects) if filter_subjects else None
        self.batch = batch
        self.max_bytes = max_bytes
        self.ack_wait = ack_wait
        self.expires = expires
        self._buf: deque[tuple[int, bytes, str | bytes]] = deque()
        self._have = asyncio.Event()
        self._inbox = ""
        self._sub: Any = None
        self._outstanding = 0  # messages asked for and not yet delivered
        self._req_at = 0.0
        self._last_reply: tuple[int, str | bytes] | None = None
        self.delivered = 0
        #: messages taken off the socket without nats-py's Msg (see direct_delivery)
        self.direct = False

    async def start(self, after: int | None = None) -> None:
        """(Re)create the durable consumer to deliver from ``after + 1`` (all when None).

        The archive on disk is the truth: recreating the consumer at the
        archived watermark delivers at once what a killed run had fetched but
        not acknowledged (instead of after ``ack_wait``), and nothing twice.
        """
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
        from nats.js.errors import NotFoundError

        js = self.nc.jetstream()
        cfg = ConsumerConfig(
            durable_name=self.durable,
            ack_policy=AckPolicy.ALL,
            deliver_policy=DeliverPolicy.ALL if after is None else DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=None if after is None else after + 1,
            ack_wait=self.ack_wait,
            max_ack_pending=1_000_000,
            max_deliver=-1,
            max_waiting=16,
            filter_subject=self.filter_subject,
            filter_subjects=self.filter_subjects,
        )
        try:
            with contextlib.suppress(NotFoundError):
                await js.delete_consumer(self.stream, self.durable)
            await js.add_consumer(self.stream, cfg)
        except Exception as exc:
            raise ConfigError(
                f"consumer {self.durable} on stream {self.stream}: {api_error(exc)}"
            ) from exc
        if self._sub is not None:
            await self.close()
        self._inbox = self.nc.new_inbox()
        self._sub, self.direct = await subscribe_direct(
            self.nc,
            self._inbox,
            self._on_msg,
            self._on_raw,
            pending_msgs_limit=1 << 20,
            pending_bytes_limit=1 << 30,
        )

    def _on_raw(self, subject: bytes, reply: bytes, data: bytes, headers: bytes | None) -> None:
        """A message of the inbox, straight from the protocol parser (the fast path)."""
        if not reply:
            # a status of the pull request: 404 no messages / 408 expired / 409 limits
            if header_status(headers) in (b"404", b"408", b"409"):
                self._outstanding = 0
            self._have.set()
            return
        try:
            seq = ack_stream_seq(reply)
        except ValueError:
            return
        if self._outstanding:
            self._outstanding -= 1
        self._buf.append((seq, data, reply))
        self.delivered += 1
        if not self._have.is_set():
            self._have.set()

    async def _request(self) -> None:
        if self._outstanding > self.batch // 2:
            return
        want = self.batch - self._outstanding
        req = {"batch": want, "expires": int(self.expires * 1e9), "max_bytes": self.max_bytes}
        try:
            await self.nc.publish(
                f"$JS.API.CONSUMER.MSG.NEXT.{self.stream}.{self.durable}",
                orjson.dumps(req),
                reply=self._inbox,
            )
        except Exception as exc:
            log.debug("pull request failed: %s", exc)
            return
        self._outstanding += want
        self._req_at = time.monotonic()

    async def _on_msg(self, msg: Any) -> None:
        hdr = msg.headers
        if hdr and hdr.get("Status") and not msg.reply:
            # 404 no messages / 408 request expired / 409 limits: request over
            status = hdr.get("Status")
            if status in ("404", "408", "409"):
                self._outstanding = 0
            self._have.set()
            return
        try:
            seq = ack_stream_seq(msg.reply)
        except ValueError:
            return
        self._outstanding = max(0, self._outstanding - 1)
        self._buf.append((seq, msg.data, msg.reply))
        self.delivered += 1
        if not self._have.is_set():
            self._have.set()

    async def fetch(self, max_msgs: int, timeout: float) -> list[tuple[int, bytes]]:
        """Up to ``max_msgs`` messages; waits up to ``timeout`` for the first one."""
        now = time.monotonic()
        if self._outstanding and now - self._req_at > self.expires + 2.0:
            self._outstanding = 0  # the request died with a connection
        if len(self._buf) < self.batch // 2:
            await self._request()
        if not self._buf:
            self._have.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._have.wait(), timeout)
            if not self._buf:
                return []
        buf = self._buf
        n = min(max_msgs, len(buf))
        out = []
        last = None
        for _ in range(n):
            seq, data, reply = buf.popleft()
            out.append((seq, data))
            last = (seq, reply)
        if last is not None:
            self._last_reply = last
        return out

    async def ack_upto(self, seq: int) -> None:
        """Acknowledge everything delivered up to ``seq``, the last message fetched (confirmed)."""
        last = self._last_reply
        if last is None or last[0] != seq:
            raise SinkError(f"cannot acknowledge {seq}: not the last message fetched")
        reply = last[1]
        if isinstance(reply, bytes):
            reply = reply.decode()
        try:
            await self.nc.request(reply, b"+ACK", timeout=5.0)
        except Exception as exc:
            # not fatal: the messages come again after ack_wait and are skipped by seq
            log.warning("%s: acknowledgement of %d not confirmed: %s", self.stream, seq, exc)

    async def pending(self) -> int | None:
        """Messages of the stream not yet delivered to this consumer."""
        try:
            info = await self.nc.jetstream().consumer_info(self.stream, self.durable)
        except Exception:
            return None
        return int(info.num_pending or 0)

    async def stream_bounds(self) -> tuple[int, int] | None:
        """(first_seq, last_seq) of the stream now."""
        try:
            info = await self.nc.jetstream().stream_info(self.stream)
        except Exception:
            return None
        return int(info.state.first_seq), int(info.state.last_seq)

    async def close(self) -> None:
        if self._sub is not None:
            await drop_subscription(self.nc, self._sub)
            self._sub = None
