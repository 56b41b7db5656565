"""Running the archiver against NATS (``ssmd archive``) and reading its health."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ssmd.bus.archiver import ArchiverStats, VenueArchiver, last_archived_seq
from ssmd.bus.nats import JetStreamSource, connect, ensure_streams, redact, stream_info
from ssmd.bus.streams import StreamSpec, spec_for_venue, stream_specs
from ssmd.errors import SinkError
from ssmd.runtime.shutdown import StopSignal, install_stop_signals
from ssmd.types import Venue

__all__ = ["VenueHealth", "archive_health", "check_venues", "run_archiver"]

log = logging.getLogger("ssmd.archiver")


def check_venues(venues: Sequence[str]) -> list[str]:
    """The venues to archive (all when none given); ``ConfigError`` for an unknown one."""
    chosen = [Venue.parse(v) for v in venues] if venues else list(Venue)
    return [v.value for v in dict.fromkeys(chosen)]


async def run_archiver(
    venues: Sequence[str],
    root: str | Path,
    *,
    env: str,
    url: str | None = None,
    consumer: str = "archiver",
    writer: str = "archiver",
    duration: float | None = None,
    stop: StopSignal | None = None,
    signals: bool = True,
    metrics: Any = None,
    specs: Sequence[StreamSpec] | None = None,
    **archiver_args: Any,
) -> list[ArchiverStats]:
    """Archive ``venues`` from JetStream until a stop signal, ``stop`` or ``duration``."""
    specs = list(specs) if specs is not None else stream_specs(env)
    nc = await connect(url, name=f"ssmd-archive-{writer}")
    stop = stop or StopSignal()
    remove = install_stop_signals(stop) if signals else None
    try:
        js = nc.jetstream()
        wanted = []
        for v in venues:
            primary = spec_for_venue(v, specs)
            wanted.append(primary)
            wanted += [s for s in specs if s.source and s.source[0] == primary.name]
        await ensure_streams(js, wanted)
        archivers = [
            VenueArchiver(
                JetStreamSource(nc, spec_for_venue(v, specs).name, consumer),
                root,
                v,
                env=env,
                writer=writer,
                metrics=metrics,
                **archiver_args,
            )
            for v in venues
        ]
        log.info(
            "archiving %s from %s into %s",
            ", ".join(a.source.stream for a in archivers),
            redact(url or ""),
            root,
        )
        tasks = [
            asyncio.create_task(a.run(stop.event), name=f"ssmd-archive-{a.venue}")
            for a in archivers
        ]
        waiter = asyncio.create_task(stop.wait(duration))
        done, _ = await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
        stop.set("duration" if waiter in done else "stop")
        results = await asyncio.gather(*tasks, return_exceptions=True)
        waiter.cancel()
        for r in results:
            if isinstance(r, BaseException):
                raise r
        return [r for r in results if isinstance(r, ArchiverStats)]
    finally:
        if remove is not None:
            remove()
        with contextlib.suppress(Exception):
            await nc.close()


@dataclass
class VenueHealth:
    venue: str
    stream: str
    stream_messages: int | None = None
    stream_bytes: int | None = None
    first_seq: int | None = None
    last_seq: int | None = None
    consumer_pending: int | None = None
    ack_floor: int | None = None
    redelivered: int | None = None
    archived_seq: int | None = None
    last_write: float | None = None
    files_today: int = 0
    lines_today: int = 0
    bytes_today: int = 0
    open_file: str | None = None


def _archive_side(root: Path, h: VenueHealth) -> None:
    import datetime as dt

    import orjson

    h.archived_seq = last_archived_seq(root, h.venue)
    vdir = root / h.venue
    if not vdir.is_dir():
        return
    day = dt.datetime.now(dt.timezone.utc).date().isoformat()
    latest = 0.0
    for p in vdir.glob("*/*"):
        if p.name.endswith(".part") or p.name.endswith(".gz") or p.name.endswith(".zst"):
            with contextlib.suppress(OSError):
                latest = max(latest, p.stat().st_mtime)
            if p.name.endswith(".part"):
                h.open_file = str(p.relative_to(root))
    h.last_write = latest or None
    with contextlib.suppress(OSError, ValueError):
        manifest = orjson.loads((vdir / day / "manifest.json").read_bytes())
        for f in manifest.get("files", ()):
            h.files_today += 1
            h.lines_today += int(f.get("lines") or 0)
            h.bytes_today += int(f.get("bytes") or 0)


async def archive_health(
    venues: Sequence[str],
    root: str | Path,
    *,
    env: str,
    url: str | None = None,
    consumer: str = "archiver",
    specs: Sequence[StreamSpec] | None = None,
) -> tuple[list[VenueHealth], str | None]:
    """Stream, consumer and archive figures per venue; the second value is a NATS error."""
    specs = list(specs) if specs is not None else stream_specs(env)
    out = [VenueHealth(v, spec_for_venue(v, specs).name) for v in venues]
    for h in out:
        _archive_side(Path(root), h)
    try:
        nc = await connect(url, name="ssmd-archive-status", connect_timeout=2.0)
    except SinkError as exc:  # not answering: the archive's side is still worth showing
        return out, str(exc)
    try:
        js = nc.jetstream()
        for h in out:
            info = await stream_info(js, h.stream)
            if info is None:
                continue
            h.stream_messages = int(info.state.messages)
            h.stream_bytes = int(info.state.bytes)
            h.first_seq = int(info.state.first_seq)
            h.last_seq = int(info.state.last_seq)
            try:
                ci = await js.consumer_info(h.stream, consumer)
            except Exception:
                continue
            h.consumer_pending = int(ci.num_pending or 0)
            h.ack_floor = int(ci.ack_floor.stream_seq) if ci.ack_floor else None
            h.redelivered = int(ci.num_redelivered or 0)
    finally:
        await nc.close()
    return out, None


def age(ts: float | None) -> str:
    if ts is None:
        return "never"
    secs = max(0.0, time.time() - ts)
    if secs < 120:
        return f"{secs:.0f}s ago"
    if secs < 7200:
        return f"{secs / 60:.0f}m ago"
    return f"{secs / 3600:.1f}h ago"
