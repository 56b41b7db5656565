"""One client WebSocket connection of a simulator, and the frames it writes.

:class:`SimConnection` is the picows listener of one connection: it hands
client frames to the venue's session, writes generated data in one call per
batch (faults applied), keeps the counters, and applies the slow-reader
rule. It reaches the server only through :class:`Server`.
"""

from __future__ import annotations

import logging
import math
import struct
import time
from collections import Counter, deque
from collections.abc import Sequence
from typing import Protocol

from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport

from ssmd.sim.base import Host, Venue
from ssmd.sim.faults import FaultPlan, FaultState
from ssmd.sim.http import Request

__all__ = ["Server", "SimConnection", "ws_text_frames"]

log = logging.getLogger("ssmd.sim")


class Server(Host, Protocol):
    """What a connection asks of its server."""

    venue: Venue
    faults: FaultPlan
    seed: int
    fault_counts: Counter[str]
    frames_sent: int
    data_frames_sent: int
    bytes_sent: int
    #: the clients' TEXT frames (commands): (monotonic time, connection id, payload)
    ws_log: deque[tuple[float, str, bytes]]

    def opened(self, conn: SimConnection) -> None: ...

    def closed(self, conn: SimConnection) -> None: ...

    def drained(self) -> None:
        """A paused connection's transport drained (the unthrottled pump may go on)."""
        ...


_HDR16 = struct.Struct("!BBH")
_HDR64 = struct.Struct("!BBQ")
_SHORT_HEADERS = [bytes((0x81, n)) for n in range(126)]


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


class SimConnection(WSListener):
    """One client WebSocket connection of a simulator."""

    def __init__(self, server: Server, ordinal: int, request: Request) -> None:
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
        self.server.opened(self)
        self.session.on_open()

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        t = frame.msg_type
        try:
            if t == WSMsgType.TEXT:
                payload = frame.get_payload_as_bytes()
                self.server.ws_log.append((time.monotonic(), self.id, payload))
                self.session.on_text(payload)
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
        self.server.closed(self)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self.server.drained()

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
