"""The follower: CDC changes -> the same filter resolved again -> the capture's desired set."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from typing import Any

import orjson

from ssmd.cdc.wal2json import format_lsn, parse_lsn

__all__ = ["Follower"]

log = logging.getLogger("ssmd.follow")

#: the CDC stream is read from this long before the follower was made (clocks, a slow resolution)
START_MARGIN = 60.0


class Follower:
    """Keeps ``capture`` subscribed to what ``query`` resolves to in the secmaster, as it changes.

    ``connector`` must have resolved ``query`` through the secmaster (its
    resolution carries the snapshot's LSN): changes at or before that LSN are
    already in the capture and ignored; any later change of one of the
    connector's ``cdc_tables`` triggers a new resolution, at most once per
    ``debounce`` seconds (a burst of listings is one resolution).
    """

    def __init__(
        self,
        connector: Any,
        query: Any,
        capture: Any,
        nats_url: str,
        *,
        debounce: float = 0.2,
    ) -> None:
        snapshot = connector.resolution.snapshot_lsn
        if snapshot is None:
            raise ValueError("the connector's resolution did not come from the secmaster")
        self.connector = connector
        self.query = query
        self.capture = capture
        self.nats_url = nats_url
        self.debounce = debounce
        self.snapshot = int(snapshot)
        self.tables = tuple(connector.cdc_tables)
        self.dirty = asyncio.Event()
        self.changes = 0  # CDC changes after the snapshot that mattered
        self.resolutions = 0
        self.added = 0
        self.removed = 0
        self.last_lsn = self.snapshot
        #: made right after the capture started (the snapshot was read just before)
        self.created = time.time()

    def _on_change(self, data: bytes) -> None:
        try:
            body = orjson.loads(data)
            lsn = parse_lsn(body["lsn"])
        except Exception:
            return
        if lsn <= self.snapshot:
            return  # the snapshot the capture started from has it already
        if body.get("table") not in self.tables:
            return
        self.changes += 1
        self.last_lsn = max(self.last_lsn, lsn)
        self.dirty.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Follow until ``stop`` is set (or the task is cancelled)."""
        import nats
        from nats.js.api import ConsumerConfig, DeliverPolicy

        from ssmd.bus.nats import connect

        nc = await connect(self.nats_url, name=f"ssmd-follow-{self.connector.venue}")
        try:
            js = nc.jetstream()

            async def on_msg(msg: Any) -> None:
                self._on_change(msg.data)

            # an ordered consumer from a little before the snapshot was read: a change
            # committed after it was published after it too; what the snapshot has already
            # is skipped by LSN, other tables by name
            since = dt.datetime.fromtimestamp(self.created - START_MARGIN, dt.timezone.utc)
            sub = await js.subscribe(
                "cdc.>",
                stream="SECMASTER_CDC",
                cb=on_msg,
                ordered_consumer=True,
                config=ConsumerConfig(
                    deliver_policy=DeliverPolicy.BY_START_TIME,
                    opt_start_time=since,
                ),
            )
            log.info(
                "%s: following the secmaster's %s after %s",
                self.connector.venue,
                ", ".join(self.tables),
                format_lsn(self.snapshot),
            )
            try:
                while not stop.is_set():
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self.dirty.wait(), 0.5)
                    if not self.dirty.is_set():
                        continue
                    await asyncio.sleep(self.debounce)  # gather a burst
                    self.dirty.clear()
                    await self.resolve_again()
            finally:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()
        except nats.errors.Error as exc:
            log.warning("%s: following the secmaster stopped: %s", self.connector.venue, exc)
        finally:
            await nc.close()

    async def resolve_again(self) -> None:
        """Resolve the filter in the secmaster now and move the capture to the answer."""
        import httpx

        t0 = time.monotonic()
        try:
            async with httpx.AsyncClient(timeout=20.0) as client:
                res = await self.connector.resolve(self.query, client)
        except Exception as exc:  # the database is down for a moment: the next change retries
            log.warning("%s: resolving in the secmaster failed: %s", self.connector.venue, exc)
            self.dirty.set()
            return
        self.resolutions += 1
        for conn in self.capture.connections:
            self.connector.configure(conn.processor)  # precisions, categories of new instruments
        added, removed = self.capture.set_desired(res.instruments)
        self.added += added
        self.removed += removed
        if added or removed:
            log.info(
                "%s: the secmaster changed: %d instrument(s) subscribed, %d unsubscribed"
                " (%d desired, resolved in %.0f ms)",
                self.connector.venue,
                added,
                removed,
                len(self.capture.desired),
                (time.monotonic() - t0) * 1000,
            )
