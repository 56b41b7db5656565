"""The simulator's server: picows WebSocket + REST on one port, pacing, faults, stats.

Each venue module supplies a :class:`Venue` (universe, REST endpoints,
upgrade check) and a :class:`Session` per connection (commands, generated
data, keep-alives). This module owns what every venue shares:

* one picows server; the listener factory routes the venue's WebSocket path
  to a :class:`SimConnection` and every other ``GET`` to the venue's REST
  handler (optionally also on a second, REST-only port);
* a pump that hands each connection its share of ``rate`` data messages per
  second (in proportion to what it subscribed), the session generates them
  into one batch, faults are applied and the batch is written to the socket
  in one call;
* a bounded send queue per connection: when more than ``max_queue_bytes``
  wait in the transport, the venue's slow-reader rule applies;
* the housekeeping timer (keep-alives, stalls, timed disconnects) and the
  counters behind :meth:`SimServer.stats`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import Counter, deque
from collections.abc import Sequence
from typing import Any

from picows import (
    WSCloseCode,
    WSUpgradeRequest,
    WSUpgradeResponseWithListener,
    ws_create_server,
)

from ssmd.errors import ConfigError
from ssmd.sim.base import Venue
from ssmd.sim.connection import SimConnection
from ssmd.sim.faults import FAULT_TYPES, FaultPlan
from ssmd.sim.http import HttpError, Request, Response, TokenBucket
from ssmd.sim.options import SimOptions

__all__ = ["SimServer"]

log = logging.getLogger("ssmd.sim")

#: write buffer below which an unthrottled pump keeps a connection busy
_LOW_WATER = 256 * 1024
#: data messages per connection per pump round when unthrottled
_UNTHROTTLED_BATCH = 1024
#: client commands :attr:`SimServer.ws_log` keeps (the oldest are dropped)
WS_LOG_SIZE = 10_000


class SimServer:
    """A running simulator of one venue (its :class:`Venue` class). Create with
    :func:`ssmd.sim.start_sim`."""

    def __init__(
        self,
        venue: type[Venue],
        *,
        host: str = "127.0.0.1",
        rate: float = 2000.0,
        instruments: Sequence[str] | int | None = None,
        faults: FaultPlan | None = None,
        seed: int = 7,
        options: SimOptions | None = None,
        kalshi_public_key: Any = None,
    ) -> None:
        if math.isnan(rate) or rate < 0:
            raise ConfigError(f"rate must be >= 0 (or inf), got {rate}")
        self.venue_name = venue.name
        self.host = host
        self.rate = rate
        self.faults = faults or FaultPlan()
        self.seed = seed
        self.options = options or SimOptions()
        self.kalshi_public_key = kalshi_public_key
        self.sent_messages: Counter[str] = Counter()
        self.sent_controls: Counter[str] = Counter()
        self.fault_counts: Counter[str] = Counter()
        self.frames_sent = 0
        self.data_frames_sent = 0
        self.bytes_sent = 0
        self.rest_requests = 0
        #: every REST request: (monotonic time, target as sent, status answered)
        self.rest_log: list[tuple[float, str, int]] = []
        #: the clients' last TEXT frames (their commands): (monotonic time, connection id, payload)
        self.ws_log: deque[tuple[float, str, bytes]] = deque(maxlen=WS_LOG_SIZE)
        self._rest_queued: dict[str, list[Response]] = {}
        #: rounds of the pump and of the housekeeping so far (clocks of the
        #: simulator's own progress, for tests that wait for something not to happen)
        self.pump_rounds = 0
        self.housekeeping_rounds = 0
        #: seconds of pacing handed out as credit (``rate`` messages per such second)
        self.paced_seconds = 0.0
        self.rejected_upgrades = 0
        self.connections_total = 0
        #: instrument id -> stall (its data is suppressed on every connection until then)
        self.instrument_stalls: dict[str, float] = {}
        self.venue: Venue = venue(self, instruments, seed)
        self._conns: dict[str, SimConnection] = {}
        self._servers: list[asyncio.AbstractServer] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._bucket = TokenBucket(self.options.rest_rate, self.options.rest_burst)
        self._forced_throttle = 0
        self._forced_retry_after = 1
        self._ordinal = 0
        self.port = 0
        self.rest_port = 0
        self._rate_changed = asyncio.Event()
        #: set when a paused connection's transport drained (unthrottled pump)
        self._drained = asyncio.Event()

    # -- URLs ------------------------------------------------------------------

    @property
    def ws_url(self) -> str:
        return f"ws://{self._hostport(self.port)}{self.venue.ws_path}"

    @property
    def rest_url(self) -> str:
        return f"http://{self._hostport(self.rest_port)}{self.venue.rest_path}"

    def urls(self) -> dict[str, str]:
        """Every endpoint: ``ws``, ``rest`` and venue extras (Polymarket ``clob``)."""
        base = f"http://{self._hostport(self.rest_port)}"
        return {"ws": self.ws_url, "rest": self.rest_url, **self.venue.extra_urls(base)}

    def _hostport(self, port: int) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{port}"

    # -- lifecycle -------------------------------------------------------------

    async def start(self, port: int = 0, rest_port: int | None = None) -> None:
        srv = await ws_create_server(
            self._factory,
            self.host,
            port,
            enable_auto_pong=False,
            max_frame_size=4 * 1024 * 1024,
            logger_name="sim",
        )
        self._servers.append(srv)
        self.port = srv.sockets[0].getsockname()[1]
        self.rest_port = self.port
        if rest_port is not None:
            rsrv = await ws_create_server(
                self._rest_factory, self.host, rest_port, logger_name="sim"
            )
            self._servers.append(rsrv)
            self.rest_port = rsrv.sockets[0].getsockname()[1]
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._pump(), name=f"ssmd-sim-pump-{self.venue_name}"))
        self._tasks.append(
            loop.create_task(self._housekeeping(), name=f"ssmd-sim-house-{self.venue_name}")
        )
        log.info(
            "sim %s: ws %s rest %s rate %s", self.venue_name, self.ws_url, self.rest_url, self.rate
        )

    async def stop(self) -> None:
        """Close every connection and the listening sockets."""
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._tasks.clear()
        for srv in self._servers:
            srv.close()
        for c in list(self._conns.values()):
            c.close(WSCloseCode.GOING_AWAY, b"simulator stopping")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 1.0
        while self._conns and loop.time() < deadline:
            await asyncio.sleep(0.01)
        for c in list(self._conns.values()):  # readers that never drain their queue
            c.close(abrupt=True)
        for srv in self._servers:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(srv.wait_closed(), 2.0)
        self._servers.clear()

    async def set_rate(self, rate: float) -> None:
        """Data messages per second over all connections (``inf``: as fast as
        each connection drains; ``0``: no data, only snapshots and keep-alives)."""
        if math.isnan(rate) or rate < 0:
            raise ConfigError(f"rate must be >= 0 (or inf), got {rate}")
        self.rate = rate
        self._rate_changed.set()

    @property
    def unthrottled(self) -> bool:
        return math.isinf(self.rate)

    # -- connections -------------------------------------------------------------

    def drained(self) -> None:
        self._drained.set()

    def connections(self) -> list[SimConnection]:
        return list(self._conns.values())

    def opened(self, conn: SimConnection) -> None:
        self._conns[conn.id] = conn
        self.connections_total += 1
        log.debug("sim %s: %s connected", self.venue_name, conn.id)

    def closed(self, conn: SimConnection) -> None:
        self._conns.pop(conn.id, None)
        log.debug("sim %s: %s disconnected", self.venue_name, conn.id)

    def _factory(self, upgrade: WSUpgradeRequest) -> Any:
        req = Request.from_upgrade(upgrade)
        if req.path == self.venue.ws_path and "websocket" in req.headers.get("upgrade", "").lower():
            denied = self.venue.authorize(req)
            if denied is not None:
                self.rejected_upgrades += 1
                log.info("sim %s: upgrade refused (%d)", self.venue_name, denied.status)
                return WSUpgradeResponseWithListener(denied.to_picows(), None)
            self._ordinal += 1
            return SimConnection(self, self._ordinal, req)
        return self._rest(req)

    def _rest_factory(self, upgrade: WSUpgradeRequest) -> Any:
        return self._rest(Request.from_upgrade(upgrade))

    def _rest(self, req: Request) -> Any:
        self.rest_requests += 1
        resp = self._rest_answer(req)
        self.rest_log.append((time.monotonic(), req.target, resp.status))
        return WSUpgradeResponseWithListener(resp.to_picows(), None)

    def ws_commands(self, contains: bytes = b"") -> list[tuple[float, str, bytes]]:
        """The logged client TEXT frames that contain ``contains``."""
        return [c for c in self.ws_log if contains in c[2]]

    def rest_hits(self, prefix: str = "") -> list[tuple[float, str, int]]:
        """The logged REST requests whose target starts with ``prefix``."""
        return [h for h in self.rest_log if h[1].startswith(prefix)]

    def _rest_answer(self, req: Request) -> Response:
        queued = self._rest_queued.get(req.path)
        if queued:
            self.fault_counts["rest_response"] += 1
            return queued.pop(0)
        wait = 0.0
        if self._forced_throttle > 0:
            self._forced_throttle -= 1
            wait = float(self._forced_retry_after)
        else:
            wait = self._bucket.take()
        if wait > 0:
            self.fault_counts["rest_throttle"] += 1
            retry = str(max(1, math.ceil(wait)))
            resp = self.venue.rest_error(429, "too many requests", [("Retry-After", retry)])
        else:
            try:
                resp = self.venue.rest(req)
            except HttpError as exc:
                resp = self.venue.rest_error(exc.status, exc.message)
        return resp

    # -- faults at run time ------------------------------------------------------

    def inject(self, fault: str, **kw: Any) -> int:
        """Inject ``fault`` now; returns how many connections (or requests) it affects.

        * ``stall``: ``seconds`` (default 5); with ``instrument=ID`` only that
          instrument's data stops (on every connection), with ``channel=NAME``
          one subscription kind (Kalshi channel, Kraken channel, Futures
          feed: ``ticker``, ``trade``, ``book``/``orderbook_delta``, …),
          else whole connections (``conn=ID`` for one) go silent with
          keep-alives intact, or with ``keepalive=False`` silent altogether
          (no heartbeats, pings or pongs: a frozen venue, socket still open).
          ``seconds=0`` ends a stall of the same scope.
        * ``disconnect``: close connections now (``conn=ID`` for one,
          ``abrupt=True`` drops TCP without a close frame).
        * ``drop``, ``duplicate``, ``reorder``, ``malformed``,
          ``corrupt_checksum``: apply to the next ``count`` (default 1) data
          messages of each connection (``conn=ID`` for one).
        * ``oversized``: an extra valid JSON frame of ``size`` bytes (default
          17 MiB, over the connector's default bound) before each of the
          next ``count`` (default 1) data messages.
        * ``slow_reader``: apply the venue's slow-reader rule now.
        * ``rest_throttle``: the next ``count`` REST requests get 429 with
          ``Retry-After: retry_after`` (default 1 s).
        * ``rest_response``: the next ``count`` requests to ``path`` get this
          answer instead: ``status`` (default 200), ``body`` (bytes or str),
          ``content_type`` (default JSON), ``retry_after`` (a header value).
        """
        conn_id = kw.pop("conn", None)
        conns = [c for c in self._conns.values() if conn_id is None or c.id == conn_id]
        now = time.monotonic()
        if fault == "stall":
            seconds = float(kw.pop("seconds", 5.0))
            instrument = kw.pop("instrument", None)
            channel = kw.pop("channel", None)
            keepalive = bool(kw.pop("keepalive", True))
            self._no_more(fault, kw)
            if channel is not None or instrument is not None:
                key = f"channel:{channel}" if channel is not None else str(instrument)
                if seconds <= 0:  # ends that stall now
                    self.instrument_stalls.pop(key, None)
                    return len(conns)
                self.instrument_stalls[key] = now + seconds
                self.fault_counts[
                    "channel_stall" if channel is not None else "instrument_stall"
                ] += 1
                return len(conns)
            for c in conns:
                if seconds <= 0:  # ends the stall now
                    c.stall_until = c.mute_until = 0.0
                    continue
                c.stall_until = max(c.stall_until, now + seconds)
                if not keepalive:
                    c.mute_until = max(c.mute_until, now + seconds)
                self.fault_counts["stall"] += 1
            return len(conns)
        if fault == "disconnect":
            abrupt = bool(kw.pop("abrupt", False))
            self._no_more(fault, kw)
            for c in conns:
                self.fault_counts["disconnect"] += 1
                c.close(abrupt=abrupt)
            return len(conns)
        if fault in ("drop", "duplicate", "reorder", "malformed", "corrupt_checksum"):
            count = int(kw.pop("count", 1))
            self._no_more(fault, kw)
            for c in conns:
                c.faults.pending[fault] += count
            return len(conns)
        if fault == "oversized":
            count = int(kw.pop("count", 1))
            size = int(kw.pop("size", 17 << 20))
            self._no_more(fault, kw)
            for c in conns:
                c.faults.oversized_bytes = size
                c.faults.pending[fault] += count
            return len(conns)
        if fault == "slow_reader":
            self._no_more(fault, kw)
            for c in conns:
                self.fault_counts["slow_reader"] += 1
                c.session.on_slow_reader()
            return len(conns)
        if fault == "rest_response":
            path = str(kw.pop("path"))
            count = int(kw.pop("count", 1))
            status = int(kw.pop("status", 200))
            body = kw.pop("body", b"")
            ctype = str(kw.pop("content_type", "application/json"))
            ra = kw.pop("retry_after", None)
            self._no_more(fault, kw)
            raw = body.encode() if isinstance(body, str) else bytes(body)
            extra = (("Retry-After", str(ra)),) if ra is not None else ()
            self._rest_queued.setdefault(path, []).extend(
                [Response(status, raw, extra, ctype)] * count
            )
            return count
        if fault == "rest_throttle":
            count = int(kw.pop("count", 1))
            self._forced_retry_after = int(kw.pop("retry_after", 1))
            self._no_more(fault, kw)
            self._forced_throttle += count
            return count
        raise ConfigError(f"unknown fault {fault!r} (known: {', '.join(FAULT_TYPES)})")

    @staticmethod
    def _no_more(fault: str, kw: dict[str, Any]) -> None:
        if kw:
            raise ConfigError(f"fault {fault!r} takes no {', '.join(sorted(kw))}")

    def instrument_stalled(self, instrument: str) -> bool:
        until = self.instrument_stalls.get(instrument)
        return until is not None and until > time.monotonic()

    # -- stats -------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counters: connections, subscriptions per connection, sent per kind, faults."""
        return {
            "venue": self.venue_name,
            "ws_url": self.ws_url,
            "rest_url": self.rest_url,
            "rate": self.rate,
            "connections": len(self._conns),
            "connections_total": self.connections_total,
            "rejected_upgrades": self.rejected_upgrades,
            "subscriptions": {c.id: c.session.subscription_count() for c in self._conns.values()},
            "frames": self.frames_sent,
            "data_frames": self.data_frames_sent,
            "bytes": self.bytes_sent,
            "messages": dict(self.sent_messages),
            "controls": dict(self.sent_controls),
            "faults": {k: self.fault_counts[k] for k in FAULT_TYPES if self.fault_counts[k]},
            "rest_requests": self.rest_requests,
        }

    def summary(self) -> str:
        """One line for the CLI's periodic report."""
        s = self.stats()
        msgs = sum(s["messages"].values())
        subs = sum(s["subscriptions"].values())
        faults = ",".join(f"{k}={v}" for k, v in s["faults"].items()) or "none"
        return (
            f"{self.venue_name}: conns={s['connections']} subs={subs} msgs={msgs} "
            f"frames={s['frames']} bytes={s['bytes']} rest={s['rest_requests']} faults={faults}"
        )

    # -- tasks -------------------------------------------------------------------

    async def _pump(self) -> None:
        while True:
            try:
                await self._pump_loop()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sim %s: pump failed; restarting it", self.venue_name)
                await asyncio.sleep(0.1)

    async def _pump_loop(self) -> None:
        loop = asyncio.get_running_loop()
        tick = self.options.tick
        last = loop.time()
        while True:
            self.pump_rounds += 1
            if self.unthrottled:
                now = time.monotonic()
                wrote = False
                for c in list(self._conns.values()):
                    if (
                        c.ready(now)
                        and not c.paused
                        and c.session.weight() > 0
                        and c.queued_bytes() < _LOW_WATER
                    ):
                        c.emit(_UNTHROTTLED_BATCH)
                        wrote = True
                if wrote:
                    await asyncio.sleep(0)
                else:  # every reader is behind: wait until one drains (or a stall ends)
                    self._drained.clear()
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._drained.wait(), 0.01)
                last = loop.time()
                continue
            self._rate_changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._rate_changed.wait(), tick)
            t = loop.time()
            dt = min(t - last, 0.25)
            last = t
            now = time.monotonic()
            active = [
                (c, w)
                for c in list(self._conns.values())
                if c.ready(now) and (w := c.session.weight()) > 0
            ]
            total = sum(w for _, w in active)
            if not total or self.rate <= 0 or self.unthrottled:
                continue
            self.paced_seconds += dt
            per = self.rate * dt / total
            for c, w in active:
                c.credit += per * w
                n = int(c.credit)
                if n:
                    c.credit -= n
                    c.emit(n)

    async def _housekeeping(self) -> None:
        plan = self.faults
        while True:
            await asyncio.sleep(0.05)
            self.housekeeping_rounds += 1
            now = time.monotonic()
            for c in list(self._conns.values()):
                try:
                    if now >= c.next_stall:
                        c.stall_until = now + plan.stall_for
                        c.next_stall = c.stall_until + (plan.stall_after or math.inf)
                        self.fault_counts["stall"] += 1
                        log.info(
                            "sim %s: %s stalls for %.1f s", self.venue_name, c.id, plan.stall_for
                        )
                    if now >= c.next_disconnect:
                        c.next_disconnect = math.inf
                        self.fault_counts["disconnect"] += 1
                        c.close(abrupt=plan.disconnect_abrupt)
                        continue
                    c.session.housekeep(now)
                except Exception:
                    log.exception("sim %s: housekeeping of %s failed", self.venue_name, c.id)
            if self.instrument_stalls:
                for k in [k for k, until in self.instrument_stalls.items() if until <= now]:
                    del self.instrument_stalls[k]
