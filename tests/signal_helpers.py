"""Envelope lines for signal tests: venue frames shaped like tests/fixtures, made
into archive/bus lines by the real core (``ssmd.core.Processor``)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import orjson

from ssmd.archive import ArchiveWriter
from ssmd.core import Processor

S = 1_000_000_000
T0 = 1_790_000_000 * S


def kalshi_trade(market: str, price: str, count: str, side: str = "yes", seq: int = 1) -> bytes:
    msg = {
        "trade_id": f"t{seq}",
        "market_ticker": market,
        "yes_price_dollars": price,
        "count_fp": count,
        "taker_side": side,
        "ts": 1790000000,
    }
    return orjson.dumps({"type": "trade", "sid": 1, "seq": seq, "msg": msg})


def kalshi_ticker(market: str, bid: str, ask: str) -> bytes:
    msg = {
        "market_ticker": market,
        "yes_bid_dollars": bid,
        "yes_ask_dollars": ask,
        "price_dollars": bid,
        "ts": 1790000000,
    }
    return orjson.dumps({"type": "ticker", "sid": 2, "msg": msg})


def kalshi_lifecycle(market: str, event: str) -> bytes:
    return orjson.dumps(
        {
            "type": "market_lifecycle_v2",
            "sid": 3,
            "msg": {"market_ticker": market, "event_type": event},
        }
    )


def polymarket_trade(asset: str, market: str, price: str, size: str, side: str = "BUY") -> bytes:
    return orjson.dumps(
        {
            "event_type": "last_trade_price",
            "asset_id": asset,
            "market": market,
            "price": price,
            "side": side,
            "size": size,
            "fee_rate_bps": "0",
            "timestamp": "1790000000000",
        }
    )


def polymarket_bba(asset: str, market: str, bid: str, ask: str) -> bytes:
    return orjson.dumps(
        {
            "event_type": "best_bid_ask",
            "market": market,
            "asset_id": asset,
            "best_bid": bid,
            "best_ask": ask,
            "timestamp": "1790000000000",
        }
    )


def kraken_trade(
    symbol: str, price: str, qty: str, side: str = "buy", kind: str = "update"
) -> bytes:
    return (
        b'{"channel":"trade","type":"'
        + kind.encode()
        + b'","data":[{"symbol":"'
        + symbol.encode()
        + b'","side":"'
        + side.encode()
        + b'","price":'
        + price.encode()
        + b',"qty":'
        + qty.encode()
        + b',"ord_type":"market","trade_id":1,"timestamp":"2026-09-25T17:48:26.844359Z"}]}'
    )


def kraken_ticker(symbol: str, bid: str, ask: str) -> bytes:
    return (
        b'{"channel":"ticker","type":"update","data":[{"symbol":"'
        + symbol.encode()
        + b'","bid":'
        + bid.encode()
        + b',"bid_qty":1.0,"ask":'
        + ask.encode()
        + b',"ask_qty":1.0,"last":'
        + bid.encode()
        + b',"timestamp":"2026-09-25T17:48:26.844359Z"}]}'
    )


def futures_trade(product: str, price: str, qty: str, seq: int, side: str = "buy") -> bytes:
    return (
        b'{"feed":"trade","product_id":"'
        + product.encode()
        + b'","uid":"u","side":"'
        + side.encode()
        + b'","type":"fill","seq":'
        + str(seq).encode()
        + b',"time":1790000000000,"qty":'
        + qty.encode()
        + b',"price":'
        + price.encode()
        + b"}"
    )


def lines(venue: str, frames: Sequence[tuple[int, bytes]], conn: str = "c1") -> bytes:
    """Envelope lines of ``(rx, frame)`` pairs on one connection, as the connector makes them."""
    p = Processor(venue, conn=conn)
    out = bytearray()
    for rx, frame in frames:
        out += p.process([frame], rx).lines()
    return bytes(out)


def chunked(data: bytes, rng: random.Random, max_lines: int) -> Iterable[bytes]:
    """``data`` cut at random line boundaries into chunks of 1..max_lines lines."""
    ls = data.splitlines(keepends=True)
    i = 0
    while i < len(ls):
        n = rng.randint(1, max_lines)
        yield b"".join(ls[i : i + n])
        i += n


def write_archive(root: Path, venue: str, data: bytes, writer: str = "test") -> None:
    """Write envelope lines into an archive under ``root`` (rotated by rx)."""
    with ArchiveWriter(str(root), venue, writer, fsync=False) as w:
        for line in data.splitlines(keepends=True):
            w.write(line)
        w.flush()


async def publish(
    js: Any,
    venue: str,
    env: str,
    frames: Sequence[tuple[int, bytes]],
    *,
    conn: str,
    batch: int = 1,
    processor: Processor | None = None,
) -> Processor:
    """Publish frames as a connector does: each batch of ``batch`` frames through the core,
    one bus message per subject (micro-batches of lines), ``Nats-Msg-Id`` its first line's."""
    p = processor or Processor(venue, conn, env)
    for i in range(0, len(frames), batch):
        part = frames[i : i + batch]
        b = p.process([f for _, f in part], [rx for rx, _ in part])
        for subject, data, _, first_id in b.groups():
            await js.publish(subject, data, headers={"Nats-Msg-Id": first_id})
    return p


async def stream_lines(js: Any, stream: str) -> list[tuple[int, bytes]]:
    """Every message of a stream: ``(seq, payload)`` in order."""
    state = (await js.stream_info(stream)).state
    out = []
    for seq in range(int(state.first_seq), int(state.last_seq) + 1):
        msg = await js.get_msg(stream, seq)
        out.append((seq, bytes(msg.data)))
    return out


async def stored_fires(js: Any, sid: str) -> list[tuple[str, bytes]]:
    """``(Nats-Msg-Id, body)`` of every fire of ``sid`` in SIGNALS, in stream order."""
    import nats.errors

    sub = await js.pull_subscribe(f"signals.{sid}.>", stream="SIGNALS")
    out: list[tuple[str, bytes]] = []
    try:
        while True:
            try:
                msgs = await sub.fetch(500, timeout=1.0)
            except (nats.errors.TimeoutError, asyncio.TimeoutError):
                break
            for m in msgs:
                out.append((m.headers.get("Nats-Msg-Id", ""), bytes(m.data)))
                await m.ack()
    finally:
        await sub.unsubscribe()
    return out


def kalshi_frames(n: int, start: int, seed: int, seq0: int = 1) -> list[tuple[int, bytes]]:
    """``n`` seeded Kalshi trades, one a second from ``start``, seq from ``seq0``."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        rx = start + i * S
        size = f"{rng.choice([200, 900, 1500, 3000])}.00"
        market = f"KX-{rng.randint(0, 5)}"
        out.append((rx, kalshi_trade(market, f"0.{rng.randint(20, 80)}00", size, "yes", seq0 + i)))
    return out


def kraken_frames(n: int, start: int, seed: int) -> list[tuple[int, bytes]]:
    rng = random.Random(seed)
    return [
        (
            start + i * S,
            kraken_trade(rng.choice(["ETH/USD", "SOL/USD"]), "3.5", f"{rng.randint(1, 900)}"),
        )
        for i in range(n)
    ]
