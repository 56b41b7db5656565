"""A day of trades as an ssmd archive, for the signal benches.

``make_trade_day(root, trades)`` writes ``trades`` trades spread over one UTC
day (2026-01-05) across Kalshi (60 %), Polymarket (30 %) and Kraken spot
(10 %): frames shaped like tests/fixtures (Kalshi ``trade`` with dollar
strings and per-sid ``seq``, Polymarket ``last_trade_price``, Kraken v2
``trade``), made into envelope lines by the real core (``Processor``, one
batch per 200 frames, one connection per venue) and written by the archive
writer (15-minute gzip files). Instruments are drawn with a heavy tail (a
few hot markets trade most), sizes too, so that dollar volume crosses
$1,000,000 in 30 minutes now and then. Deterministic for a seed.
"""

from __future__ import annotations

import random
from pathlib import Path

from ssmd.archive import ArchiveWriter
from ssmd.core import Processor

__all__ = ["DAY", "DAY_START_NS", "make_trade_day"]

DAY = "2026-01-05"
DAY_START_NS = 1_767_571_200 * 1_000_000_000
_NS_PER_DAY = 86_400 * 1_000_000_000
BATCH = 200


def _zipf(rng: random.Random, n: int) -> int:
    """An index in ``0..n`` drawn with a heavy tail (index 0 the most likely)."""
    return min(n - 1, int(rng.paretovariate(1.2)) - 1)


def _kalshi(rng: random.Random, i: int, markets: list[str]) -> bytes:
    m = markets[_zipf(rng, len(markets))]
    price = rng.randint(2, 98)
    count = int(rng.paretovariate(1.1) * 40)
    side = "yes" if rng.random() < 0.55 else "no"
    return (
        b'{"type":"trade","sid":1,"seq":%d,"msg":{"trade_id":"t%d","market_ticker":"%s",'
        b'"yes_price_dollars":"0.%02d00","count_fp":"%d.00","taker_side":"%s","ts":%d}}'
        % (i, i, m.encode(), price, count, side.encode(), 1_767_571_200 + i // 50)
    )


def _polymarket(rng: random.Random, i: int, tokens: list[str]) -> bytes:
    t = tokens[_zipf(rng, len(tokens))]
    size = rng.paretovariate(1.1) * 60
    return (
        b'{"event_type":"last_trade_price","asset_id":"%s","market":"0x%064x","price":"0.%03d",'
        b'"side":"%s","size":"%.2f","fee_rate_bps":"0","timestamp":"%d"}'
        % (
            t.encode(),
            int(t) % (1 << 200),
            rng.randint(10, 990),
            b"BUY" if rng.random() < 0.5 else b"SELL",
            size,
            1_767_571_200_000 + i,
        )
    )


_PAIRS = (
    ("BTC/USD", 94000.0),
    ("ETH/USD", 3300.0),
    ("SOL/USD", 190.0),
    ("XRP/USD", 2.1),
    ("BTC/EUR", 90000.0),
)


def _kraken(rng: random.Random, i: int) -> bytes:
    sym, px = _PAIRS[_zipf(rng, len(_PAIRS))]
    price = px * (1 + rng.uniform(-0.01, 0.01))
    qty = rng.paretovariate(1.3) * 1500 / px
    return (
        b'{"channel":"trade","type":"update","data":[{"symbol":"%s","side":"%s","price":%.2f,'
        b'"qty":%.8f,"ord_type":"market","trade_id":%d,"timestamp":"2026-01-05T00:00:00.000000Z"}]}'
        % (sym.encode(), b"buy" if rng.random() < 0.5 else b"sell", price, qty, i)
    )


def make_trade_day(root: Path, trades: int, seed: int = 1) -> dict[str, int]:
    """Write the archive; the trades written per venue."""
    rng = random.Random(seed)
    markets = [
        f"KX{s}-26JAN05-T{100 + k}.99" for s in ("BTCD", "ETHD", "INXD", "FED") for k in range(100)
    ]
    tokens = [str(10**75 + rng.randrange(10**75)) for _ in range(300)]
    shares = {"kalshi": 0.6, "polymarket": 0.3, "kraken": 0.1}
    written = {}
    for venue, share in shares.items():
        n = int(trades * share)
        step = _NS_PER_DAY // max(n, 1)
        p = Processor(venue, f"{venue}-bench-1")
        with ArchiveWriter(str(root), venue, "bench", fsync=False) as w:
            for start in range(0, n, BATCH):
                frames = []
                rxs = []
                for i in range(start, min(n, start + BATCH)):
                    if venue == "kalshi":
                        frames.append(_kalshi(rng, i + 1, markets))
                    elif venue == "polymarket":
                        frames.append(_polymarket(rng, i, tokens))
                    else:
                        frames.append(_kraken(rng, i))
                    rxs.append(DAY_START_NS + i * step + rng.randrange(step))
                w.write(p.process(frames, rxs).lines())
            w.flush()
        written[venue] = n
    return written
