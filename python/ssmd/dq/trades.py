"""``ssmd dq trades``: the quality of one instrument's trades on one day.

Read from the archive (the Parquet export where the day has one, else the
JSONL through the core: :func:`ssmd.read`), then checked:

* ``trades``: trades, and per minute (minutes with trades, the busiest);
* ``seq_gaps``: numbers missing in the trade sequence, on venues whose
  trade numbers are consecutive per instrument (Kraken spot trade ids,
  Kraken Futures ``seq``); elsewhere the connector's own records count;
* ``recorded_gaps``: gaps, resyncs (checksum failures among them),
  disconnects and stalls the connector recorded for the instrument or its
  connections that day, but not a sequence gap found on another feed (a
  Kalshi book or ticker subscription, a Kraken Futures book feed: it lost
  no trades);
* ``time_gaps``: silences longer than the instrument's own normal rate
  allows (20 times its median interval, and at least a minute);
* ``duplicates``: the same trade id twice (on Polymarket, whose id is a
  transaction hash that several fills can share: the same hash, exchange
  time, price, size and side);
* ``ts_out_of_order``: exchange times going back in receive order;
* ``price_bounds``: prices that are not finite, not positive, or above 1
  on the prediction-market venues (Kalshi and Polymarket price in dollars
  of a 1-dollar contract);
* ``receive_lag``: receive time minus exchange time, p50/p90/p99/max (ms);
* ``rest_match``: with a REST trade history, the share of its trades of
  that instrument and day found in the archive, and archived trades it does
  not list: by trade id, or on Polymarket by :func:`match_count`. Both sides
  go by exchange time here (the venue lists the day's trades by it): the
  archive is read from an hour before the day to an hour after it.

Each check scores 0..1; the day's score is their weighted mean times 100.
"""

from __future__ import annotations

import datetime as dt
import os
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from ssmd.archive.frames import read
from ssmd.archive.parquet import need_data
from ssmd.core import subject_token
from ssmd.errors import ConfigError
from ssmd.types import Venue

__all__ = ["Check", "TradeReport", "check_trades", "match_count", "score"]

#: venues whose trade sequence numbers are consecutive per instrument
CONSECUTIVE: dict[Venue, bool] = {
    Venue.KALSHI: False,
    Venue.KRAKEN: True,
    Venue.KRAKEN_FUTURES: True,
    Venue.POLYMARKET: False,
}
#: venues whose prices are dollars of a 1-dollar contract
UNIT_PRICED: dict[Venue, bool] = {
    Venue.KALSHI: True,
    Venue.KRAKEN: False,
    Venue.KRAKEN_FUTURES: False,
    Venue.POLYMARKET: True,
}
#: venues whose trades are matched with the REST history by key, not by trade id alone
#: (Polymarket frames carry the transaction hash only sometimes, the Data API always)
KEYED: frozenset[Venue] = frozenset({Venue.POLYMARKET})
_MS_DAY = 86_400_000


@dataclass
class Check:
    name: str
    #: 0..1
    score: float
    weight: float
    value: Any
    detail: str = ""


@dataclass
class TradeReport:
    venue: str
    instrument: str
    date: str
    checks: list[Check] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def score(self) -> float:
        return score(self.checks)

    def to_json(self) -> dict[str, Any]:
        return {
            "venue": self.venue,
            "instrument": self.instrument,
            "date": self.date,
            "score": round(self.score, 2),
            "checks": [asdict(c) for c in self.checks],
            "stats": self.stats,
        }


def score(checks: list[Check]) -> float:
    """Weighted mean of the checks' scores, 0..100."""
    total = sum(c.weight for c in checks)
    return 100.0 * sum(c.score * c.weight for c in checks) / total if total else 100.0


def _share_ok(bad: int, n: int) -> float:
    return 1.0 if n <= 0 else max(0.0, 1.0 - bad / n)


