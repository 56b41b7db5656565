"""Deterministic venue frames shaped like the real wire, for the demo and benchmarks.

Frames follow the shapes of the venue fixtures in ``tests/fixtures`` (dollar-string Kalshi
tickers and trades with per-sid ``seq``, Kraken v2 ticker/trade/book with
correct CRC32 checksums, Kraken Futures ticker/trade, Polymarket book,
price_change, last_trade_price and best_bid_ask, some in array frames).
Prices move in a random walk so the data compresses like market data, not
like a repeated string. :func:`stream` yields frames one at a time (memory
does not grow with the count); :func:`frames` returns a list.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterator
from decimal import Decimal

import orjson

from ssmd.types import Venue

__all__ = ["GENERATORS", "frames", "kraken_checksum_reference", "mixed", "stream"]

_KALSHI_SERIES = ("KXBTCD", "KXETHD", "INXD", "FED", "KXHIGHNY", "KXPRES")
_KRAKEN_PAIRS = (("BTC/USD", 1, 8, 84000.0), ("ETH/USD", 2, 8, 3200.0), ("SOL/USD", 2, 8, 180.0))
_FUTURES = (("PF_XBTUSD", 84000.0), ("PF_ETHUSD", 3200.0), ("PI_XBTUSD", 84000.0))
_BASE_MS = 1_790_000_000_000


def kraken_checksum_reference(
    asks: dict[Decimal, Decimal], bids: dict[Decimal, Decimal], price_prec: int, qty_prec: int
) -> int:
    """Kraken v2 book CRC32, straight from the protocol sheet (kraken.md section 4.4)."""

    def level(v: Decimal, prec: int) -> str:
        return f"{v:.{prec}f}".replace(".", "").lstrip("0")

    a = sorted(asks.items())[:10]
    b = sorted(bids.items(), reverse=True)[:10]
    s = "".join(level(p, price_prec) + level(q, qty_prec) for p, q in a + b)
    return zlib.crc32(s.encode()) & 0xFFFFFFFF


def _dumps(obj: object) -> bytes:
    # a compact copy: the bytes orjson returns keep its whole output buffer
    # (4 KiB and more for a 300-byte frame), which adds up in a list of frames
    return memoryview(orjson.dumps(obj)).tobytes()


def _kalshi(rng: random.Random) -> Iterator[bytes]:
    markets = [f"{s}-26NOV25-T{100 + i}.99" for s in _KALSHI_SERIES for i in range(20)]
    price = {m: rng.randint(5, 95) for m in markets}
    seq = {2: 0, 3: 0}
    n = 0
    while True:
        n += 1
        m = rng.choice(markets)
        price[m] = min(99, max(1, price[m] + rng.choice((-1, 0, 1))))
        p = price[m]
        ts = _BASE_MS + n * 7
        if rng.random() < 0.6:
            yield _dumps(
                {
                    "type": "ticker",
                    "sid": 1,
                    "msg": {
                        "market_id": f"{abs(hash(m)) % 10**12:012d}-0000-4000-8000-000000000000",
                        "market_ticker": m,
                        "price_dollars": f"0.{p:02d}00",
                        "yes_bid_dollars": f"0.{max(p - 1, 0):02d}00",
                        "yes_ask_dollars": f"0.{min(p + 1, 99):02d}00",
                        "volume_fp": f"{rng.randint(1000, 900000)}.00",
                        "open_interest_fp": f"{rng.randint(100, 90000)}.00",
                        "dollar_volume": rng.randint(100, 500000),
                        "dollar_open_interest": rng.randint(100, 50000),
                        "yes_bid_size_fp": f"{rng.randint(1, 5000)}.00",
                        "yes_ask_size_fp": f"{rng.randint(1, 5000)}.00",
                        "ts": ts // 1000,
                        "ts_ms": ts,
                    },
                }
            )
        elif rng.random() < 0.8:
            seq[2] += 1
            side = rng.choice(("yes", "no"))
            yield _dumps(
                {
                    "type": "trade",
                    "sid": 2,
                    "seq": seq[2],
                    "msg": {
                        "trade_id": f"{rng.getrandbits(64):016x}-{n:08d}",
                        "market_ticker": m,
                        "yes_price_dollars": f"0.{p:02d}00",
                        "no_price_dollars": f"0.{100 - p:02d}00",
                        "count_fp": f"{rng.randint(1, 500)}.00",
                        "taker_side": side,
                        "taker_outcome_side": side,
                        "ts": ts // 1000,
                        "ts_ms": ts,
                    },
                }
            )
        else:
            seq[3] += 1
            yield _dumps(
                {
                    "type": "market_lifecycle_v2",
                    "sid": 3,
                    "seq": seq[3],
                    "msg": {
                        "market_ticker": m,
                        "close_ts": ts // 1000 + 3600,
                        "event_type": "close_date_updated",
                    },
                }
            )


def _iso(ms: int) -> str:
    import datetime as dt

    t = dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{(ms % 1000) * 1000:06d}Z"


def _kraken(rng: random.Random) -> Iterator[bytes]:
    books: dict[str, tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]] = {}
    mid = {s: px for s, _, _, px in _KRAKEN_PAIRS}
    trade_id = dict.fromkeys(mid, 1000)
    n = 0
    for sym, pp, qp, px in _KRAKEN_PAIRS:
        tick = Decimal(1).scaleb(-pp)
        base = Decimal(str(px)).quantize(tick)
        bids = {base - tick * i: Decimal(rng.randint(1, 10**8)).scaleb(-qp) for i in range(1, 11)}
        asks = {base + tick * i: Decimal(rng.randint(1, 10**8)).scaleb(-qp) for i in range(1, 11)}
        books[sym] = (bids, asks)
        yield _book_frame("snapshot", sym, bids, asks, pp, qp, bids, asks, _BASE_MS)
    while True:
        n += 1
        sym, pp, qp, _ = rng.choice(_KRAKEN_PAIRS)
        ts = _BASE_MS + n * 5
        r = rng.random()
        tick = Decimal(1).scaleb(-pp)
        if r < 0.45:
            bids, asks = books[sym]
            side = bids if rng.random() < 0.5 else asks
            price = rng.choice(list(side))
            qty = Decimal(rng.randint(0, 10**8)).scaleb(-qp)
            ch_b: dict[Decimal, Decimal] = {}
            ch_a: dict[Decimal, Decimal] = {}
            if qty == 0 and len(side) > 5:
                del side[price]
                worst = min(side) - tick if side is bids else max(side) + tick
                new_q = Decimal(rng.randint(1, 10**8)).scaleb(-qp)
                side[worst] = new_q
                (ch_b if side is bids else ch_a).update({price: Decimal(0), worst: new_q})
            else:
                qty = qty or Decimal(1).scaleb(-qp)
                side[price] = qty
                (ch_b if side is bids else ch_a)[price] = qty
            yield _book_frame("update", sym, ch_b, ch_a, pp, qp, bids, asks, ts)
        elif r < 0.75:
            bids, asks = books[sym]
            bb, ba = max(bids), min(asks)
            yield _dumps(
                {
                    "channel": "ticker",
                    "type": "update",
                    "data": [
                        {
                            "symbol": sym,
                            "bid": float(bb),
                            "bid_qty": float(bids[bb]),
                            "ask": float(ba),
                            "ask_qty": float(asks[ba]),
                            "last": float(bb),
                            "volume": round(rng.uniform(100, 5000), 8),
                            "vwap": float(bb),
                            "low": float(bb) * 0.98,
                            "high": float(ba) * 1.02,
                            "change": round(rng.uniform(-500, 500), 1),
                            "change_pct": round(rng.uniform(-2, 2), 2),
                            "timestamp": _iso(ts),
                        }
                    ],
                }
            )
        else:
            trade_id[sym] += 1
            bids, asks = books[sym]
            yield _dumps(
                {
                    "channel": "trade",
                    "type": "update",
                    "data": [
                        {
                            "symbol": sym,
                            "side": rng.choice(("buy", "sell")),
                            "price": float(max(bids)),
                            "qty": round(rng.uniform(0.0001, 2), 8),
                            "ord_type": rng.choice(("limit", "market")),
                            "trade_id": trade_id[sym],
                            "timestamp": _iso(ts),
                        }
                    ],
                }
            )


def _book_frame(
    ty: str,
    sym: str,
    ch_bids: dict[Decimal, Decimal],
    ch_asks: dict[Decimal, Decimal],
    pp: int,
    qp: int,
    bids: dict[Decimal, Decimal],
    asks: dict[Decimal, Decimal],
    ts: int,
) -> bytes:
    def lv(d: dict[Decimal, Decimal]) -> str:
        return ",".join(f'{{"price":{p:.{pp}f},"qty":{q:.{qp}f}}}' for p, q in d.items())

    ck = kraken_checksum_reference(asks, bids, pp, qp)
    return (
        f'{{"channel":"book","type":"{ty}","data":[{{"symbol":"{sym}","bids":[{lv(ch_bids)}],'
        f'"asks":[{lv(ch_asks)}],"checksum":{ck},"timestamp":"{_iso(ts)}"}}]}}'
    ).encode()


def _kraken_futures(rng: random.Random) -> Iterator[bytes]:
    seq = {p: 10_000 for p, _ in _FUTURES}
    px = {p: v for p, v in _FUTURES}
    n = 0
    while True:
        n += 1
        prod = rng.choice(_FUTURES)[0]
        px[prod] = round(px[prod] + rng.choice((-0.5, 0.0, 0.5)), 1)
        ts = _BASE_MS + n * 9
        if rng.random() < 0.5:
            yield _dumps(
                {
                    "time": ts,
                    "product_id": prod,
                    "funding_rate": round(rng.uniform(-1, 1), 12),
                    "relative_funding_rate": round(rng.uniform(-1e-5, 1e-5), 14),
                    "next_funding_rate_time": ts + 3_600_000,
                    "feed": "ticker",
                    "bid": px[prod] - 0.5,
                    "ask": px[prod] + 0.5,
                    "bid_size": round(rng.uniform(0.001, 3), 4),
                    "ask_size": round(rng.uniform(0.001, 3), 4),
                    "volume": round(rng.uniform(1000, 9000), 4),
                    "dtm": 0,
                    "leverage": "50x",
                    "index": px[prod],
                    "premium": 0.0,
                    "last": px[prod],
                    "change": round(rng.uniform(-2, 2), 2),
                    "suspended": False,
                    "tag": "perpetual",
                    "pair": "XBT:USD",
                    "openInterest": round(rng.uniform(1000, 3000), 4),
                    "markPrice": px[prod] + 0.11,
                    "maturityTime": 0,
                    "post_only": False,
                    "volumeQuote": round(rng.uniform(1e8, 4e8), 3),
                }
            )
        else:
            seq[prod] += 1
            yield _dumps(
                {
                    "feed": "trade",
                    "product_id": prod,
                    "uid": f"{rng.getrandbits(128):032x}",
                    "side": rng.choice(("buy", "sell")),
                    "type": "fill",
                    "seq": seq[prod],
                    "time": ts,
                    "qty": round(rng.uniform(0.0001, 1), 4),
                    "price": px[prod],
                }
            )


def _polymarket(rng: random.Random) -> Iterator[bytes]:
    markets = [
        (f"0x{rng.getrandbits(256):064x}", str(rng.getrandbits(255)), str(rng.getrandbits(255)))
        for _ in range(50)
    ]
    n = 0
    while True:
        n += 1
        cond, yes, no = rng.choice(markets)
        ts = str(_BASE_MS + n * 11)
        p = rng.randint(2, 98)
        r = rng.random()
        if r < 0.15:
            frame: object = [
                {
                    "event_type": "book",
                    "asset_id": tok,
                    "market": cond,
                    "bids": [
                        {"price": f"0.{q:02d}", "size": str(rng.randint(1, 5000))}
                        for q in range(max(1, pp - 5), pp)
                    ],
                    "asks": [
                        {"price": f"0.{q:02d}", "size": str(rng.randint(1, 5000))}
                        for q in range(pp + 1, min(99, pp + 6))
                    ],
                    "timestamp": ts,
                    "hash": f"{rng.getrandbits(160):040x}",
                }
                for tok, pp in ((yes, p), (no, 100 - p))
            ]
        elif r < 0.6:
            frame = {
                "market": cond,
                "price_changes": [
                    {
                        "asset_id": tok,
                        "price": f"0.{pp:02d}",
                        "size": str(rng.randint(0, 3000)),
                        "side": rng.choice(("BUY", "SELL")),
                        "hash": f"{rng.getrandbits(160):040x}",
                        "best_bid": f"0.{pp - 1:02d}",
                        "best_ask": f"0.{pp + 1:02d}",
                    }
                    for tok, pp in ((yes, p), (no, 100 - p))
                ],
                "timestamp": ts,
                "event_type": "price_change",
            }
        elif r < 0.8:
            frame = {
                "asset_id": yes,
                "event_type": "last_trade_price",
                "fee_rate_bps": "0",
                "market": cond,
                "price": f"0.{p:02d}",
                "side": rng.choice(("BUY", "SELL")),
                "size": f"{rng.uniform(1, 2000):.6f}",
                "timestamp": ts,
            }
        else:
            frame = {
                "event_type": "best_bid_ask",
                "market": cond,
                "asset_id": yes,
                "best_bid": f"0.{p - 1:02d}",
                "best_ask": f"0.{p + 1:02d}",
                "spread": "0.02",
                "timestamp": ts,
            }
        yield _dumps(frame)


#: the sample generator of every venue
GENERATORS = {
    Venue.KALSHI: _kalshi,
    Venue.KRAKEN: _kraken,
    Venue.KRAKEN_FUTURES: _kraken_futures,
    Venue.POLYMARKET: _polymarket,
}


def stream(venue: str | Venue, count: int, seed: int = 7) -> Iterator[bytes]:
    """``count`` frames of ``venue`` (module id or CLI name), one at a time, deterministic."""
    gen = GENERATORS[Venue.parse(venue)](random.Random(seed))
    for _ in range(count):
        yield next(gen)


def frames(venue: str | Venue, count: int, seed: int = 7) -> list[bytes]:
    """``count`` frames of ``venue`` (module id or CLI name), deterministic for a seed."""
    return list(stream(venue, count, seed))


def mixed(count: int, seed: int = 7) -> dict[str, list[bytes]]:
    """About ``count`` frames in all, split evenly over the venues (keyed by module id)."""
    per = max(1, count // len(Venue))
    return {v.module: frames(v, per, seed) for v in Venue}
