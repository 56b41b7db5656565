"""Pure-Python baseline of the core's work: parse, route, integrity, envelope.

Same job as ``ssmd._core.Processor.process`` (subject per message, exchange
timestamp, Kalshi/Kraken Futures sequence checks, Kraken book CRC32 with pair
precisions, envelope lines), written the way a plain Python connector would
with the stdlib ``json`` module (or ``orjson`` via ``loads``). Benchmarks
compare against it in the same run.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from ssmd.types import Venue

_BAD = re.compile(r"[.*>/\s\"\\]")


def _tok(s: str) -> str:
    return _BAD.sub("_", s)


class BaselineRouter:
    def __init__(self, venue: str, conn: str, loads: Callable[[bytes], Any] = json.loads) -> None:
        self.venue = Venue.parse(venue).value
        self.conn = conn
        self.loads = loads
        self.seqs: dict[Any, int] = {}
        self.books: dict[str, tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]] = {}
        self.precisions: dict[str, tuple[int, int]] = {}
        self.gaps = 0
        self.malformed = 0

    def process(self, frames: list[bytes], rx: int) -> bytes:
        out: list[str] = []
        for f in frames:
            try:
                obj = self.loads(f)
            except ValueError:  # includes UnicodeDecodeError and orjson's JSONDecodeError
                if f.strip() == b"PONG":
                    continue
                self.malformed += 1
                out.append(
                    self._env(
                        rx,
                        "malformed",
                        "",
                        json.dumps({"ssmd": "malformed", "raw": f.decode("utf-8", "replace")}),
                    )
                )
                continue
            items = obj if isinstance(obj, list) else [obj]
            for it in items:
                try:
                    r = self._route(it)
                except (
                    KeyError,
                    TypeError,
                    IndexError,
                    AttributeError,
                    ValueError,
                    ArithmeticError,
                ):
                    self.malformed += 1
                    out.append(
                        self._env(
                            rx,
                            "malformed",
                            "",
                            json.dumps({"ssmd": "malformed", "raw": f.decode("utf-8", "replace")}),
                        )
                    )
                    continue
                if r is None:
                    continue
                kind, inst = r
                raw = f.decode() if len(items) == 1 else json.dumps(it, separators=(",", ":"))
                out.append(self._env(rx, kind, inst, raw))
        return "".join(out).encode()

    def _env(self, rx: int, kind: str, inst: str, msg: str) -> str:
        cat = ".unknown" if self.venue == "kalshi" and inst else ""
        subj = f"prod.{self.venue}{cat}.json.{kind}.{_tok(inst or self.conn)}"
        return f'{{"rx":{rx},"conn":"{self.conn}","subj":"{subj}","msg":{msg}}}\n'

    def _seq(self, key: Any, seq: int | None) -> None:
        if seq is None:
            return
        last = self.seqs.get(key)
        if last is not None and seq != last + 1:
            self.gaps += 1
        self.seqs[key] = seq

    def _route(self, o: dict[str, Any]) -> tuple[str, str] | None:
        v = self.venue
        if v == "kalshi":
            t = o.get("type")
            kind = {
                "ticker": "ticker",
                "trade": "trade",
                "orderbook_snapshot": "book",
                "orderbook_delta": "book",
                "market_lifecycle_v2": "lifecycle",
            }.get(t or "")
            if kind is None:
                return None
            m = o["msg"]
            self._seq(o.get("sid"), o.get("seq"))
            _ = m.get("ts_ms") or (m.get("ts") or 0) * 1000
            return kind, m.get("market_ticker") or m.get("event_ticker") or ""
        if v == "kraken":
            ch = o.get("channel")
            if ch not in ("ticker", "trade", "book"):
                return None
            d = o["data"][0]
            ts = d.get("timestamp")
            if ts:
                datetime.fromisoformat(ts.replace("Z", "+00:00"))
            if ch == "book":
                self._book(o["type"], d)
            return ch, d["symbol"]
        if v == "kraken-futures":
            feed = o.get("feed")
            if feed not in ("ticker", "trade", "trade_snapshot", "book", "book_snapshot"):
                return None
            if feed == "trade":
                self._seq(o["product_id"], o.get("seq"))
            return ("trade" if feed.startswith("trade") else feed.split("_")[0]), o["product_id"]
        t = o.get("event_type") or ("book" if "bids" in o else None)
        kind = {"last_trade_price": "trade"}.get(t or "", t)
        if kind is None:
            return None
        int(o.get("timestamp", "0"))
        return kind, o["market"]

    def _book(self, ty: str, d: dict[str, Any]) -> None:
        sym = d["symbol"]
        if ty == "snapshot" or sym not in self.books:
            self.books[sym] = ({}, {})
        bids, asks = self.books[sym]
        for side, levels in ((bids, d["bids"]), (asks, d["asks"])):
            for lv in levels:
                p, q = Decimal(str(lv["price"])), Decimal(str(lv["qty"]))
                if q == 0:
                    side.pop(p, None)
                else:
                    side[p] = q
        for p in sorted(bids)[:-10]:
            del bids[p]
        for p in sorted(asks)[10:]:
            del asks[p]
        pp, qp = self.precisions.get(sym, (2, 8))

        def f(x: Decimal, prec: int) -> str:
            return f"{x:.{prec}f}".replace(".", "").lstrip("0")

        s = "".join(f(p, pp) + f(q, qp) for p, q in sorted(asks.items())[:10])
        s += "".join(f(p, pp) + f(q, qp) for p, q in sorted(bids.items(), reverse=True)[:10])
        if zlib.crc32(s.encode()) != d.get("checksum"):
            self.gaps += 1