def check_trades(
    root: str | os.PathLike[str],
    venue: str | Venue,
    instrument: str,
    date: dt.date,
    *,
    parquet_dir: str | os.PathLike[str] | None = None,
    rest_trades: list[dict[str, Any]] | None = None,
) -> TradeReport:
    """Check ``instrument``'s trades of ``date`` (see the module docstring).

    ``rest_trades``: the venue's own trade history of that day, as
    ``{"trade_id", "ts" (ms), "price", "size"}``, to compare with.
    """
    pl = need_data("polars", "ssmd dq trades")
    ven = Venue.parse(venue)
    name = ven.value
    base = Path(root)
    if not base.is_dir():
        raise ConfigError(f"archive directory not found: {base}")
    day = date.isoformat()
    lo = dt.datetime(date.year, date.month, date.day, tzinfo=dt.timezone.utc)
    hi = lo + dt.timedelta(days=1)
    if rest_trades is None:
        trades = read("trade", name, day, day, [instrument], base, parquet_dir, views=True)
    else:
        # one read serves both: the day by receive time, and around it by exchange time
        wide = read(
            "trade",
            name,
            lo - REST_MARGIN,
            hi + REST_MARGIN,
            [instrument],
            base,
            parquet_dir,
            views=True,
        )
        trades = wide.filter((pl.col("rx") >= lo) & (pl.col("rx") < hi))
    status = read("status", name, day, day, None, base, parquet_dir).filter(
        pl.col("origin") == "ssmd"
    )
    report = TradeReport(name, instrument, day)
    n = trades.height
    if n == 0 and not rest_trades:
        raise ConfigError(f"no trades of {instrument!r} on {name} on {day} in {base}")
    rx_ms = trades["rx"].dt.epoch("ms") if n else pl.Series([], dtype=pl.Int64)
    per_min = rx_ms // 60_000
    minutes = per_min.n_unique() if n else 0
    busiest = int(per_min.value_counts()["count"].max()) if n else 0
    report.stats.update(trades=n, minutes_with_trades=minutes, busiest_minute=busiest)
    report.checks.append(
        Check("trades", 1.0, 0.0, n, f"{minutes} minutes with trades, at most {busiest} a minute")
    )

    # sequence gaps
    seqs = trades["seq"].drop_nulls() if n else pl.Series([], dtype=pl.UInt64)
    if CONSECUTIVE[ven] and len(seqs) > 1:
        uniq = seqs.unique().sort()
        missing = int(uniq[-1] - uniq[0] + 1 - len(uniq))
        report.checks.append(
            Check(
                "seq_gaps",
                _share_ok(missing, len(uniq) + missing),
                3.0,
                missing,
                f"{missing} numbers missing between {uniq[0]} and {uniq[-1]}",
            )
        )

    # what the connector recorded: for the instrument, or for a connection its trades came
    # on; not a gap found on another feed (a Kalshi book or ticker subscription, a Kraken
    # Futures book): it lost no trades
    conns = set(trades["conn"].unique().to_list()) if n else set()
    feed = pl.col("detail").str.json_path_match("$.feed")
    mine = status.filter(
        (
            pl.col("instrument").is_in([instrument, _token(instrument), *conns])
            | pl.col("detail").str.contains(f'"instrument":"{instrument}"', literal=True)
        )
        & ~((pl.col("status") == "gap") & feed.is_not_null() & (feed != "trade"))
    )
    counts = dict(mine.group_by("status").len().iter_rows()) if mine.height else {}
    breaks = sum(counts.get(k, 0) for k in ("gap", "resync", "restart"))
    checksum = int(mine.filter(pl.col("detail").str.contains('"checksum"', literal=True)).height)
    report.checks.append(
        Check(
            "recorded_gaps",
            1.0 / (1.0 + breaks),
            2.0,
            breaks,
            (", ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "none recorded")
            + (f"; {checksum} checksum failures" if checksum else ""),
        )
    )
    report.stats["recorded"] = counts
    report.stats["checksum_failures"] = checksum

    # silences beyond the instrument's own rate
    if n > 2:
        gaps = rx_ms.diff().drop_nulls()
        median = float(gaps.median() or 0)
        limit = max(60_000.0, 20 * median)
        long = gaps.filter(gaps > limit)
        lost = float(long.sum() or 0)
        report.checks.append(
            Check(
                "time_gaps",
                max(0.0, 1.0 - lost / _MS_DAY * 4),
                1.0,
                len(long),
                f"{len(long)} silences over {limit / 1000:.0f} s (median interval"
                f" {median / 1000:.2f} s), {lost / 1000:.0f} s in all",
            )
        )

    # duplicates: the same trade id twice; on Polymarket, whose id is the transaction
    # hash and a transaction can hold several fills, the same hash, time, price, size
    # and side twice
    keyed = ven in KEYED
    same = ["trade_id", "ts", "price", "size", "side"] if keyed else ["trade_id"]
    ided = trades.select(same).filter(pl.col("trade_id").is_not_null()) if n else None
    dups = ided.height - ided.n_unique() if ided is not None and ided.height else 0
    what = "same trade (hash, time, price, size) twice" if keyed else "same trade id twice"
    report.checks.append(Check("duplicates", _share_ok(dups, n), 2.0, dups, what))

    # exchange times going back
    ts = trades["ts"].dt.epoch("ms").drop_nulls() if n else pl.Series([], dtype=pl.Int64)
    back = int((ts.diff().drop_nulls() < 0).sum()) if len(ts) > 1 else 0
    report.checks.append(
        Check("ts_out_of_order", _share_ok(back, n), 1.0, back, "exchange time went back")
    )

    # prices out of bounds
    if n:
        price = trades["price_f64"]
        bad = price.is_null() | ~price.is_finite() | (price <= 0)
        if UNIT_PRICED[ven]:
            bad = bad | (price > 1)
        nbad = int(bad.sum())
        bounds = "(0, 1]" if UNIT_PRICED[ven] else "> 0"
        report.checks.append(
            Check("price_bounds", _share_ok(nbad, n), 2.0, nbad, f"prices outside {bounds}")
        )

    # receive lag
    lag = (trades["rx"].dt.epoch("ms") - trades["ts"].dt.epoch("ms")).drop_nulls() if n else None
    if lag is not None and len(lag):
        q = {p: float(lag.quantile(p / 100) or 0) for p in (50, 90, 99)}
        negative = int((lag < 0).sum())
        report.stats["receive_lag_ms"] = {
            "p50": q[50],
            "p90": q[90],
            "p99": q[99],
            "max": float(lag.max() or 0),
            "negative": negative,
        }
        report.checks.append(
            Check(
                "receive_lag",
                1.0,
                0.0,
                q[50],
                f"p50 {q[50]:.0f} ms, p90 {q[90]:.0f} ms, p99 {q[99]:.0f} ms,"
                f" max {report.stats['receive_lag_ms']['max']:.0f} ms"
                + (f", {negative} before the exchange time" if negative else ""),
            )
        )

    if rest_trades is not None:
        near = _by_exchange_day(pl, wide, lo, hi)
        report.checks.append(_rest_match(near, rest_trades, keyed=ven in KEYED))
    return report


#: receive times read around the day for the REST comparison: a trade of the day's
#: last moments is received (and archived) on the next day, one of the day before
#: can arrive after midnight
REST_MARGIN = dt.timedelta(hours=1)


def _by_exchange_day(pl: Any, wide: Any, lo: dt.datetime, hi: dt.datetime) -> Any:
    """The archived trades of the day ``lo..hi`` by exchange time, as the venue's history
    lists them (the other checks go by receive day, as the archive is laid out), out of
    ``wide``, those received within :data:`REST_MARGIN` of it: those whose exchange
    time is in the day, and those without one received in it."""
    when = pl.coalesce(pl.col("ts").cast(pl.Datetime("ms", "UTC")), pl.col("rx"))
    return wide.filter((when >= lo) & (when < hi))


def _token(instrument: str) -> str:
    return subject_token(instrument)


def _rest_match(trades: Any, rest: list[dict[str, Any]], *, keyed: bool = False) -> Check:
    if keyed:
        archived_k = _archived_keys(trades)
        listed_k = [
            (
                str(t["trade_id"]) if t.get("trade_id") else None,
                _key(t["ts"] // 1000 if t.get("ts") is not None else None, t),
            )
            for t in rest
        ]
        found = match_count(archived_k, listed_k)
        listed_n, extra = len(listed_k), len(archived_k) - found
    else:
        archived = set(trades["trade_id"].drop_nulls().to_list()) if trades.height else set()
        listed = {str(t["trade_id"]) for t in rest}
        found = len(listed & archived)
        listed_n, extra = len(listed), len(archived - listed)
    share = found / listed_n if listed_n else 1.0
    return Check(
        "rest_match",
        share,
        3.0,
        found,
        f"{found} of the venue's {listed_n} trades archived; {extra} archived trades it does"
        " not list",
    )


def _dec(v: object) -> str | None:
    """``v`` as a canonical decimal text (``"0.480"``, ``0.48`` → ``"0.48"``)."""
    if v is None:
        return None
    try:
        d = Decimal(str(v))
    except InvalidOperation:
        return str(v)
    return format(d.normalize(), "f") if d.is_finite() else str(v)


def _key(second: int | None, t: dict[str, Any]) -> tuple[Hashable, ...]:
    """A trade's key where no hash decides: (exchange second, price, size, side)."""
    side = t.get("side")
    return (second, _dec(t.get("price")), _dec(t.get("size")), str(side).lower() if side else None)


def _archived_keys(trades: Any) -> list[tuple[str | None, tuple[Hashable, ...]]]:
    if not trades.height:
        return []
    ts = trades["ts"].dt.epoch("ms").to_list()
    rows = trades.select("trade_id", "price", "size", "side").to_dicts()
    return [
        (r["trade_id"] or None, _key(ms // 1000 if ms is not None else None, r))
        for ms, r in zip(ts, rows, strict=True)
    ]


Keyed = Sequence[tuple[str | None, Hashable]]


def match_count(archived: Keyed, listed: Keyed) -> int:
    """How many of the ``listed`` (REST) trades are in ``archived``: each a (hash or
    None, key) pair.

    A trade with a hash on both sides is matched by hash (as a multiset: a hash twice
    on each side is two matches), those of one hash with equal keys first. What is left
    is matched by key, as a multiset, except that two trades that both have a hash
    (different ones) never match: per key, with ``a``/``r`` archived/listed trades of
    which ``a0``/``r0`` have no hash, that is ``min(a, r, a0 + r0)`` matches.
    """
    a_hash: dict[str, list[Hashable]] = {}
    r_hash: dict[str, list[Hashable]] = {}
    left: dict[Hashable, list[int]] = {}  # key -> [a with hash, a without, r with, r without]

    def leave(key: Hashable, slot: int) -> None:
        left.setdefault(key, [0, 0, 0, 0])[slot] += 1

    for h, key in archived:
        if h is None:
            leave(key, 1)
        else:
            a_hash.setdefault(h, []).append(key)
    for h, key in listed:
        if h is None:
            leave(key, 3)
        else:
            r_hash.setdefault(h, []).append(key)
    found = 0
    for h in a_hash.keys() | r_hash.keys():
        a = Counter(a_hash.get(h, ()))
        r = Counter(r_hash.get(h, ()))
        same = a & r
        a_rest, r_rest = a - same, r - same
        paired = min(a_rest.total(), r_rest.total())
        found += same.total() + paired
        # of one hash, unequal keys pair up too; the surplus side is left to match by key
        surplus, slot = (a_rest, 0) if a_rest.total() > r_rest.total() else (r_rest, 2)
        for key in sorted(surplus.elements(), key=repr)[paired:]:
            leave(key, slot)
    for ah, an, rh, rn in left.values():
        found += min(ah + an, rh + rn, an + rn)
    return found
