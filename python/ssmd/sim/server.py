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
import random
import struct
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from picows import (
    WSCloseCode,
    WSFrame,
    WSListener,
    WSMsgType,
    WSTransport,
    WSUpgradeRequest,
    WSUpgradeResponseWithListener,
    ws_create_server,
)

from ssmd.errors import ConfigError
from ssmd.sim.faults import FAULT_TYPES, FaultPlan, FaultState
from ssmd.sim.http import HttpError, Request, Response, RestRecords, TokenBucket, json_response

__all__ = [
    "Session",
    "SimConnection",
    "SimOptions",
    "SimServer",
    "Venue",
]

log = logging.getLogger("ssmd.sim")

_HDR16 = struct.Struct("!BBH")
_HDR64 = struct.Struct("!BBQ")
_SHORT_HEADERS = [bytes((0x81, n)) for n in range(126)]
#: write buffer below which an unthrottled pump keeps a connection busy
_LOW_WATER = 256 * 1024
#: data messages per connection per pump round when unthrottled
_UNTHROTTLED_BATCH = 1024


def ws_text_frames(messages: Sequence[bytes]) -> bytes:
    """``messages`` as consecutive unmasked server TEXT frames, one buffer."""
    parts: list[bytes] = []
    ap = parts.append
    short = _SHORT_HEADERS
    for m in messages:
        n = len(m)
        if n < 126:
            ap(short[n])
        elif n < 65536:
            ap(_HDR16.pack(0x81, 126, n))
        else:
            ap(_HDR64.pack(0x81, 127, n))
        ap(m)
    return b"".join(parts)


