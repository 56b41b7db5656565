"""The archiver service (``ssmd archive``): bus -> gzip JSONL archive.

One :class:`VenueArchiver` per venue stream reads a durable pull consumer in
batches, stamps each line with its stream sequence (``"seq":M`` or
``"seq":[M,i]``, in Rust), writes through the Rust archive writer, and
acknowledges (``AckPolicy.ALL``, one confirmed ack per flush) only after the
gzip member holding the lines is written and fsynced. After a crash the
writer repairs its ``.part`` file at start-up and the archiver resumes after
the highest stream sequence the manifests record, skipping redelivered
messages that are already on disk. A jump in stream sequence (messages aged
out of the stream or deleted before they were archived) is written into the
archive as a ``gap`` status line and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson

from ssmd.archive import ArchiveWriter
from ssmd.core import stamp_seq
from ssmd.runtime.status import status_line

__all__ = ["ArchiverStats", "Source", "VenueArchiver", "last_archived_seq"]

log = logging.getLogger("ssmd.archiver")


class Source(Protocol):
    """A durable pull consumer (:class:`ssmd.bus.nats.JetStreamSource` or the in-process one)."""

    stream: str

    async def start(self, after: int | None = None) -> None: ...
    async def fetch(self, max_msgs: int, timeout: float) -> list[tuple[int, bytes]]: ...
    async def ack_upto(self, seq: int) -> None: ...
    async def pending(self) -> int | None: ...
    async def stream_bounds(self) -> tuple[int, int] | None: ...
    async def close(self) -> None: ...


def _seq_stream(value: Any) -> int | None:
    if isinstance(value, int):
        return value
    if isinstance(value, list) and value and isinstance(value[0], int):
        return int(value[0])
    return None


def last_archived_seq(root: str | Path, venue: str) -> int | None:
    """The highest stream sequence any manifest of ``venue`` records (newest day first)."""
    vdir = Path(root) / venue
    if not vdir.is_dir():
        return None
    days = sorted((p for p in vdir.iterdir() if p.is_dir() and len(p.name) == 10), reverse=True)
    for day in days:
        try:
            manifest = orjson.loads((day / "manifest.json").read_bytes())
        except (OSError, orjson.JSONDecodeError):
            continue
        best = None
        for f in manifest.get("files", ()):
            s = _seq_stream(f.get("last_seq"))
            if s is not None and (best is None or s > best):
                best = s
        if best is not None:
            return best
    return None


def _rx_of(payload: bytes) -> int | None:
    if payload.startswith(b'{"rx":'):
        end = 6
        while end < len(payload) and 48 <= payload[end] <= 57:
            end += 1
        if end > 6:
            return int(payload[6:end])
    return None


@dataclass
class ArchiverStats:
    venue: str
    stream: str
    messages: int = 0
    lines: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    skipped: int = 0
    gaps: int = 0
    missing: int = 0
    malformed: int = 0
    flushes: int = 0
    last_seq: int | None = None
    last_write: float | None = None
    pending: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class VenueArchiver:
    """Drains one venue stream into ``{root}/{venue}/...`` until stopped."""

    def __init__(
        self,
        source: Source,
        root: str | Path,
        venue: str,
        *,
        env: str = "prod",
        writer: str = "archiver",
        rotation_secs: int = 900,
        codec: str = "gzip",
        fsync: bool = True,
        flush_interval: float = 1.0,
        flush_bytes: int = 16 << 20,
        batch: int = 4096,
        metrics: Any = None,
    ) -> None:
        self.source = source
        self.root = Path(root)
        self.venue = venue
        self.env = env
        self.writer_name = writer
        self.rotation_secs = rotation_secs
        self.codec = codec
        self.fsync = fsync
        self.flush_interval = flush_interval
        self.flush_bytes = flush_bytes
        self.batch = batch
        self.metrics = metrics
        self.stats = ArchiverStats(venue, source.stream)
        self.conn = f"archiver-{writer}"
        self.status_subject = f"{env}.{venue}.json.status.archiver"
        self.bad_subject = f"{env}.{venue}.json.malformed.archiver"
        self._writer: ArchiveWriter | None = None
        self._pending_at = 0.0
        self.started = asyncio.Event()

    def _gap(self, first: int, last: int, rx: int | None, reason: str = "stream") -> bytes:
        n = last - first + 1
        self.stats.gaps += 1
        self.stats.missing += n
        if self.metrics is not None:
            self.metrics.arch_gaps.labels(self.venue).inc()
            self.metrics.arch_missing.labels(self.venue).inc(n)
        log.warning(
            "%s: stream %s messages %d..%d (%d) are gone (%s); recorded as a gap",
            self.venue,
            self.source.stream,
            first,
            last,
            n,
            reason,
        )
        detail = {
            "reason": reason,
            "stream": self.source.stream,
            "from": first,
            "to": last,
            "missing": n,
        }
        return status_line("gap", self.conn, self.status_subject, detail, rx=rx)

    async def run(self, stop: asyncio.Event) -> ArchiverStats:
        """Archive until ``stop`` is set; then flush, acknowledge and close."""
        src = self.source
        st = self.stats
        w = await asyncio.to_thread(
            ArchiveWriter,
            self.root,
            self.venue,
            self.writer_name,
            rotation_secs=self.rotation_secs,
            codec=self.codec,
            fsync=self.fsync,
            max_buffer_bytes=max(self.flush_bytes * 2, 4 << 20),
        )
        self._writer = w
        # after the writer's repair of a crashed run's .part file
        last = await asyncio.to_thread(last_archived_seq, self.root, self.venue)
        bounds = await src.stream_bounds()
        if last is not None and bounds is not None and 0 < bounds[1] < last:
            log.warning(
                "%s: stream %s ends at %d but the archive already holds %d: "
                "the stream was recreated; archiving it from its start",
                self.venue,
                src.stream,
                bounds[1],
                last,
            )
            last = None
        await src.start(last)
        if last is not None:
            log.info("%s: archive holds %s up to sequence %d", self.venue, src.stream, last)
        st.last_seq = last
        self.started.set()
        unacked: int | None = None
        unflushed = 0
        last_flush = time.monotonic()
        m = self.metrics
        try:
            while not stop.is_set():
                wait = max(0.0, last_flush + self.flush_interval - time.monotonic())
                msgs = await src.fetch(self.batch, min(wait, 0.25) if unacked else 0.25)
                if msgs:
                    unacked = msgs[-1][0]
                    seqs: list[int] = []
                    payloads: list[bytes] = []
                    gap_lines: list[bytes] = []
                    for seq, data in msgs:
                        if last is not None:
                            if seq <= last:
                                st.skipped += 1
                                continue
                            if seq > last + 1:
                                gap_lines.append(self._gap(last + 1, seq - 1, _rx_of(data)))
                        seqs.append(seq)
                        payloads.append(data)
                        last = seq
                    if len(seqs) < len(msgs) and m is not None:
                        m.arch_skipped.labels(self.venue).inc(len(msgs) - len(seqs))
                    if gap_lines:
                        w.write(b"".join(gap_lines))
                    if seqs:
                        data, nlines, bad = stamp_seq(seqs, payloads, self.bad_subject, self.conn)
                        w.write(data)
                        unflushed += len(data)
                        st.messages += len(seqs)
                        st.lines += nlines
                        st.malformed += bad
                        st.bytes_in += len(data)
                        st.last_seq = last
                        if m is not None:
                            m.arch_lines.labels(self.venue).inc(nlines)
                            m.arch_bytes.labels(self.venue).inc(len(data))
                now = time.monotonic()
                if unacked is not None and (
                    unflushed >= self.flush_bytes or now - last_flush >= self.flush_interval
                ):
                    await self._flush(w, unacked)
                    unacked = None
                    unflushed = 0
                    last_flush = time.monotonic()
                elif unacked is None and now - last_flush >= self.flush_interval:
                    await asyncio.to_thread(w.rotate, time.time_ns())
                    last_flush = now
                    st.pending = await src.pending()
                    if m is not None and st.pending is not None:
                        m.arch_pending.labels(self.venue).set(st.pending)
            if unacked is not None:
                await self._flush(w, unacked)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(w.close)
            st.bytes_out = w.bytes_out
            await src.close()
        log.info(
            "%s: archived %d messages (%d lines), skipped %d already on disk, %d gap(s)",
            self.venue,
            st.messages,
            st.lines,
            st.skipped,
            st.gaps,
        )
        return st

    async def _flush(self, w: ArchiveWriter, ack: int) -> None:
        await asyncio.to_thread(w.flush)
        await self.source.ack_upto(ack)
        st = self.stats
        st.flushes += 1
        st.last_write = time.time()
        st.bytes_out = w.bytes_out
        if st.last_write - self._pending_at >= 1.0:
            self._pending_at = st.last_write
            st.pending = await self.source.pending()
        m = self.metrics
        if m is not None:
            m.arch_last_write.labels(self.venue).set(st.last_write)
            m.arch_bytes_out.labels(self.venue).set(st.bytes_out)
            if st.pending is not None:
                m.arch_pending.labels(self.venue).set(st.pending)
