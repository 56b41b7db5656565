"""Where envelope lines go: the :class:`Sink` interface and the archive sink.

Without ``NATS_URL`` the connector writes the archive itself
(:class:`ArchiveSink`, docs/connect.md); the bus sink implements the same
methods. ``write`` is called on the event loop thread and must not block:
:class:`ArchiveSink` hands lines to a writer thread that compresses, appends
and fsyncs (the Rust writer releases the GIL while it does), at least every
``flush_interval`` seconds or every ``flush_bytes`` of input, and on
:meth:`close`.

Memory of :class:`ArchiveSink`, bounded: lines waiting for the writer thread
(reading pauses at ``high_water``, 4 MiB; one socket read more may arrive
before the pause takes effect), and the Rust writer's member buffer
(``flush_bytes`` of lines, 1 MiB) with its compressed copy. The writer
thread hands the waiting chunks to the Rust writer one by one, never joined
into one more copy.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from ssmd.archive import ArchiveWriter
from ssmd.core import Batch
from ssmd.errors import SinkError
from ssmd.runtime.latency import LatencyHistogram, first_rx

__all__ = ["ArchiveSink", "MemorySink", "Sink"]

log = logging.getLogger("ssmd.sink")


class Sink(Protocol):
    """Receives complete ``\\n``-terminated envelope lines, in order.

    The connector calls :meth:`write_batch` with each core batch and its
    per-subject groups (``(subject, lines, count, first message id)``) and
    :meth:`write_status` with its own status lines; the archive sinks only
    need the lines, the bus sink publishes one message per group.
    """

    def write(self, lines: bytes) -> None:
        """Queue lines (never blocks the event loop for IO)."""

    #: whether :meth:`write_batch` needs ``batch.groups()`` (else it gets ``()``)
    wants_groups: bool

    def write_batch(self, batch: Batch, groups: Sequence[tuple[str, bytes, int, str]]) -> None:
        """Queue one core batch (``groups`` is ``batch.groups()`` when ``wants_groups``)."""

    def write_status(self, subject: str, line: bytes, msg_id: str) -> None:
        """Queue one status line of ``subject``."""

    def flush(self) -> int:
        """Make everything written so far durable; return the lines made durable."""

    def close(self) -> None:
        """Flush and release the sink; later writes raise ``SinkError``."""

    @property
    def queued_bytes(self) -> int:
        """Bytes accepted and not yet durable (flow control reads it after each batch)."""

    @property
    def high_water(self) -> int:
        """Reading pauses while ``queued_bytes`` is at or above this (0: never)."""

    #: seconds a pause may last before the sink's overflow policy applies (None: no limit)
    max_pause: float | None


class _LineSink:
    """``write_batch``/``write_status`` of sinks that only need the lines."""

    wants_groups = False
    high_water = 0
    max_pause: float | None = None

    @property
    def queued_bytes(self) -> int:
        return 0

    def write(self, lines: bytes) -> None:
        raise NotImplementedError

    def write_batch(self, batch: Batch, groups: Sequence[tuple[str, bytes, int, str]]) -> None:
        self._put(batch.lines(), len(batch))

    def write_status(self, subject: str, line: bytes, msg_id: str) -> None:
        self._put(line, 1)

    def _put(self, lines: bytes, count: int) -> None:
        self.write(lines)


class MemorySink(_LineSink):
    """Keeps lines in memory (tests and tools)."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.closed = False

    def write(self, lines: bytes) -> None:
        if self.closed:
            raise SinkError("sink is closed")
        if lines:
            self.chunks.append(lines)

    def flush(self) -> int:
        return 0

    def close(self) -> None:
        self.closed = True

    def lines(self) -> list[bytes]:
        """Every line written so far, without newlines."""
        return b"".join(self.chunks).splitlines()


