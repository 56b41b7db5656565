"""Run a venue capture against a simulator inside a test (real sockets, loopback).

``async with capturing(sim, "kraken", ["BTC/USD"], root) as cap:`` starts
``run_capture`` in a task (REST discovery against the simulator too) and
yields the :class:`~ssmd.runtime.capture.Capture` once its connections are
started; leaving the block stops it cleanly (flush + close of the archive,
or of the ``sink`` given instead; its close error is raised there).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from helpers import async_wait_until
from ssmd.archive import iter_lines
from ssmd.connectors.base import InstrumentQuery
from ssmd.connectors.registry import create
from ssmd.runtime.capture import Capture, run_capture
from ssmd.runtime.shutdown import StopSignal
from ssmd.runtime.sink import ArchiveSink


@contextlib.asynccontextmanager
async def capturing(
    sim: Any,
    venue: str,
    symbols: Sequence[str],
    root: Path,
    *,
    all_: bool = False,
    stall_timeout: float = 10.0,
    with_metrics: bool = False,
    sink: Any = None,
    **settings: Any,
) -> AsyncIterator[Capture]:
    connector = create(venue, {"ws_url": sim.ws_url, "rest_url": sim.rest_url, **settings})
    if sink is None:
        sink = ArchiveSink(root, venue, "test", flush_interval=0.05)
    stop = StopSignal()
    got: list[Capture] = []
    task = asyncio.create_task(
        run_capture(
            connector,
            InstrumentQuery(symbols=tuple(symbols), all=all_),
            sink,
            stop=stop,
            started=got.append,
            writer="test",
            stall_timeout=stall_timeout,
            backoff_base=0.05,
            backoff_cap=0.5,
            with_metrics=with_metrics,
        )
    )
    await async_wait_until(lambda: got or task.done(), timeout=20, message="capture started")
    if task.done():
        await task  # raises the start-up error
    try:
        yield got[0]
    finally:
        stop.set("test")
        await asyncio.wait_for(task, 20)


def data_count(cap: Capture) -> int:
    return cap.totals().get("data", 0)


def sim_messages(sim: Any) -> int:
    return sum(sim.stats()["messages"].values())


def archive(root: Path, venue: str) -> list[dict[str, Any]]:
    """Every archived envelope line, decoded, in rx order."""
    return [orjson.loads(x) for x in iter_lines(root, venue)]


def kinds(lines: list[dict[str, Any]]) -> Counter[str]:
    """Venue messages per kind (ssmd's own status and malformed lines left out)."""
    return Counter(
        x["subj"].split(".json.", 1)[1].split(".", 1)[0]
        for x in lines
        if not (isinstance(x["msg"], dict) and "ssmd" in x["msg"])
    )


def ssmd_events(lines: list[dict[str, Any]]) -> list[str]:
    """The ``ssmd`` values of connector/core status lines, in order."""
    return [
        x["msg"]["ssmd"]
        for x in lines
        if ".json.status." in x["subj"] and isinstance(x["msg"], dict) and "ssmd" in x["msg"]
    ]


def clear_of_midnight(now: dt.datetime, margin: float = 60.0) -> float:
    """Seconds to wait so a capture starts ``margin`` seconds clear of midnight UTC.

    ``ssmd dq trades --rest-url`` reads the archive by receive day and the REST
    side by exchange time, and the Futures simulator dates its snapshot trades up
    to 20 s back: a capture near midnight would fall on two days.
    """
    since = (now - now.replace(hour=0, minute=0, second=0, microsecond=0)).total_seconds()
    until = 86_400.0 - since
    if until < margin:
        return until + margin
    return max(0.0, margin - since)
