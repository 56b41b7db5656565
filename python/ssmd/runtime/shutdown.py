"""Clean shutdown: SIGINT, SIGTERM, SIGHUP or ``--duration`` stop reading,
process what is buffered, then flush and close the sink (the archive's last
member is fsynced and the file finalized with its manifest entry). A second
signal stops hard, after saying what that loses (:attr:`StopSignal.report`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["STOP_SIGNALS", "StopSignal", "install_stop_signals", "run_until_stopped"]

T = TypeVar("T")

#: the signals that stop a service cleanly (a terminal closing sends SIGHUP)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

log = logging.getLogger("ssmd.connect")


class StopSignal:
    """An event set by SIGINT/SIGTERM (or by :meth:`set`), with the signal's name."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.reason: str | None = None
        #: what a hard stop would lose now (e.g. "120 lines not confirmed by the bus"), if anything
        self.report: Callable[[], str | None] | None = None

    def set(self, reason: str = "stop") -> None:
        if self.reason is None:
            self.reason = reason
        self.event.set()

    async def wait(self, timeout: float | None = None) -> bool:
        """True when stopped, False when ``timeout`` passed first."""
        try:
            await asyncio.wait_for(self.event.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    @property
    def is_set(self) -> bool:
        return self.event.is_set()


def install_stop_signals(stop: StopSignal) -> Callable[[], None]:
    """Route SIGINT, SIGTERM and SIGHUP to ``stop``; returns a function that restores them.

    A second signal while stopping is left to the default handler (a hard
    stop), so a hung shutdown can still be interrupted; what that drops is
    logged first.
    """
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []

    def handler(sig: signal.Signals) -> None:
        if stop.is_set:
            lost = None
            if stop.report is not None:
                with contextlib.suppress(Exception):
                    lost = stop.report()
            if lost:
                log.error("second %s: stopping hard; %s are dropped", sig.name, lost)
            else:
                log.warning("second %s: stopping hard", sig.name)
            remove()
            signal.raise_signal(sig)
            return
        log.info("%s: stopping (flushing the archive)", sig.name)
        stop.set(sig.name)

    def remove() -> None:
        for s in installed:
            with contextlib.suppress(ValueError, RuntimeError):
                loop.remove_signal_handler(s)
        installed.clear()

    for sig in STOP_SIGNALS:
        try:
            loop.add_signal_handler(sig, handler, sig)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
            pass
    return remove


async def run_until_stopped(
    service: Callable[[asyncio.Event], Awaitable[T]], duration: float | None = None
) -> T:
    """Run ``service(stop_event)`` until a stop signal or ``duration`` seconds, then set
    the event and return what the service returns once it has finished cleanly."""
    stop = StopSignal()
    remove = install_stop_signals(stop)
    task = asyncio.ensure_future(service(stop.event))
    try:
        await asyncio.wait(
            {task, asyncio.create_task(stop.wait())},
            timeout=duration,
            return_when=asyncio.FIRST_COMPLETED,
        )
        stop.set("done")
        return await task
    finally:
        remove()
