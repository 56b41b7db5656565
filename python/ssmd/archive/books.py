"""L2 order books at any moment: :func:`book_at` and :func:`books` (docs/data.md).

A book is rebuilt from the archive: the last snapshot of the instrument
before the moment asked for, then every delta after it, in the archive's
order (``rx``, then line order). It is refused, with the reason, when
something recorded in the archive lies between the snapshot and that
moment that makes the book unknowable: a sequence gap or resync of that
instrument, a disconnect, reconnect or restart of its connection, a stream
gap of the archiver, or (Kraken spot) a book whose CRC32 does not match the
checksum the venue sent. Kraken books are checked at every step, with the
pair's price and quantity precisions (given, or inferred from the widest
decimal text seen since the snapshot, as the connector does).

Prices and sizes stay exact decimal text, best level first.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import orjson

from ssmd.archive import iter_lines
from ssmd.archive.bounds import MAX_RX_NS
from ssmd.archive.frames import TimeArg, instant
from ssmd.archive.reading import OnWarning
from ssmd.core import kraken_checksum, normalize, subject_token
from ssmd.errors import ConfigError, SsmdError
from ssmd.types import BookDelta, BookSnapshot, Venue

__all__ = ["Book", "BookUnavailable", "book_at", "books"]

PathArg = str | os.PathLike[str]

#: ssmd status events after which a book is unknown until the next snapshot
BREAKS = ("gap", "resync", "disconnect", "reconnect", "restart")
#: subject kinds that carry book records, per venue (every venue has an entry)
BOOK_KINDS: dict[Venue, tuple[str, ...]] = {
    Venue.KALSHI: ("book", "orderbook_snapshot", "orderbook_delta"),
    Venue.KRAKEN: ("book",),
    Venue.KRAKEN_FUTURES: ("book", "book_snapshot"),
    Venue.POLYMARKET: ("book", "price_change"),
}
_DAY = 86_400 * 10**9


class BookUnavailable(SsmdError):
    """The book cannot be rebuilt at that moment; the message says why."""


@dataclasses.dataclass(frozen=True)
class Book:
    """An L2 book: levels best first as ``(price, size)`` exact decimal text."""

    venue: str
    instrument: str
    #: receive time (ns) of the last record applied, and of the snapshot it starts from
    rx: int
    snapshot_rx: int
    #: exchange time (ms) and sequence number of the last record applied
    ts: int | None
    seq: int | None
    bids: tuple[tuple[str, str], ...]
    asks: tuple[tuple[str, str], ...]
    #: deltas applied since the snapshot; Kraken checksums verified on the way
    updates: int = 0
    checksums_verified: int = 0

    def top(self, depth: int) -> Book:
        """The book cut to ``depth`` levels per side."""
        return dataclasses.replace(self, bids=self.bids[:depth], asks=self.asks[:depth])

    @property
    def best_bid(self) -> tuple[str, str] | None:
        return self.bids[0] if self.bids else None

    @property
    def best_ask(self) -> tuple[str, str] | None:
        return self.asks[0] if self.asks else None


def _dec(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        raise BookUnavailable(f"not a decimal level: {text!r}") from None


def _scale(text: str) -> int:
    _, _, frac = text.partition(".")
    return len(frac.split("e")[0].split("E")[0])


class _State:
    """One instrument's book while the archive is replayed."""

    def __init__(self, venue: str, precisions: tuple[int, int] | None) -> None:
        self.venue = venue
        self.precisions = precisions
        self.bids: dict[Decimal, tuple[str, str]] = {}
        self.asks: dict[Decimal, tuple[str, str]] = {}
        self.snapshot_rx: int | None = None
        self.broken: str | None = "no snapshot yet"
        self.rx = 0
        self.ts: int | None = None
        self.seq: int | None = None
        self.updates = 0
        self.verified = 0
        self.depth = 10
        self.scales = (0, 0)

    def snapshot(self, rec: BookSnapshot, rx: int) -> None:
        self.bids = {_dec(p): (p, s) for p, s in rec.bids if _dec(s) != 0}
        self.asks = {_dec(p): (p, s) for p, s in rec.asks if _dec(s) != 0}
        self.snapshot_rx, self.broken, self.updates, self.verified = rx, None, 0, 0
        self.depth = max(10, len(rec.bids), len(rec.asks))
        self._seen(rec.bids + rec.asks)
        self._mark(rec, rx)
        self._verify(rec.checksum, rx)

    def delta(self, rec: BookDelta, rx: int) -> None:
        if self.broken is not None:
            return
        for side, price, size in rec.changes:
            book = self.bids if side == "bid" else self.asks
            key, amount = _dec(price), _dec(size)
            if rec.mode == "add":
                old = _dec(book[key][1]) if key in book else Decimal(0)
                amount = old + amount
                size = format(amount, "f")
            if amount <= 0:
                book.pop(key, None)
            else:
                book[key] = (price, size)
        if self.venue == "kraken":
            self._seen([(p, s) for _, p, s in rec.changes])
            for book, worst in ((self.bids, min), (self.asks, max)):
                while len(book) > self.depth:
                    del book[worst(book)]
        self.updates += 1
        self._mark(rec, rx)
        self._verify(rec.checksum, rx)

    def breaks(self, why: str) -> None:
        if self.broken is None:
            self.broken = why

    def _mark(self, rec: BookSnapshot | BookDelta, rx: int) -> None:
        self.rx, self.ts, self.seq = rx, rec.ts, rec.seq

    def _seen(self, levels: Any) -> None:
        pp, qp = self.scales
        for p, s in levels:
            pp, qp = max(pp, _scale(p)), max(qp, _scale(s))
        self.scales = (pp, qp)

    def _verify(self, expected: int | None, rx: int) -> None:
        if self.venue != "kraken" or expected is None:
            return
        pp, qp = self.precisions or self.scales
        asks, bids = self.levels()
        computed = kraken_checksum(list(asks[:10]), list(bids[:10]), pp, qp)
        if computed != expected:
            self.broken = (
                f"checksum mismatch at rx {rx}: the venue sent {expected}, the rebuilt book"
                f" gives {computed} (precisions {pp}/{qp})"
            )
        else:
            self.verified += 1

    def levels(self) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
        """``(asks, bids)``, best first."""
        asks = tuple(self.asks[k] for k in sorted(self.asks))
        bids = tuple(self.bids[k] for k in sorted(self.bids, reverse=True))
        return asks, bids

    def book(self, instrument: str) -> Book:
        asks, bids = self.levels()
        return Book(
            self.venue,
            instrument,
            self.rx,
            self.snapshot_rx or 0,
            self.ts,
            self.seq,
            bids,
            asks,
            self.updates,
            self.verified,
        )


