"""Signal runners on the in-process bus, as ``ssmd demo`` runs them.

Captures in this process publish to one :class:`~ssmd.bus.memory.MemoryBus`
(each through its :class:`~ssmd.bus.local.LocalPipeline`);
:class:`InProcessSignals` runs one :class:`~ssmd.signals.live.SignalRunner`
per signal on that bus beside them (:meth:`SignalRunner.run_in_process`:
the consume loop of ``ssmd signal run``), and, when the captures ended, lets
them process what is left before stopping them. Their fires are on the
bus's ``SIGNALS`` stream, where any consumer in the process reads them
(:func:`read_fires`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from typing import Any

from ssmd.signals.api import Signal
from ssmd.signals.engine import Fire, SignalRun
from ssmd.signals.live import RunnerStats, SignalRunner

__all__ = ["InProcessSignals", "read_fires"]


class InProcessSignals:
    """``signals`` over ``venues`` on ``bus``, each a runner in a task of this process."""

    def __init__(
        self,
        bus: Any,
        signals: Sequence[Signal],
        venues: Sequence[str],
        *,
        env: str = "prod",
        batch: int = 2000,
    ) -> None:
        self.bus = bus
        self.runners = [
            SignalRunner(SignalRun(s, venues=list(venues)), env=env, venues=venues, batch=batch)
            for s in signals
        ]
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[RunnerStats]] = []

    async def start(self) -> None:
        """Start every runner; returns once each reads the bus (or raises the first error)."""
        for r in self.runners:
            self._tasks.append(
                asyncio.create_task(
                    r.run_in_process(self.bus, self._stop), name=f"ssmd-signal-{r.consumer}"
                )
            )
        for r, task in zip(self.runners, self._tasks, strict=True):
            started = asyncio.create_task(r.started.wait())
            await asyncio.wait({task, started}, return_when=asyncio.FIRST_COMPLETED)
            if task.done():
                started.cancel()
                await self.cancel()
                await task  # its error

    def sources(self, venue: str) -> list[Any]:
        """Every runner's consumer of ``venue``'s stream (for back-pressure)."""
        return [r.sources[venue] for r in self.runners if venue in r.sources]

    async def finish(self, timeout: float = 30.0) -> list[RunnerStats]:
        """Let the runners process what the bus holds (up to ``timeout`` s), then stop them."""
        deadline = time.monotonic() + timeout
        for r, task in zip(self.runners, self._tasks, strict=True):
            while not task.done() and time.monotonic() < deadline:
                if await r.caught_up():
                    break
                await asyncio.sleep(0.05)
        self._stop.set()
        return list(await asyncio.gather(*self._tasks))

    async def cancel(self) -> None:
        """Stop them without waiting for the rest (a capture failed)."""
        self._stop.set()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task


async def read_fires(bus: Any, subject: str = "signals.>", durable: str = "reader") -> list[Fire]:
    """The fires on ``bus``'s ``SIGNALS`` stream not read yet by ``durable``, as a
    subscriber in this process reads them (a durable consumer filtered on ``subject``)."""
    src = bus.source("SIGNALS", durable, filter_subject=subject)
    await src.start(bus.stream("SIGNALS").acked.get(durable))
    out = []
    while msgs := await src.fetch(1000, 0):
        out += [Fire.from_body(data) for _, data in msgs]
        await src.ack_upto(msgs[-1][0])
    return out