class ArchiveSink(_LineSink):
    """The embedded default: a writer thread feeding the Rust archive writer."""

    #: what :attr:`latency` measures: receive time to fsynced in the archive
    latency_stage = "durable"

    def __init__(
        self,
        root: str | Path,
        venue: str,
        writer: str,
        *,
        flush_interval: float = 0.2,
        flush_bytes: int = 1 << 20,
        rotation_secs: int = 900,
        fsync: bool = True,
        codec: str = "gzip",
        high_water: int = 4 << 20,
    ) -> None:
        self._writer = ArchiveWriter(
            root,
            venue,
            writer,
            rotation_secs=rotation_secs,
            fsync=fsync,
            codec=codec,
            max_buffer_bytes=flush_bytes,
        )
        self.venue = venue
        self.flush_interval = flush_interval
        #: a member is compressed and fsynced at least every this many bytes of lines
        self.flush_bytes = flush_bytes
        #: reading pauses while this much waits for the writer thread (bounded memory)
        self.high_water = high_water
        #: (lines, receive time of the first, line count) waiting for the writer thread
        self._queue: deque[tuple[bytes, int, int]] = deque()
        self._bytes_queued = 0  # only the loop thread adds
        self._bytes_taken = 0  # only the writer thread adds
        self._cond = threading.Condition()
        self._closing = False
        self._closed = False
        self._error: BaseException | None = None
        self._flush_requests = 0
        self._flushes_done = 0
        self._durable = 0  # lines made durable and not yet reported by flush()
        self.lines_durable = 0
        #: receive time to durable, per line (recorded by the writer thread)
        self.latency = LatencyHistogram()
        self._thread = threading.Thread(target=self._run, name=f"ssmd-sink-{venue}", daemon=True)
        self._thread.start()

    # -- loop side -------------------------------------------------------

    def write(self, lines: bytes) -> None:
        self._put(lines, lines.count(b"\n"))

    def _put(self, lines: bytes, count: int) -> None:
        if self._error is not None:
            raise SinkError(f"archive writer failed: {self._error}") from self._error
        if self._closing:
            raise SinkError("sink is closed")
        if not lines:
            return
        self._queue.append((lines, first_rx(lines), count))
        self._bytes_queued += len(lines)
        if self._bytes_queued - self._bytes_taken >= self.flush_bytes:
            with self._cond:
                self._cond.notify()

    @property
    def queued_bytes(self) -> int:
        """Bytes handed to :meth:`write` and not yet taken by the writer thread."""
        return max(0, self._bytes_queued - self._bytes_taken)

    @property
    def path(self) -> str | None:
        """The file being written (``.part``), if any."""
        return self._writer.path

    @property
    def bytes_in(self) -> int:
        return self._writer.bytes_in

    @property
    def bytes_out(self) -> int:
        return self._writer.bytes_out

    def flush(self) -> int:
        """Block until everything queued so far is compressed and fsynced."""
        with self._cond:
            self._flush_requests += 1
            target = self._flush_requests
            self._cond.notify()
            while self._flushes_done < target and self._error is None and self._thread.is_alive():
                self._cond.wait(0.5)
            if self._error is not None:
                raise SinkError(f"archive writer failed: {self._error}") from self._error
            n, self._durable = self._durable, 0
            return n

    def close(self) -> None:
        """Write what is queued, flush, finalize the file and the manifest."""
        if self._closed:
            return
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join()
        self._closed = True
        if self._error is not None:
            raise SinkError(f"archive writer failed: {self._error}") from self._error

    # -- writer thread ---------------------------------------------------

    def _take(self, w: ArchiveWriter, written: list[tuple[int, int]]) -> int:
        """Hand the chunks waiting now to the Rust writer; returns the bytes.

        Chunks are joined into pieces of about ``flush_bytes`` (one more copy of
        at most that much, never of the whole queue): every call into the writer
        gives up the GIL and must win it back from the busy event loop, which can
        take a switch interval (5 ms), so a call per small chunk would starve
        this thread. ``written`` collects ``(rx, lines)`` of chunks not yet known
        durable; when the writer completes a member on its own (every
        ``flush_bytes``), what came before the current piece is durable and its
        latency is recorded.
        """
        n = 0
        q = self._queue
        left = len(q)  # what comes later waits for the next round (and its flush)
        while left:
            parts: list[bytes] = []
            meta: list[tuple[int, int]] = []
            size = 0
            while left and size < self.flush_bytes:
                data, rx, count = q.popleft()
                left -= 1
                parts.append(data)
                meta.append((rx, count))
                size += len(data)
            piece = parts[0] if len(parts) == 1 else b"".join(parts)
            del parts
            members = w.bytes_out
            w.write(piece)
            del piece
            n += size
            self._bytes_taken += size
            if written and w.bytes_out != members:
                self._durable_now(written)
            written.extend(meta)
        return n

    def _durable_now(self, written: list[tuple[int, int]]) -> None:
        done_ns = time.time_ns()
        latency = self.latency
        for rx, count in written:
            latency.observe_since(rx, done_ns, count)
        written.clear()

    def _run(self) -> None:
        w = self._writer
        last_flush = time.monotonic()
        unflushed = 0
        written: list[tuple[int, int]] = []  # (rx, lines) written and not yet flushed
        try:
            while True:
                with self._cond:
                    # a member's worth already waiting: no sleep (the loop notifies once,
                    # when it crosses the mark, and may be paused waiting for this thread)
                    if (
                        not self._closing
                        and self._flush_requests == self._flushes_done
                        and self.queued_bytes < self.flush_bytes
                    ):
                        timeout = max(0.0, last_flush + self.flush_interval - time.monotonic())
                        if unflushed == 0 and not self._queue:
                            timeout = self.flush_interval
                        self._cond.wait(timeout)
                    closing = self._closing
                    requested = self._flush_requests
                unflushed += self._take(w, written)
                now = time.monotonic()
                due = now - last_flush >= self.flush_interval or unflushed >= self.flush_bytes
                if closing or requested != self._flushes_done or (due and unflushed):
                    n = w.flush()
                    if written:
                        self._durable_now(written)
                    self.lines_durable += n
                    unflushed = 0
                    last_flush = now
                    with self._cond:
                        self._durable += n
                        self._flushes_done = requested
                        self._cond.notify_all()
                elif due:
                    last_flush = now
                    w.rotate(time.time_ns())
                if closing and not self._queue:
                    break
            w.close()
        except BaseException as exc:  # reported to the loop on the next write/flush
            log.error("archive writer for %s failed: %s", self.venue, exc)
            self._error = exc
            with self._cond:
                self._cond.notify_all()
            with contextlib.suppress(Exception):
                w.close()