def _venue(venue: str | Venue) -> str:
    return Venue.parse(venue).value


def _ns(value: TimeArg | int, what: str, *, end: bool) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"bad {what} {value!r}: expected a datetime, an ISO string or ns")
    if isinstance(value, int):
        if not 0 <= value <= MAX_RX_NS:
            raise ConfigError(
                f"bad {what} {value!r}: ns since the epoch must be in 0..2**64-1 (1970 to 2554)"
            )
        return value
    return instant(value, what, end=end)[1]


def _day(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns // 10**9, dt.timezone.utc).date().isoformat()


def _replay(
    venue: str,
    instrument: str,
    root: Path,
    rx_from: int,
    rx_to: int,
    precisions: tuple[int, int] | None,
    on_warning: OnWarning | None,
) -> Iterator[tuple[int, _State, bool]]:
    """Replay the archive; yields ``(rx, state, changed)`` after each book record or break."""
    token = subject_token(instrument)
    state = _State(venue, precisions)
    conns: set[str] = set()
    first, last = _day(rx_from), _day(max(rx_from, rx_to - 1))
    # Polymarket subjects carry the condition id, records the token id: read the
    # venue's book lines and keep the token's records.
    ids = None if venue == "polymarket" else [token]
    kinds = [*BOOK_KINDS[Venue.parse(venue)], "status"]
    lines = iter_lines(
        root,
        venue,
        first,
        last,
        kinds=kinds,
        instruments=ids,
        rx_from=rx_from,
        rx_to=rx_to,
        on_warning=on_warning,
    )
    status = iter_lines(root, venue, first, last, kinds=["status"], rx_from=rx_from, rx_to=rx_to)
    yield from _merge(instrument, token, state, conns, lines, status)


def _merge(
    instrument: str,
    token: str,
    state: _State,
    conns: set[str],
    lines: Iterator[bytes],
    status: Iterator[bytes],
) -> Iterator[tuple[int, _State, bool]]:
    """Apply the instrument's lines in order; connection and stream events from the
    venue's status lines break the book when they come after its snapshot."""
    venue = state.venue
    pending = next(status, None)
    for line in lines:
        env = orjson.loads(line)
        rx = env["rx"]
        while pending is not None:
            ev = orjson.loads(pending)
            if ev["rx"] >= rx:
                break
            yield from _apply_event(ev, state, conns, instrument, token)
            pending = next(status, None)
        subj: str = env["subj"]
        kind, _, inst = subj.partition(".json.")[2].partition(".")
        msg = env["msg"]
        if kind == "status":
            breaks = isinstance(msg, dict) and inst == token and msg.get("ssmd") in BREAKS
            if breaks and state.snapshot_rx is not None:
                state.breaks(f"a {msg.get('ssmd')} recorded at rx {rx}: {_brief(msg)}")
                yield rx, state, False
            continue
        raw = line[line.index(b',"msg":') + 7 : -1]
        for rec in normalize(venue, [raw]):
            if rec.instrument != instrument:
                continue
            if isinstance(rec, BookSnapshot):
                conns.add(env["conn"])
                state.snapshot(rec, rx)
                yield rx, state, True
            elif isinstance(rec, BookDelta):
                was = state.broken
                state.delta(rec, rx)
                yield rx, state, was is None
    while pending is not None:  # after the last book line, up to the end
        yield from _apply_event(orjson.loads(pending), state, conns, instrument, token)
        pending = next(status, None)


def _apply_event(
    ev: dict[str, Any], state: _State, conns: set[str], instrument: str, token: str
) -> Iterator[tuple[int, _State, bool]]:
    why = _conn_event(ev, conns, instrument, token)
    if why and state.snapshot_rx is not None and ev["rx"] > state.snapshot_rx:
        state.breaks(why)
        yield ev["rx"], state, False


def _conn_event(ev: dict[str, Any], conns: set[str], instrument: str, token: str) -> str | None:
    """Why a status line of the venue breaks the book, if it does (the instrument's own
    status lines are read in order with its book lines)."""
    msg = ev.get("msg")
    if not isinstance(msg, dict) or msg.get("ssmd") not in BREAKS:
        return None
    inst = ev["subj"].partition(".json.")[2].partition(".")[2]
    if inst == token:
        return None
    what, rx = msg["ssmd"], ev["rx"]
    if what == "gap" and msg.get("reason") == "stream":
        return f"a stream gap recorded at rx {rx} (the archiver lost messages): {_brief(msg)}"
    if what == "gap":
        if msg.get("instrument") == instrument:
            return f"a gap recorded at rx {rx}: {_brief(msg)}"
        return None
    if inst in conns or msg.get("conn") in conns or ev.get("conn") in conns:
        return f"a {what} of its connection recorded at rx {rx}: {_brief(msg)}"
    return None


def _brief(msg: dict[str, Any]) -> str:
    return orjson.dumps(msg).decode()[:200]


def book_at(
    venue: str | Venue,
    instrument: str,
    at: TimeArg | int,
    *,
    depth: int | None = None,
    dir: PathArg | None = None,
    precisions: tuple[int, int] | None = None,
    lookback_days: int = 1,
    on_warning: OnWarning | None = None,
) -> Book:
    """The L2 book of ``instrument`` as of ``at`` (every record with ``rx <= at``).

    ``at``: a datetime (UTC when naive), an ISO string, or ns since the
    epoch. The archive is read from ``lookback_days`` days before ``at``'s
    day. Raises :class:`BookUnavailable` with the reason when there is no
    snapshot in that span, or a gap, resync, disconnect or checksum mismatch
    lies between the last snapshot and ``at``. ``precisions``: Kraken's
    ``(price, quantity)`` decimals for the checksum (default: inferred).
    """
    name = _venue(venue)
    t = _ns(at, "at", end=False)
    root = Path("./data" if dir is None else dir)
    if not root.is_dir():
        raise ConfigError(f"archive directory not found: {root}")
    start = (t // _DAY - max(0, lookback_days)) * _DAY
    state: _State | None = None
    for _, st, _ in _replay(
        name, instrument, root, start, min(t + 1, MAX_RX_NS), precisions, on_warning
    ):
        state = st
    if state is None or state.snapshot_rx is None:
        raise BookUnavailable(
            f"no book snapshot of {instrument!r} ({name}) from {_day(start)} up to {_iso(t)}"
        )
    if state.broken is not None:
        raise BookUnavailable(
            f"{name} {instrument} at {_iso(t)}: the last snapshot (rx {state.snapshot_rx}) is"
            f" followed by {state.broken}"
        )
    book = state.book(instrument)
    return book.top(depth) if depth is not None else book


def books(
    venue: str | Venue,
    instrument: str,
    start: TimeArg | int,
    end: TimeArg | int,
    *,
    dir: PathArg | None = None,
    precisions: tuple[int, int] | None = None,
    on_gap: str = "skip",
    on_warning: OnWarning | None = None,
) -> Iterator[Book]:
    """The book after every snapshot and delta of ``instrument`` with ``start <= rx < end``.

    Across a gap, resync, disconnect or checksum mismatch the book is
    unknown: with ``on_gap="skip"`` (default) nothing is yielded until the
    next snapshot; with ``on_gap="raise"`` :class:`BookUnavailable` is raised.
    """
    if on_gap not in ("skip", "raise"):
        raise ConfigError(f"bad on_gap {on_gap!r}: use 'skip' or 'raise'")
    name = _venue(venue)
    lo, hi = _ns(start, "start", end=False), _ns(end, "end", end=True)
    root = Path("./data" if dir is None else dir)
    if not root.is_dir():
        raise ConfigError(f"archive directory not found: {root}")
    for _, state, changed in _replay(name, instrument, root, lo, hi, precisions, on_warning):
        if state.broken is None and changed:
            yield state.book(instrument)
        elif state.broken is not None and on_gap == "raise" and state.snapshot_rx is not None:
            raise BookUnavailable(f"{name} {instrument}: {state.broken}")


def _iso(ns: int) -> str:
    t = dt.datetime.fromtimestamp(ns // 10**9, dt.timezone.utc)
    return f"{t:%Y-%m-%dT%H:%M:%S}.{ns % 10**9:09d}Z"
