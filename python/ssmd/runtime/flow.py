"""Flow control: stop reading the venue sockets while the sink is behind.

A sink reports ``queued_bytes`` (accepted but not yet durable: queued for
the archive writer thread, or not yet acknowledged by JetStream) and a
``high_water`` mark. When a batch leaves the sink at or above the mark, the
capture pauses reading on every connection of the venue: the kernel's socket
buffers and then the venue's own send buffer hold the data instead of
this process's memory. Reading resumes when the sink has drained to half
the mark. Nothing is lost by a pause, and memory stays bounded.

A sink may also set ``max_pause`` (seconds). If one pause lasts that long
(NATS down for minutes), reading resumes anyway and the sink's own overflow
policy applies (the bus sink drops and records a ``gap`` line) until the
backlog has drained; a venue is never left unread for longer than that. The
archive sink has no limit: the disk is the last stop, and a venue that gives
up on a slow reader shows up as a recorded disconnect and reconnect.

Time spent paused is not silence: the watchdog and the keep-alive check
shift their clocks by the length of each pause.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Any, Protocol

__all__ = ["FlowControl", "FlowOwner", "Reader"]

log = logging.getLogger("ssmd.flow")

#: how often a paused capture looks at the sink's backlog
POLL = 0.002
#: a pause at least this long is logged (at most once a minute)
LOG_AFTER = 1.0


class Reader(Protocol):
    """A connection whose socket reads can be held."""

    def pause_reading(self) -> None: ...

    def resume_reading(self, paused: float) -> None:
        """Read again after a pause of ``paused`` seconds (which is not the venue's silence)."""
        ...


class FlowOwner(Protocol):
    """What the flow control asks of its capture."""

    @property
    def venue(self) -> str: ...

    @property
    def stopping(self) -> bool: ...

    @property
    def readers(self) -> Sequence[Reader]: ...


class FlowControl:
    """Pauses and resumes reading for one capture (:class:`FlowOwner`)."""

    def __init__(self, capture: FlowOwner, sink: Any) -> None:
        self.capture = capture
        self.sink = sink
        limit = getattr(sink, "max_pause", None)
        self.max_pause: float | None = float(limit) if limit is not None else None
        self.paused = False
        #: reading goes on past the mark (a pause reached ``max_pause``)
        self.overflow = False
        self._since = 0.0
        self._task: asyncio.Task[None] | None = None
        self._logged = 0.0
        # counters
        self.pauses = 0
        self.paused_seconds = 0.0
        self.longest = 0.0
        self.overflows = 0

    @property
    def high_water(self) -> int:
        """The sink's mark, read each time (the bus sink's follows its confirmed rate)."""
        return int(getattr(self.sink, "high_water", 0) or 0)

    def check(self) -> None:
        """After a write: pause when the sink is at its mark (cheap when it is not)."""
        if self.paused:
            return
        mark = self.high_water
        if mark <= 0:
            return
        q = self.sink.queued_bytes
        if self.overflow:
            if q <= mark // 2:
                self.overflow = False
                log.info("%s: sink drained; flow control on again", self.capture.venue)
            return
        if q >= mark and not self.capture.stopping:
            self._pause()

    def _pause(self) -> None:
        self.paused = True
        self.pauses += 1
        self._since = time.monotonic()
        for c in self.capture.readers:
            c.pause_reading()
        self._task = asyncio.get_running_loop().create_task(
            self._wait(), name=f"ssmd-{self.capture.venue}-flow"
        )

    async def _wait(self) -> None:
        sink = self.sink
        limit = self.max_pause
        try:
            while True:
                await asyncio.sleep(POLL)
                if sink.queued_bytes <= self.high_water // 2 or self.capture.stopping:
                    break
                if limit is not None and time.monotonic() - self._since >= limit:
                    self.overflow = True
                    self.overflows += 1
                    log.warning(
                        "%s: sink still behind after %.1fs (%d bytes queued); reading again, "
                        "its overflow policy applies",
                        self.capture.venue,
                        limit,
                        sink.queued_bytes,
                    )
                    break
        finally:
            # at shutdown the sockets stay paused: what they still hold arrived
            # after the stop and would only push the sink past its bound
            self.resume(read=not self.capture.stopping)

    def resume(self, read: bool = True) -> None:
        """Read again; clocks move on by the pause (``read=False``: only end the pause)."""
        if not self.paused:
            return
        self.paused = False
        now = time.monotonic()
        dt = now - self._since
        self.paused_seconds += dt
        self.longest = max(self.longest, dt)
        if read:
            for c in self.capture.readers:
                c.resume_reading(dt)
        if dt >= LOG_AFTER and now - self._logged >= 60.0:
            self._logged = now
            log.warning(
                "%s: reading was paused %.1fs while the sink caught up "
                "(%d pauses, %.1fs in all so far)",
                self.capture.venue,
                dt,
                self.pauses,
                self.paused_seconds,
            )

    async def close(self) -> None:
        """The capture stops: end a pause without reading again."""
        self.resume(read=False)
        t, self._task = self._task, None
        if t is not None and not t.done():
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t

    def stats(self) -> dict[str, float | int]:
        return {
            "pauses": self.pauses,
            "paused_seconds": round(self.paused_seconds, 3),
            "longest_pause": round(self.longest, 3),
            "overflows": self.overflows,
        }
