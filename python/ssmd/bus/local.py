"""The in-process bus path: connector -> :class:`MemoryBus` -> archiver, one process.

``ssmd connect <venue> --nats memory://`` (or ``NATS_URL=memory://``) runs
the same bus sink and the same archiver as the NATS deployment, with the
in-process bus between them: the archive gets the same ``seq`` stamps,
manifests and gap records, and nothing but this process is needed. The
in-memory stream keeps at most ``max_bytes`` (default 64 MiB) of messages;
if the archiver ever falls that far behind, the oldest are discarded and
the archiver records the gap, as with JetStream limits.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ssmd.bus.archiver import ArchiverStats, VenueArchiver
from ssmd.bus.memory import MemoryBus, MemorySource, MemoryTransport
from ssmd.bus.sink import DEFAULT_MAX_PENDING, BusSink
from ssmd.bus.streams import StreamSpec, spec_for_venue, stream_specs
from ssmd.runtime.latency import LatencyHistogram

__all__ = ["MEMORY_URLS", "LocalPipeline", "is_memory_url"]

MEMORY_URLS = ("memory", "memory://")


def is_memory_url(url: str | None) -> bool:
    return bool(url) and url.strip().lower() in MEMORY_URLS  # type: ignore[union-attr]


class LocalPipeline:
    """A bus sink whose messages an in-process archiver writes to ``root``.

    Use as the connector's sink: ``await start()``, hand it to
    ``run_capture``; its :meth:`aclose` (called by ``run_capture``) confirms
    the last messages, lets the archiver write them, and closes the archive.
    """

    def __init__(
        self,
        venue: str,
        root: str | Path,
        *,
        env: str,
        writer: str = "local",
        max_bytes: int = 64 << 20,
        high_water: int | None = None,
        metrics: Any = None,
        extra_streams: Sequence[StreamSpec] = (),
        bus: MemoryBus | None = None,
        **archiver_args: Any,
    ) -> None:
        spec = replace(spec_for_venue(venue, stream_specs(env)), max_bytes=max_bytes)
        #: the in-process bus: the venue's stream (and ``extra_streams``, for other
        #: consumers in this process that publish, such as dead letters); given
        #: ``bus``, the venue's stream is added to it (one bus that several
        #: captures and their consumers share)
        if bus is None:
            self.bus = MemoryBus([spec, *extra_streams])
        else:
            self.bus = bus
            bus.add(spec)
            for extra in extra_streams:
                if extra.name not in bus.streams:
                    bus.add(extra)
        self._high_water = max_bytes // 2 if high_water is None else high_water
        self.stream = spec.name
        self.source = self.bus.source(spec.name)
        self.sink = BusSink(
            MemoryTransport(self.bus),
            env=env,
            venue=venue,
            max_pending_bytes=DEFAULT_MAX_PENDING,
            metrics=metrics,
        )
        self.archiver = VenueArchiver(
            self.source,
            root,
            venue,
            env=env,
            writer=writer,
            metrics=metrics,
            **archiver_args,
        )
        #: other consumers of the venue's stream in this process whose backlog also
        #: pauses reading (:meth:`hold_for`)
        self.consumers: list[MemorySource] = []
        self._stop = asyncio.Event()
        self._task: asyncio.Task[ArchiverStats] | None = None

    def hold_for(self, source: MemorySource) -> None:
        """Pause reading while ``source`` (another consumer of the venue's stream in this
        process) is ``high_water`` behind, as for the archiver, so the stream's limit
        never discards what it has not read."""
        self.consumers.append(source)

    async def start(self) -> None:
        await self.sink.transport.start(self.sink)  # type: ignore[attr-defined]
        await self.sink.start()
        self._task = asyncio.create_task(self.archiver.run(self._stop), name="ssmd-local-archiver")
        await self.archiver.started.wait()

    # -- the Sink interface (delegated) -----------------------------------

    wants_groups = True
    #: what :attr:`latency` measures: receive time to accepted by the in-process bus
    latency_stage = "acked"

    @property
    def latency(self) -> LatencyHistogram:
        """The bus sink's receive-to-acknowledged histogram (``ssmd_pipeline_latency_seconds``)."""
        return self.sink.latency

    def write(self, lines: bytes) -> None:
        self.sink.write(lines)

    def write_batch(self, batch: Any, groups: Any) -> None:
        self.sink.write_batch(batch, groups)

    def write_status(self, subject: str, line: bytes, msg_id: str) -> None:
        self.sink.write_status(subject, line, msg_id)

    def flush(self) -> int:
        return 0

    def close(self) -> None:
        self.sink.close()

    #: the archiver is in this process and writes to a local disk: wait for it
    max_pause: float | None = None

    @property
    def high_water(self) -> int:
        """Reading pauses here (half the in-memory stream unless set)."""
        return self._high_water

    @property
    def queued_bytes(self) -> int:
        """Not yet confirmed by the bus plus not yet taken by the archiver (or by the
        consumer furthest behind, :meth:`hold_for`)."""
        behind = max((c.backlog_bytes for c in self.consumers), default=0)
        return self.sink.pending_bytes + max(self.source.backlog_bytes, behind)

    async def aclose(self) -> ArchiverStats:
        """Confirm what is queued, let the archiver write all of it, close the archive."""
        try:
            await self.sink.aclose()
        finally:
            st = self.bus.stream(self.stream)
            task = self._task
            if task is not None:
                while (self.archiver.stats.last_seq or 0) < st.last_seq and not task.done():
                    await asyncio.sleep(0.01)
                self._stop.set()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        return self.archiver.stats
