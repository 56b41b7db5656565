"""Frames in: the picows listener, per-tick batches into one core call, socket reads.

The listener copies each complete data frame out with its receive time and
schedules one processing callback per event-loop tick (``loop.call_soon``);
:meth:`FrameIntake.drain` hands the whole batch to :meth:`FrameIntake.handle`
(the connection's core call) at once, or earlier when ``MAX_PENDING`` frames
wait. Ping, Pong and Close are answered or noted here. Flow control pauses and
resumes the socket's reads; time paused is not silence.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time

from picows import WSFrame, WSListener, WSMsgType, WSTransport

from ssmd.runtime.watchdog import ActivityTracker

__all__ = ["MAX_PENDING", "FrameIntake", "Listener"]

#: process the pending frames at once when this many are waiting (one socket read can
#: bring thousands: this bounds the frames, lines and groups of one core batch)
MAX_PENDING = 1000
_TEXT = WSMsgType.TEXT
_BINARY = WSMsgType.BINARY
_time_ns = time.time_ns


class Listener(WSListener):
    """picows callbacks: copy payloads out, answer Pings, note the close."""

    def __init__(self, conn: FrameIntake) -> None:
        super().__init__()
        self.conn = conn
        self._frag: list[bytes] | None = None

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        mt = frame.msg_type
        if (mt is _TEXT or mt is _BINARY) and frame.fin:  # the hot path: push inlined
            conn = self.conn
            frames = conn._frames
            frames.append(frame.get_payload_as_bytes())
            conn._rxs.append(_time_ns())
            if not conn._scheduled:
                conn._scheduled = True
                conn._loop.call_soon(conn.drain)
            elif len(frames) >= MAX_PENDING:
                conn.drain()
            return
        self._other(transport, frame, mt)

    def _other(self, transport: WSTransport, frame: WSFrame, mt: WSMsgType) -> None:
        conn = self.conn
        if mt is WSMsgType.TEXT or mt is WSMsgType.BINARY:
            self._frag = [frame.get_payload_as_bytes()]
        elif mt is WSMsgType.CONTINUATION:
            if self._frag is not None:
                self._frag.append(frame.get_payload_as_bytes())
                if frame.fin:
                    conn.push(b"".join(self._frag))
                    self._frag = None
        elif mt is WSMsgType.PING:
            conn.last_rx = time.monotonic()
            transport.send_pong(frame.get_payload_as_bytes())
        elif mt is WSMsgType.PONG:
            conn.last_rx = time.monotonic()
        elif mt is WSMsgType.CLOSE:
            conn.close_reason = conn.close_reason or (
                f"closed by venue ({frame.get_close_code().value} {frame.get_close_reason()})".strip()
            )
            transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.conn.live_transport = None


class FrameIntake:
    """The frame side of a connection (the base of :class:`~ssmd.runtime.supervisor.Connection`)."""

    transport: WSTransport | None
    live_transport: WSTransport | None
    #: monotonic time of the last frame of any kind
    last_rx: float
    close_reason: str | None
    tracker: ActivityTracker

    def init_intake(self) -> None:
        self._frames: list[bytes] = []
        self._rxs: list[int] = []
        self._scheduled = False
        self._loop = asyncio.get_running_loop()

    def handle(self, frames: list[bytes], rxs: list[int]) -> None:
        """Process one batch of frames (the connection's core call)."""
        raise NotImplementedError

    def batch_failed(self, exc: Exception) -> None:
        """Processing a batch raised ``exc``."""
        raise NotImplementedError

    def push(self, payload: bytes) -> None:
        """Called by the listener for every complete data frame."""
        self._frames.append(payload)
        self._rxs.append(time.time_ns())
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self.drain)
        elif len(self._frames) >= MAX_PENDING:
            self.drain()

    @property
    def pending(self) -> int:
        return len(self._frames)

    def drain(self) -> None:
        """Process every pending frame in one core call (the batch callback)."""
        self._scheduled = False
        frames = self._frames
        if not frames:
            return
        rxs = self._rxs
        self._frames = []
        self._rxs = []
        try:
            self.handle(frames, rxs)
        except Exception as exc:
            self.batch_failed(exc)

    @staticmethod
    def set_recv_buffer(transport: WSTransport, size: int) -> None:
        under = getattr(transport, "underlying_transport", None)
        sock = under.get_extra_info("socket") if under is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)

    def pause_reading(self) -> None:
        """Stop reading the socket (flow control: the sink is behind)."""
        t = self.transport
        if t is not None and not t.is_disconnected:
            with contextlib.suppress(Exception):
                t.underlying_transport.pause_reading()

    def resume_reading(self, paused: float) -> None:
        """Read again after a pause of ``paused`` seconds, which is not silence."""
        self.last_rx += paused
        self.tracker.shift(paused)
        t = self.transport
        if t is not None and not t.is_disconnected:
            with contextlib.suppress(Exception):
                t.underlying_transport.resume_reading()
