"""Helpers for the archive tests: deterministic envelope lines (imported by the tests)."""

from __future__ import annotations

#: 2024-03-01T00:00:00Z in ns.
T0 = 1_709_251_200_000_000_000
SEC = 1_000_000_000

SUBJECTS = (
    "prod.kraken.json.trade.BTC_USD",
    "prod.kraken.json.book.BTC_USD",
    "prod.kraken.json.book.ETH_USD",
    "prod.kraken.json.ticker.SOL_USD",
)


def envelope(rx: int, subj: str, msg: str, *, seq: int | None = None, conn: str = "c1") -> bytes:
    """One envelope line (docs/bus.md), newline included."""
    seq_part = "" if seq is None else f',"seq":{seq}'
    return f'{{"rx":{rx}{seq_part},"conn":"{conn}","subj":"{subj}","msg":{msg}}}\n'.encode()


def numbered(i: int, *, rx: int | None = None) -> bytes:
    """Line ``i`` of a deterministic stream (subject cycles over SUBJECTS)."""
    return envelope(
        T0 + i * 1000 if rx is None else rx,
        SUBJECTS[i % len(SUBJECTS)],
        f'{{"i":{i},"price":"{60000 + i % 97}.{i % 10}"}}',
    )


def crash_line(i: int) -> bytes:
    """Line ``i`` of the crash test: 20 lines per second of rx, varied payloads."""
    return envelope(
        T0 + i * 50_000_000,
        SUBJECTS[i % len(SUBJECTS)],
        f'{{"i":{i},"px":"{(i * 7919) % 100_000}.{i % 100:02d}","pad":"{"x" * (i % 300)}"}}',
    )
