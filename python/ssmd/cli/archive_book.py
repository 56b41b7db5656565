"""``ssmd archive book``: an L2 book rebuilt from the archive at a moment (see
:mod:`ssmd.archive.books`)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import typer

from ssmd.archive.books import Book, book_at
from ssmd.cli.archive import archive_app
from ssmd.cli.options import Dir, JsonOut, echo_json, settings, split
from ssmd.errors import ConfigError
from ssmd.types import Venue


def _at(value: str) -> Any:
    if value.isdigit() and len(value) > 10:
        return int(value)
    return value


def _precisions(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    parts = split(value)
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise ConfigError(f"bad --precision {value!r}: expected PRICE,QTY decimals, e.g. 1,8")
    return int(parts[0]), int(parts[1])


def _utc(ns: int) -> str:
    t = dt.datetime.fromtimestamp(ns // 10**9, dt.timezone.utc)
    return f"{t:%Y-%m-%d %H:%M:%S}.{ns % 10**9:09d}"


@archive_app.command(
    "book",
    epilog="Examples:\n\n\b\n"
    "  ssmd archive book --venue kraken --instrument BTC/USD --at 2024-03-01T14:30:00\n"
    "  ssmd archive book --venue kalshi --instrument KXBTCD-26FEB14-T100000 --at 2026-02-14T15:30Z"
    " --depth 5 --json",
)
def book(
    venue: Annotated[
        Venue, typer.Option("--venue", metavar="VENUE", help="The venue.", show_default=False)
    ],
    instrument: Annotated[
        str,
        typer.Option("--instrument", metavar="ID", help="The venue's id (BTC/USD, a token id)."),
    ],
    at: Annotated[
        str,
        typer.Option(
            "--at",
            metavar="TIME",
            help="ISO datetime (UTC unless it has an offset) or ns since the epoch; records"
            " with rx up to and including it are applied.",
        ),
    ],
    depth: Annotated[
        int | None, typer.Option("--depth", min=1, metavar="N", help="Levels per side.")
    ] = 10,
    dir_: Dir = None,
    precision: Annotated[
        str | None,
        typer.Option(
            "--precision",
            metavar="PRICE,QTY",
            help="Kraken: the pair's price and quantity decimals for the checksum."
            "  [default: inferred from the wire]",
        ),
    ] = None,
    lookback: Annotated[
        int,
        typer.Option(
            "--lookback-days",
            min=0,
            metavar="N",
            help="Days before --at's day to look for a snapshot.",
        ),
    ] = 1,
    json_out: JsonOut = False,
) -> None:
    """Rebuild an L2 book at a moment: the last snapshot before it and the deltas after.

    Refused (exit status 1, with the reason) when a gap, resync, disconnect
    or stream gap recorded in the archive lies between that snapshot and the
    moment, or a Kraken checksum does not match (every step is checked).
    """
    root = settings(archive_dir=dir_).archive_dir
    b = book_at(
        venue.value,
        instrument,
        _at(at),
        depth=depth,
        dir=root,
        precisions=_precisions(precision),
        lookback_days=lookback,
    )
    if json_out:
        echo_json(_doc(b))
        return
    _print(b)


def _doc(b: Book) -> dict[str, Any]:
    return {
        "venue": b.venue,
        "instrument": b.instrument,
        "rx": b.rx,
        "snapshot_rx": b.snapshot_rx,
        "ts": b.ts,
        "seq": b.seq,
        "updates": b.updates,
        "checksums_verified": b.checksums_verified,
        "bids": [list(lv) for lv in b.bids],
        "asks": [list(lv) for lv in b.asks],
    }


def _print(b: Book) -> None:
    checked = f", {b.checksums_verified} checksums verified" if b.venue == "kraken" else ""
    typer.echo(
        f"{b.venue} {b.instrument}: snapshot at {_utc(b.snapshot_rx)} + {b.updates} updates,"
        f" last at {_utc(b.rx)}{checked}"
    )
    rows = [["BID SIZE", "BID", "ASK", "ASK SIZE"]]
    for i in range(max(len(b.bids), len(b.asks))):
        bid = b.bids[i] if i < len(b.bids) else ("", "")
        ask = b.asks[i] if i < len(b.asks) else ("", "")
        rows.append([bid[1], bid[0], ask[0], ask[1]])
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        typer.echo(
            f"{r[0]:>{widths[0]}}  {r[1]:>{widths[1]}}  |  {r[2]:<{widths[2]}}  {r[3]:<{widths[3]}}".rstrip()
        )
