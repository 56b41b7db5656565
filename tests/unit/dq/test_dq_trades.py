"""``ssmd dq trades``: each check on an archive with known defects, the score, the
table and --json, --fail-under, and the comparison with the simulator's REST trade history."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

import ssmd
from archive_helpers import SEC, T0, envelope
from capture_helpers import capturing, data_count, sim_messages
from helpers import async_wait_until
from sim_client import MakeSim
from ssmd.archive import ArchiveWriter
from ssmd.dq import check_trades
from ssmd.dq.rest import rest_trades

DAY = dt.date(2024, 3, 1)
TRADE = (
    '{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD","side":"buy","price":%s,'
    '"qty":0.5,"ord_type":"limit","trade_id":%d,"timestamp":"2024-03-01T00:%02d:%02d.000000Z"}]}'
)


def _kraken_day(root: Path) -> None:
    """100 trades a second apart with: id 50 missing, id 60 twice, ts going back once at
    id 70, a zero price at id 80, a 10-minute silence after id 90; a recorded resync."""
    with ArchiveWriter(root, "kraken", "w", fsync=False) as w:
        rx = T0
        for i in range(100):
            if i == 50:
                continue
            rx += SEC if i != 91 else 600 * SEC
            sec = i if i != 70 else 10
            price = "0" if i == 80 else f"{60000 + i}.5"
            line = envelope(
                rx, "prod.kraken.json.trade.BTC_USD", TRADE % (price, i, sec // 60, sec % 60)
            )
            w.write(line * (2 if i == 60 else 1))
        w.write(
            envelope(
                T0 + 30 * SEC,
                "prod.kraken.json.status.BTC_USD",
                '{"ssmd":"resync","reason":"checksum","expected":1,"computed":2}',
            )
        )


def _check(report: Any, name: str) -> Any:
    return next(c for c in report.checks if c.name == name)


def test_gaps_on_other_feeds_lose_no_trades(tmp_path: Path) -> None:
    """Kalshi: a gap on the connection's book subscription (its own sid) is not counted
    as a gap of the market's trades (the book's resync is reported, as every resync is);
    a gap on its trade subscription is, for every market on it."""
    from ssmd.core import Processor

    def frame(ty: str, sid: int, seq: int, market: str, i: int) -> bytes:
        if ty == "trade":
            msg = {
                "trade_id": f"t{i}",
                "market_ticker": market,
                "yes_price_dollars": "0.5500",
                "count_fp": "1.00",
                "taker_side": "yes",
                "ts": 1709251200 + i,
            }
        else:
            msg = {
                "market_ticker": market,
                "price_dollars": "0.5",
                "delta_fp": "1.00",
                "side": "yes",
            }
        return json.dumps({"type": ty, "sid": sid, "seq": seq, "msg": msg}).encode()

    p = Processor("kalshi", "k1")
    frames = [frame("trade", 1, s, "KX-A", s) for s in range(1, 11)]
    frames += [frame("orderbook_delta", 2, s, "KX-A", s) for s in (1, 2, 6)]  # book gap
    frames += [frame("trade", 1, 14, "KX-B", 14)]  # trade gap (11..13 lost), found on KX-B
    with ArchiveWriter(tmp_path, "kalshi", "w", fsync=False) as w:
        for i, f in enumerate(frames):
            w.write(p.process([f], T0 + i * SEC).lines())
    gaps = ssmd.read("status", "kalshi", dir=tmp_path).filter(pl.col("status") == "gap")
    assert sorted(json.loads(d)["feed"] for d in gaps["detail"]) == ["book", "trade"]
    r = check_trades(tmp_path, "kalshi", "KX-A", DAY)
    assert r.stats["recorded"] == {"gap": 1, "resync": 1}  # the trade gap; the book's resync
    assert _check(r, "recorded_gaps").value == 2


def test_each_check_finds_its_defect(tmp_path: Path) -> None:
    _kraken_day(tmp_path)
    r = check_trades(tmp_path, "kraken", "BTC/USD", DAY)
    assert _check(r, "trades").value == 100  # 99 ids, one twice
    assert _check(r, "seq_gaps").value == 1
    assert _check(r, "duplicates").value == 1
    assert _check(r, "ts_out_of_order").value == 1
    assert _check(r, "price_bounds").value == 1
    assert _check(r, "time_gaps").value == 1
    recorded = _check(r, "recorded_gaps")
    assert recorded.value == 1 and "1 checksum failures" in recorded.detail
    assert r.stats["receive_lag_ms"]["negative"] == 0
    assert 0 < r.score < 100
    clean = tmp_path / "clean"
    with ArchiveWriter(clean, "kraken", "w", fsync=False) as w:
        for i in range(30):
            w.write(
                envelope(
                    T0 + i * SEC, "prod.kraken.json.trade.BTC_USD", TRADE % (f"{6e4 + i}", i, 0, i)
                )
            )
    assert check_trades(clean, "kraken", "BTC/USD", DAY).score == 100.0


def _trade_at(trade_id: int, ts: str, rx: int, price: str = "60000.5") -> bytes:
    msg = (
        '{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD","side":"buy",'
        f'"price":{price},"qty":0.5,"ord_type":"limit","trade_id":{trade_id},"timestamp":"{ts}"}}]}}'
    )
    return envelope(rx, "prod.kraken.json.trade.BTC_USD", msg)


def test_rest_comparison_goes_by_exchange_day(tmp_path: Path) -> None:
    """The venue lists a day's trades by exchange time, the archive files them by receive
    time: a trade of the day's last moment received after midnight is compared with that
    day, one of the day before received after midnight is not."""
    day_end = T0 + 86_400 * SEC
    with ArchiveWriter(tmp_path, "kraken", "w", fsync=False) as w:
        w.write(_trade_at(1, "2024-02-29T23:59:59.900000Z", T0 + SEC // 10))
        for i in range(2, 12):
            w.write(_trade_at(i, f"2024-03-01T12:00:{i:02d}.000000Z", T0 + 43_200 * SEC + i * SEC))
        w.write(_trade_at(12, "2024-03-01T23:59:59.950000Z", day_end + SEC // 20))
    listed = [
        {"trade_id": str(i), "ts": 0, "price": "60000.5", "size": "0.5"} for i in range(2, 13)
    ]
    r = check_trades(tmp_path, "kraken", "BTC/USD", DAY, rest_trades=listed)
    match = _check(r, "rest_match")
    assert (match.value, match.score) == (11, 1.0)
    assert (
        match.detail == "11 of the venue's 11 trades archived; 0 archived trades it does not list"
    )
    # the other checks keep to the receive day: trades 1 to 11
    assert _check(r, "trades").value == 11


def test_fills_sharing_a_polymarket_hash_are_not_duplicates(tmp_path: Path) -> None:
    token = "1234567890"
    fill = (
        '{"event_type":"last_trade_price","asset_id":"%s","market":"0xabc","price":"%s",'
        '"side":"BUY","size":"%s","timestamp":"%d","transaction_hash":"0xfeed"}'
    )
    subj = f"prod.polymarket.json.trade.{token}"
    with ArchiveWriter(tmp_path, "polymarket", "w", fsync=False) as w:
        ms = T0 // 1_000_000
        w.write(envelope(T0 + SEC, subj, fill % (token, "0.45", "10", ms)))
        w.write(envelope(T0 + SEC, subj, fill % (token, "0.46", "5", ms)))  # the same hash
        twice = envelope(T0 + 2 * SEC, subj, fill % (token, "0.46", "5", ms + 1000))
        w.write(twice * 2)  # archived twice
    r = check_trades(tmp_path, "polymarket", token, DAY)
    assert _check(r, "trades").value == 4
    assert _check(r, "duplicates").value == 1


def _ssmd(*args: str) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in ("SSMD_ARCHIVE_DIR", "DATABASE_URL")}
    return subprocess.run(
        [sys.executable, "-m", "ssmd", *args], capture_output=True, env=env, timeout=60
    )


def test_cli_table_json_and_fail_under(tmp_path: Path) -> None:
    _kraken_day(tmp_path)
    base = [
        "dq",
        "trades",
        "--dir",
        str(tmp_path),
        "--exchange",
        "kraken",
        "--ticker",
        "BTC/USD",
        "--date",
        "2024-03-01",
    ]
    r = _ssmd(*base)
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode().splitlines()
    assert out[0].startswith("kraken BTC/USD 2024-03-01: score ")
    assert out[1].split()[:3] == ["CHECK", "SCORE", "VALUE"]
    doc = json.loads(_ssmd(*base, "--json").stdout)
    assert {c["name"] for c in doc["checks"]} >= {"seq_gaps", "duplicates", "price_bounds"}
    r = _ssmd(
        *base[:-4],
        "--venue",
        "kraken",
        "--instrument",
        "BTC/USD",
        "--date",
        "2024-03-01",
        "--fail-under",
        "99",
    )
    assert r.returncode == 1 and b"is under 99" in r.stderr
    r = _ssmd(
        "dq",
        "trades",
        "--dir",
        str(tmp_path),
        "--exchange",
        "kraken",
        "--ticker",
        "NOPE",
        "--date",
        "2024-03-01",
    )
    assert r.returncode == 2 and r.stderr.decode().startswith("ssmd: error: no trades of 'NOPE'")


@pytest.fixture
def key_path(tmp_path: Path) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "k.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return str(path)


async def test_compared_with_the_simulator_s_trade_history(
    tmp_path: Path, make_sim: MakeSim, key_path: str
) -> None:
    sim = await make_sim("kalshi", rate=3000)
    markets = sim.venue.instrument_ids()[:3]
    root = tmp_path / "a"
    async with capturing(
        sim, "kalshi", markets, root, api_key="kid", private_key_path=key_path
    ) as cap:
        await async_wait_until(lambda: data_count(cap) >= 600, timeout=20)
        await sim.set_rate(0)
        await async_wait_until(lambda: data_count(cap) == sim_messages(sim), timeout=10)
    trades = ssmd.read("trade", "kalshi", dir=root)
    inst = trades.group_by("instrument").len().sort("len", descending=True)["instrument"][0]
    day = trades["rx"][0].date()
    rest = await asyncio.to_thread(rest_trades, "kalshi", sim.rest_url, inst, day)
    assert rest and len(rest) == trades.filter(trades["instrument"] == inst).height
    report = await asyncio.to_thread(check_trades, root, "kalshi", inst, day, rest_trades=rest)
    match = _check(report, "rest_match")
    assert (match.value, match.score) == (len(rest), 1.0)
    # trades the venue lists that the archive lacks lower the score
    missing = [*rest, {"trade_id": "not-archived-1"}, {"trade_id": "not-archived-2"}]
    worse = await asyncio.to_thread(check_trades, root, "kalshi", inst, day, rest_trades=missing)
    assert _check(worse, "rest_match").score == len(rest) / (len(rest) + 2)
    assert worse.score < report.score
