"""A pure-Python replay of the archive computing ``volume-1m-30min``: the baseline of
bench_signals.py.

Stdlib only, written as one would without ssmd: ``gzip`` to read every file,
``heapq.merge`` to put the files' lines in receive-time order, ``json`` to
parse each envelope and its venue message, ``Decimal`` for exact dollars (as
the engine's fixed point), and per instrument a ``deque`` window of
``(rx, dollars)`` with a running sum. It reads trades the way the engine
does (Kalshi contracts x YES price; Polymarket size x price; Kraken
USD-quoted pairs only, subscribe-time snapshots skipped) and fires on the
rising edge, so its fires can be compared with the engine's.
"""

from __future__ import annotations

import gzip
import heapq
import json
from collections import deque
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

__all__ = ["replay_volume"]


def _lines(path: Path) -> Iterator[bytes]:
    with gzip.open(path, "rb") as f:
        yield from f


def _rx(line: bytes) -> int:
    return int(line[6 : line.index(b",", 6)])


def _trades(venue: str, msg: dict) -> Iterator[tuple[str, Decimal]]:  # type: ignore[type-arg]
    if venue == "kalshi":
        m = msg.get("msg") or {}
        p = m.get("yes_price_dollars")
        price = Decimal(p) if p is not None else Decimal(m["yes_price"]) / 100
        c = m.get("count_fp")
        size = Decimal(c) if c is not None else Decimal(m["count"])
        yield m["market_ticker"], price * size
    elif venue == "polymarket":
        yield msg["asset_id"], Decimal(msg["price"]) * Decimal(msg["size"])
    elif venue == "kraken":
        if msg.get("type") == "snapshot":
            return
        for d in msg.get("data") or []:
            if d["symbol"].endswith("/USD"):
                yield d["symbol"], Decimal(str(d["price"])) * Decimal(str(d["qty"]))


def replay_volume(
    root: Path, window_s: float = 1800.0, threshold: Decimal = Decimal(1_000_000)
) -> tuple[list[tuple[int, str]], int]:
    """``([(rx, instrument) of each fire], trades read)``."""
    window = int(window_s * 1e9)
    files = sorted(root.glob("*/*/*.jsonl.gz"))
    merged = heapq.merge(*(_lines(p) for p in files), key=_rx)
    windows: dict[str, deque[tuple[int, Decimal]]] = {}
    sums: dict[str, Decimal] = {}
    high: dict[str, bool] = {}
    fires: list[tuple[int, str]] = []
    trades = 0
    for line in merged:
        env = json.loads(line)
        parts = env["subj"].split(".")
        kind = parts[parts.index("json") + 1]
        if kind != "trade":
            continue
        rx = env["rx"]
        for inst, dollars in _trades(parts[1], env["msg"]):
            trades += 1
            w = windows.setdefault(inst, deque())
            s = sums.get(inst, Decimal(0))
            while w and w[0][0] <= rx - window:
                s -= w.popleft()[1]
            w.append((rx, dollars))
            s += dollars
            sums[inst] = s
            v = s >= threshold
            if v and not high.get(inst, False):
                fires.append((rx, inst))
            high[inst] = v
    return fires, trades
