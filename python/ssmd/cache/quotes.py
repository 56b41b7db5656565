"""The last quote and trade of every instrument, from the market-data streams (``--quotes``).

One reader per venue stream (``{ENV}_{VENUE}``) takes what arrives from now
on, keeps per batch only the newest quote and trade of each instrument
(normalized by the core: ``Quote`` from tickers and best bid/ask, ``Trade``
from trades), and writes each in one pipelined round trip to
``ssmd:{venue}:quote:{instrument}``: ``bid``, ``bid_size``, ``ask``,
``ask_size``, ``last``, ``quote_ts`` and ``quote_rx``; ``trade_price``,
``trade_size``, ``trade_side``, ``trade_ts`` and ``trade_rx`` (exact decimal
text; ``*_ts`` the venue's time, ``*_rx`` the receive time of the line it
came from, both in ns since the epoch). One reader per stream writes in
stream order; a restart starts from the stream's end (only the latest
values matter).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import orjson

from ssmd.core import normalize_lines

__all__ = ["QuoteCache", "latest"]

log = logging.getLogger("ssmd.cache")

#: subject kinds that carry quotes or trades (matched with a "." after the subject)
KINDS = (b".json.ticker.", b".json.trade.", b".json.best_bid_ask.", b".json.book.")


def quote_key(venue: str, instrument: str, prefix: str = "ssmd") -> str:
    return f"{prefix}:{venue}:quote:{instrument}"


def latest(venue: str, payloads: Sequence[bytes]) -> dict[str, dict[str, str]]:
    """The newest quote and trade fields per instrument in ``payloads`` (bus messages).

    Only the last line of each subject in the batch can hold an instrument's
    newest value, so only those are normalized (one core call each, so that
    every record keeps the receive time of its own line).
    """
    last: dict[bytes, tuple[int, bytes]] = {}
    for data in payloads:
        for line in data.split(b"\n"):
            s = line.find(b'"subj":"')
            if s < 0 or not line.startswith(b'{"rx":'):
                continue
            e = line.find(b'"', s + 8)
            subj = line[s + 8 : e]
            if e < 0 or not any(k in subj + b"." for k in KINDS):
                continue
            m = line.find(b',"msg":', e)
            end = line.find(b",", 6)
            if m < 0:
                continue
            try:
                rx = int(line[6:end])
            except ValueError:
                continue
            last[subj] = (rx, line[m + 7 : -1])
    out: dict[str, dict[str, str]] = {}
    seen: dict[tuple[str, str], int] = {}  # (instrument, quote|trade) -> rx applied
    for rx, frame in sorted(last.values(), key=lambda x: x[0]):
        for raw in normalize_lines(venue, [frame]).splitlines():
            rec = orjson.loads(raw)
            kind = rec.get("type")
            inst = rec.get("instrument")
            if kind not in ("quote", "trade") or not inst:
                continue
            if seen.get((str(inst), kind), -1) > rx:
                continue
            seen[(str(inst), kind)] = rx
            fields = out.setdefault(str(inst), {})
            if kind == "quote":
                for k in ("bid", "bid_size", "ask", "ask_size", "last"):
                    if rec.get(k) is not None:
                        fields[k] = str(rec[k])
                if rec.get("ts") is not None:
                    fields["quote_ts"] = str(rec["ts"])
                fields["quote_rx"] = str(rx)
            else:
                for k, f in (
                    ("price", "trade_price"),
                    ("size", "trade_size"),
                    ("side", "trade_side"),
                ):
                    if rec.get(k) is not None:
                        fields[f] = str(rec[k])
                if rec.get("ts") is not None:
                    fields["trade_ts"] = str(rec["ts"])
                fields["trade_rx"] = str(rx)
    return out


class QuoteCache:
    """Reads every venue stream from now on into the quote hashes, until stopped."""

    def __init__(
        self, nc: Any, redis: Any, env: str, venues: Sequence[str], *, batch: int = 2000
    ) -> None:
        self.nc = nc
        self.r = redis
        self.env = env
        self.venues = list(venues)
        self.batch = batch
        self.written = 0
        self.lines = 0

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.gather(*(self._venue(v, stop) for v in self.venues))

    async def _venue(self, venue: str, stop: asyncio.Event) -> None:
        from ssmd.bus.nats import JetStreamSource, ensure_streams
        from ssmd.bus.streams import spec_for_venue, stream_specs

        spec = spec_for_venue(venue, stream_specs(self.env))
        await ensure_streams(self.nc.jetstream(), [spec])
        source = JetStreamSource(self.nc, spec.name, "cache-quotes", batch=self.batch)
        bounds = await source.stream_bounds()
        await source.start(bounds[1] if bounds else None)  # from now on: only the latest matters
        try:
            while not stop.is_set():
                msgs = await source.fetch(self.batch, 0.25)
                if not msgs:
                    continue
                fields = latest(venue, [d for _, d in msgs])
                if fields:
                    pipe = self.r.pipeline(transaction=False)
                    for inst, f in fields.items():
                        pipe.hset(quote_key(venue, inst), mapping=f)
                    await pipe.execute()
                    self.written += len(fields)
                self.lines += len(msgs)
                await source.ack_upto(msgs[-1][0])
        finally:
            await source.close()