@dataclass(frozen=True)
class SimOptions:
    """Knobs of the simulated venues; the defaults are the real venues' values."""

    #: pacing interval of the pump, seconds
    tick: float = 0.005
    #: bytes waiting in a connection's transport before the slow-reader rule applies
    max_queue_bytes: int = 8 * 1024 * 1024
    #: Kraken spot idle heartbeat (1 s) and Kraken Futures heartbeat feed (5 s) when None
    heartbeat_interval: float | None = None
    #: Kalshi server WebSocket Ping interval (payload ``heartbeat``)
    ping_interval: float = 10.0
    #: Kraken Futures closes a connection that sent no ping for this long
    ping_timeout: float = 60.0
    #: Kraken Futures ticker: at most one per product per this many seconds (0 = no limit)
    ticker_interval: float = 1.0
    #: REST requests per second before 429 + Retry-After (0 = unlimited)
    rest_rate: float = 0.0
    #: REST burst (default: one second's worth)
    rest_burst: float | None = None
    #: Kalshi: markets per subscription before error 26
    kalshi_market_limit: int = 256
    #: Kalshi: accepted clock skew of KALSHI-ACCESS-TIMESTAMP, seconds
    kalshi_signature_skew: float = 5.0
    #: Polymarket: assets per connection that get updates (the excess gets none)
    polymarket_asset_limit: int = 500

    def __post_init__(self) -> None:
        if self.tick <= 0:
            raise ConfigError("tick must be > 0")
        if self.max_queue_bytes < 1024:
            raise ConfigError("max_queue_bytes must be at least 1024")
        for name in ("ping_interval", "ping_timeout"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be > 0")
        if self.heartbeat_interval is not None and self.heartbeat_interval <= 0:
            raise ConfigError("heartbeat_interval must be > 0")
        if self.rest_rate < 0 or self.ticker_interval < 0:
            raise ConfigError("rest_rate and ticker_interval must be >= 0")


class Venue:
    """One simulated venue: its universe, REST endpoints and session factory."""

    name: ClassVar[str]
    ws_path: ClassVar[str]
    #: path of the REST root as ``rest_url`` names it
    rest_path: ClassVar[str]

    def __init__(
        self, server: SimServer, instruments: Sequence[str] | int | None, seed: int
    ) -> None:
        self.server = server
        self.options = server.options
        self.seed = seed
        self.rng = random.Random(f"ssmd-sim:{self.name}:{seed}")
        #: changes to the REST listings (tests of the secmaster syncs use them)
        self.records = RestRecords()

    def instrument_ids(self) -> list[str]:
        """Every instrument id of the universe (as the WebSocket names them)."""
        raise NotImplementedError

    def authorize(self, req: Request) -> Response | None:
        """None to accept a WebSocket upgrade, or the HTTP answer refusing it."""
        return None

    def rest(self, req: Request) -> Response:
        """Answer one REST request (raise :class:`HttpError` for 4xx)."""
        raise HttpError(404, f"not found: {req.path}")

    def rest_error(
        self, status: int, message: str, headers: Sequence[tuple[str, str]] = ()
    ) -> Response:
        """A REST error in the venue's shape."""
        return json_response({"error": message}, status, headers)

    def session(self, conn: SimConnection) -> Session:
        raise NotImplementedError

    def extra_urls(self, base: str) -> dict[str, str]:
        """More endpoints than ``ws_url``/``rest_url`` (e.g. Polymarket CLOB)."""
        return {}


class Session:
    """One connection's venue state: subscriptions, generated data, keep-alives."""

    def __init__(self, venue: Venue, conn: SimConnection) -> None:
        self.venue = venue
        self.conn = conn
        self.server = conn.server
        self.rng = random.Random(f"ssmd-sim:{venue.name}:{venue.seed}:{conn.ordinal}")
        self.rnd = self.rng.random
        self.sent = conn.server.sent_messages

    def on_open(self) -> None:
        """Right after the upgrade (e.g. Kraken ``status``, Futures ``info``)."""

    def on_text(self, data: bytes) -> None:
        """A client TEXT frame."""

    def on_ping(self) -> None:
        """A client WebSocket Ping (answered with Pong already)."""

    def weight(self) -> int:
        """How many instrument streams produce data (the share of ``rate``)."""
        return 0

    def subscription_count(self) -> int:
        """Instrument subscriptions as ``stats()`` reports them."""
        return 0

    def generate(self, n: int, out: list[bytes]) -> None:
        """Append about ``n`` data messages (frames) to ``out``."""

    def housekeep(self, now: float) -> None:
        """Called every few tens of ms: heartbeats, pings, timeouts."""

    def on_slow_reader(self) -> None:
        """The send queue is full: by default the venue drops the connection.

        The queue cannot drain into a reader that does not read, so TCP is
        reset without waiting for a close handshake.
        """
        self.conn.close(abrupt=True)

    def send(self, payload: bytes | str, kind: str) -> None:
        self.conn.send_control(payload, kind)


class SimConnection(WSListener):
    """One client WebSocket connection of a simulator."""

    def __init__(self, server: SimServer, ordinal: int, request: Request) -> None:
        super().__init__()
        self.server = server
        self.ordinal = ordinal
        self.id = f"c{ordinal}"
        self.request = request
        self.transport: WSTransport | None = None
        self.session = server.venue.session(self)
        self.faults = FaultState.create(server.faults, server.seed, ordinal, server.fault_counts)
        self.credit = 0.0
        self.paused = False
        self.closed = False
        now = time.monotonic()
        self.opened_at = now
        self.last_sent = now
        self.data_sent = 0
        #: TEXT frames written to this connection, data and control: the client's
        #: frame number ``frames_out`` is the next one the server writes
        self.frames_out = 0
        #: data messages sent by the pump (snapshots not included)
        self.pumped = 0
        self.stall_until = 0.0
        #: until then nothing at all is sent, keep-alives included (a frozen venue)
        self.mute_until = 0.0
        plan = server.faults
        self.next_stall = now + plan.stall_after if plan.stall_after else math.inf
        self.next_disconnect = now + plan.disconnect_every if plan.disconnect_every else math.inf

    # -- picows callbacks --------------------------------------------------

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        self.server._opened(self)
        self.session.on_open()

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        t = frame.msg_type
        try:
            if t == WSMsgType.TEXT:
                self.session.on_text(frame.get_payload_as_bytes())
            elif t == WSMsgType.PING:
                if self.muted:
                    return
                transport.send_pong(frame.get_payload_as_bytes())
                self.session.on_ping()
            elif t == WSMsgType.CLOSE:
                if not transport.is_close_frame_sent:
                    transport.send_close(frame.get_close_code())
                transport.disconnect()
        except Exception:
            log.exception("%s %s: error handling a client frame", self.server.venue.name, self.id)
            self.close(WSCloseCode.INTERNAL_ERROR, b"simulator error")

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.closed = True
        self.server._closed(self)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self.server._drained.set()

    # -- sending -------------------------------------------------------------

    @property
    def writable(self) -> bool:
        tr = self.transport
        return not (self.closed or tr is None or tr.is_close_frame_sent or tr.is_disconnected)

    def queued_bytes(self) -> int:
        tr = self.transport
        return 0 if tr is None else int(tr.underlying_transport.get_write_buffer_size())

    @property
    def muted(self) -> bool:
        return self.mute_until > 0.0 and time.monotonic() < self.mute_until

    def send_control(self, payload: bytes | str, kind: str) -> None:
        """Send one non-data frame now (acks, errors, heartbeats, PONG)."""
        if not self.writable or self.muted:
            return
        assert self.transport is not None
        self.transport.send(WSMsgType.TEXT, payload)
        self.frames_out += 1
        self.server.sent_controls[kind] += 1
        self.server.frames_sent += 1
        self.server.bytes_sent += len(payload)
        self.last_sent = time.monotonic()

    def send_ping(self, payload: bytes) -> None:
        if self.writable and not self.muted:
            assert self.transport is not None
            self.transport.send_ping(payload)
            self.server.sent_controls["ping"] += 1

    def emit(self, n: int) -> None:
        """Generate ``n`` data messages, apply faults and write them in one go."""
        if not self.writable:
            return
        if self.queued_bytes() > self.server.options.max_queue_bytes:
            self.server.fault_counts["slow_reader"] += 1
            log.info(
                "%s %s: slow reader (%d bytes queued)",
                self.server.venue.name,
                self.id,
                self.queued_bytes(),
            )
            self.session.on_slow_reader()
            return
        out: list[bytes] = []
        self.session.generate(n, out)
        if not out:
            return
        faults = self.faults
        if faults.active:
            out = faults.apply(out)
        limit = self.server.faults.disconnect_after
        close = False
        if limit is not None and self.pumped + len(out) >= limit:
            out = out[: limit - self.pumped]
            close = True
        self.pumped += len(out)
        self.write_data(out)
        if close:
            self.server.fault_counts["disconnect"] += 1
            self.close(abrupt=self.server.faults.disconnect_abrupt)

    def write_data(self, frames: list[bytes]) -> None:
        if not frames or not self.writable or self.muted:
            return
        assert self.transport is not None
        buf = ws_text_frames(frames)
        self.transport.underlying_transport.write(buf)
        self.data_sent += len(frames)
        self.frames_out += len(frames)
        srv = self.server
        srv.frames_sent += len(frames)
        srv.data_frames_sent += len(frames)
        srv.bytes_sent += len(buf)
        self.last_sent = time.monotonic()

    def close(
        self, code: WSCloseCode = WSCloseCode.GOING_AWAY, reason: bytes = b"", abrupt: bool = False
    ) -> None:
        tr = self.transport
        if tr is None or tr.is_disconnected:
            return
        if abrupt:
            tr.underlying_transport.abort()
            return
        if not tr.is_close_frame_sent:
            tr.send_close(code, reason)
        tr.disconnect()

    # -- pacing state ----------------------------------------------------------

    def ready(self, now: float) -> bool:
        return self.writable and now >= self.stall_until


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

    def connections(self) -> list[SimConnection]:
        return list(self._conns.values())

    def _opened(self, conn: SimConnection) -> None:
        self._conns[conn.id] = conn
        self.connections_total += 1
        log.debug("sim %s: %s connected", self.venue_name, conn.id)

    def _closed(self, conn: SimConnection) -> None:
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
