"""``ssmd notify run``: fires from ``signals.>`` to ntfy, each acknowledged only once
every destination it matches has accepted it.

A durable pull consumer (``notify``; created on first start, from then on)
of the ``SIGNALS`` stream hands fires over in stream order. For each fire
the matching destinations are sent to together; a destination that fails
is tried again with exponential backoff (full jitter) and ntfy's
``Retry-After`` as a floor, up to its ``max_attempts``; then, or at once for
an answer a retry cannot fix (400, 401, 403, 404), the fire goes to
``deadletter.notify`` with the reason and is counted. The fire is
acknowledged after that, never before. Meanwhile the fires fetched behind
it are kept in progress (``+WPI``), so JetStream does not deliver them twice.

What must survive a restart lives in a JetStream key-value bucket
(``ssmd_notify``): for each destination that accepted a fire, a mark (a
restart after a crash between the send and the acknowledgement does not
send it again), and the receive time of the last fire sent per destination
and instrument (the cooldown). Cooldowns compare the fires' own receive
times, so a backlog after an outage is thinned exactly as it would have
been live.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from ssmd.notify.config import Destination, NotifyConfig
from ssmd.notify.ntfy import Outcome, publish
from ssmd.runtime.backoff import Backoff

__all__ = ["DEADLETTER_SUBJECT", "KV_BUCKET", "NotifyService", "NotifyStats"]

log = logging.getLogger("ssmd.notify")

DEADLETTER_SUBJECT = "deadletter.notify"
KV_BUCKET = "ssmd_notify"
#: how long delivery marks and cooldown times are kept (the SIGNALS stream's age)
KV_TTL = 7 * 86400.0
FIRE_FIELDS = ("signal", "instrument", "venue")
#: cooldown times kept in memory before the old ones are dropped
MAX_COOLDOWNS = 100_000


class _Stopping(Exception):
    """Stop asked for while a fire was still being delivered."""


@dataclass
class NotifyStats:
    fires: int = 0
    unmatched: int = 0
    unreadable: int = 0
    sent: Counter[str] = field(default_factory=Counter)
    already_sent: Counter[str] = field(default_factory=Counter)
    suppressed: Counter[str] = field(default_factory=Counter)
    retries: Counter[str] = field(default_factory=Counter)
    deadletters: Counter[str] = field(default_factory=Counter)
    last_seq: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "fires": self.fires,
            "unmatched": self.unmatched,
            "unreadable": self.unreadable,
            "sent": dict(self.sent),
            "already_sent": dict(self.already_sent),
            "suppressed": dict(self.suppressed),
            "retries": dict(self.retries),
            "deadletters": dict(self.deadletters),
            "last_seq": self.last_seq,
        }


class _Metrics:
    _one: _Metrics | None = None

    def __init__(self) -> None:
        from prometheus_client import Counter as C
        from prometheus_client import Histogram

        self.fires = C("ssmd_notify_fires", "Fires read from the SIGNALS stream")
        self.sent = C("ssmd_notify_sent", "Fires a destination accepted", ["destination"])
        self.suppressed = C(
            "ssmd_notify_suppressed", "Fires held back by a cooldown", ["destination"]
        )
        self.retries = C("ssmd_notify_retries", "Failed attempts retried", ["destination"])
        self.deadletters = C(
            "ssmd_notify_deadletters",
            "Fires given up and sent to deadletter.notify",
            ["destination"],
        )
        self.seconds = Histogram(
            "ssmd_notify_send_seconds",
            "Time of one accepted publish",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
        )

    @classmethod
    def get(cls) -> _Metrics:
        if cls._one is None:
            cls._one = cls()
        return cls._one


def _h(*parts: str) -> str:
    return hashlib.blake2b("\0".join(parts).encode(), digest_size=12).hexdigest()


class NotifyService:
    """Routes fires to the configured destinations until stopped."""

    def __init__(
        self,
        config: NotifyConfig,
        nats_url: str,
        *,
        durable: str = "notify",
        batch: int = 32,
        ack_wait: float = 30.0,
    ) -> None:
        self.config = config
        self.nats_url = nats_url
        self.durable = durable
        self.batch = batch
        self.ack_wait = ack_wait
        self.stats = NotifyStats()
        self.started = asyncio.Event()
        self._cool: dict[tuple[str, str], int] = {}
        self._kv: Any = None
        self._js: Any = None
        self._metrics = _Metrics.get()

    async def run(self, stop: asyncio.Event) -> NotifyStats:
        import httpx

        from ssmd.bus.nats import connect, key_value

        nc = await connect(self.nats_url, name="ssmd-notify")
        try:
            self._js = nc.jetstream()
            psub = await self._subscribe()
            self._kv = await key_value(
                self._js, KV_BUCKET, "ssmd notify: delivery marks and cooldowns", KV_TTL
            )
            self.started.set()
            async with httpx.AsyncClient(follow_redirects=False) as client:
                while not stop.is_set():
                    msgs = await self._fetch(psub)
                    if msgs:
                        await self._batch(client, msgs, stop)
            with contextlib.suppress(Exception):
                await psub.unsubscribe()
        finally:
            await nc.close()
        return self.stats

    # -- setup --------------------------------------------------------------------

    async def _subscribe(self) -> Any:
        """The durable consumer, made to deliver from its first unacknowledged fire.

        A consumer whose previous client died holds that client's unacknowledged
        fires until ``ack_wait`` runs out, while new ones flow: recreating it at its
        acknowledgement floor hands them over at once and in stream order (the
        bucket's marks keep what was already sent from being sent again).
        """
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
        from nats.js.errors import NotFoundError

        from ssmd.bus.nats import ensure_streams
        from ssmd.bus.streams import stream_specs

        specs = [s for s in stream_specs() if s.name in ("SIGNALS", "DEADLETTER")]
        await ensure_streams(self._js, specs)
        try:
            info = await self._js.consumer_info("SIGNALS", self.durable)
        except NotFoundError:
            info = None
        if info is None:  # first start: fires from now on
            start = int((await self._js.stream_info("SIGNALS")).state.last_seq) + 1
        else:
            floor = int(info.ack_floor.stream_seq) if info.ack_floor else 0
            start = max(floor + 1, int(info.config.opt_start_seq or 1))
            await self._js.delete_consumer("SIGNALS", self.durable)
        cfg = ConsumerConfig(
            durable_name=self.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=start,
            ack_wait=self.ack_wait,
            max_deliver=-1,
            max_ack_pending=max(256, self.batch * 4),
            filter_subject="signals.>",
        )
        await self._js.add_consumer("SIGNALS", cfg)
        return await self._js.pull_subscribe_bind(self.durable, "SIGNALS")

    async def _fetch(self, psub: Any) -> list[Any]:
        import nats.errors

        try:
            return list(await psub.fetch(self.batch, timeout=0.5))
        except (nats.errors.TimeoutError, asyncio.TimeoutError):
            return []

    # -- fires --------------------------------------------------------------------

    async def _batch(self, client: Any, msgs: list[Any], stop: asyncio.Event) -> None:
        held = list(msgs)
        beat = asyncio.create_task(self._keep_in_progress(held))
        try:
            while held:
                msg = held[0]
                try:
                    await self._fire(client, msg, stop)
                except _Stopping:
                    break
                await msg.ack_sync()
                held.pop(0)
                self.stats.last_seq = msg.metadata.sequence.stream
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
            for msg in held:  # stopped: the next run gets them at once
                with contextlib.suppress(Exception):
                    await msg.nak()

    async def _keep_in_progress(self, held: list[Any]) -> None:
        while True:
            await asyncio.sleep(self.ack_wait / 3)
            for msg in list(held):
                with contextlib.suppress(Exception):
                    await msg.in_progress()

    async def _fire(self, client: Any, msg: Any, stop: asyncio.Event) -> None:
        st = self.stats
        st.fires += 1
        self._metrics.fires.inc()
        try:
            fire = orjson.loads(msg.data)
        except orjson.JSONDecodeError:
            fire = None
        if not isinstance(fire, dict) or not all(isinstance(fire.get(k), str) for k in FIRE_FIELDS):
            st.unreadable += 1
            await self._deadletter(msg, None, "not a fire (needs signal, instrument, venue)", 0)
            return
        dests = self.config.matching(fire)
        if not dests:
            st.unmatched += 1
            return
        fid = (msg.headers or {}).get("Nats-Msg-Id") or f"seq:{msg.metadata.sequence.stream}"
        results = await asyncio.gather(
            *(self._deliver(client, d, fire, fid, msg, stop) for d in dests),
            return_exceptions=True,
        )
        for r in results:
            if isinstance(r, BaseException):
                raise r

    async def _deliver(
        self,
        client: Any,
        dest: Destination,
        fire: Mapping[str, Any],
        fid: str,
        msg: Any,
        stop: asyncio.Event,
    ) -> None:
        st = self.stats
        mark = f"{self.durable}.sent.{dest.name}.{_h(fid)}"
        if await self._kv_get(mark) is not None:
            st.already_sent[dest.name] += 1
            return
        rx = fire.get("rx") if isinstance(fire.get("rx"), int) else fire.get("ts")
        when = rx if isinstance(rx, int) and not isinstance(rx, bool) else time.time_ns()
        ckey = (dest.name, _h(str(fire["venue"]), str(fire["instrument"])))
        if dest.cooldown > 0:
            last = await self._last_sent(ckey)
            if last is not None and 0 <= when - last < dest.cooldown * 1e9:
                st.suppressed[dest.name] += 1
                self._metrics.suppressed.labels(dest.name).inc()
                return
        backoff = Backoff(dest.retry.backoff, dest.retry.backoff_max)
        out = Outcome(False, "not tried")
        attempt = 0
        for attempt in range(1, dest.retry.max_attempts + 1):
            t0 = time.perf_counter()
            out = await publish(client, dest, fire)
            if out.ok:
                self._metrics.seconds.observe(time.perf_counter() - t0)
                await self._kv_put(mark, b"1")
                await self._set_sent(ckey, when)
                st.sent[dest.name] += 1
                self._metrics.sent.labels(dest.name).inc()
                return
            if not out.retry or attempt == dest.retry.max_attempts:
                break
            delay = backoff.delay(attempt - 1, out.retry_after)
            st.retries[dest.name] += 1
            self._metrics.retries.labels(dest.name).inc()
            log.warning(
                "notify: %s: %s %s: attempt %d of %d failed (%s); again in %.1f s",
                dest.name,
                fire["signal"],
                fire["instrument"],
                attempt,
                dest.retry.max_attempts,
                out.reason,
                delay,
            )
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            if stop.is_set():
                raise _Stopping
        await self._deadletter(msg, dest, out.reason, attempt)

    async def _deadletter(
        self, msg: Any, dest: Destination | None, reason: str, attempts: int
    ) -> None:
        name = dest.name if dest is not None else "-"
        self.stats.deadletters[name] += 1
        self._metrics.deadletters.labels(name).inc()
        seq = msg.metadata.sequence.stream
        log.error(
            "notify: %s seq %d to %s given up after %d attempt(s): %s; sent to %s",
            msg.subject,
            seq,
            name,
            attempts,
            reason,
            DEADLETTER_SUBJECT,
        )
        body = {
            "reason": reason,
            "destination": None if dest is None else dest.name,
            "attempts": attempts,
            "subject": msg.subject,
            "seq": seq,
            "fire": msg.data.decode("utf-8", "replace"),
        }
        await self._js.publish(
            DEADLETTER_SUBJECT,
            orjson.dumps(body),
            headers={"Nats-Msg-Id": f"notify:{self.durable}:{name}:{seq}"},
        )

    # -- the key-value bucket ----------------------------------------------------------

    async def _kv_get(self, key: str) -> bytes | None:
        from nats.js.errors import KeyNotFoundError

        try:
            entry = await self._kv.get(key)
        except KeyNotFoundError:
            return None
        value: bytes | None = entry.value
        return value

    async def _kv_put(self, key: str, value: bytes) -> None:
        await self._kv.put(key, value)

    async def _last_sent(self, ckey: tuple[str, str]) -> int | None:
        if ckey in self._cool:
            return self._cool[ckey]
        raw = await self._kv_get(f"{self.durable}.cool.{ckey[0]}.{ckey[1]}")
        if raw is None:
            return None
        try:
            self._cool[ckey] = int(raw)
        except ValueError:
            return None
        return self._cool[ckey]

    async def _set_sent(self, ckey: tuple[str, str], when: int) -> None:
        if len(self._cool) >= MAX_COOLDOWNS:
            self._cool.clear()  # the bucket still has them
        self._cool[ckey] = when
        await self._kv_put(f"{self.durable}.cool.{ckey[0]}.{ckey[1]}", str(when).encode())
