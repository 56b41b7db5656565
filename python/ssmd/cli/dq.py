"""``ssmd dq``: data-quality checks with a score (see :mod:`ssmd.dq`)."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from ssmd.archive import parse_date
from ssmd.cli._app import app, group
from ssmd.cli.options import (
    DatabaseUrl,
    Dir,
    JsonOut,
    duration,
    echo_json,
    require,
    settings,
)
from ssmd.dq import Check, TradeReport, check_trades
from ssmd.dq.secmaster import SecmasterReport
from ssmd.errors import ConfigError
from ssmd.types import Venue

dq_app = group("dq", "Data-quality checks: a score per instrument and day, a table, --json.")
app.add_typer(dq_app, name="dq")

FailUnder = Annotated[
    float | None,
    typer.Option(
        "--fail-under", metavar="SCORE", min=0, max=100, help="Exit with status 1 below this score."
    ),
]


@dq_app.command(
    "trades",
    epilog="Examples:\n\n\b\n"
    "  ssmd dq trades --ticker KXBTCD-26FEB14-T100000 --date 2026-02-14\n"
    "  ssmd dq trades --exchange kraken --ticker BTC/USD --json --fail-under 90\n"
    "  ssmd dq trades --ticker KX-1 --rest-url http://127.0.0.1:8080/trade-api/v2\n"
    "  ssmd dq trades --exchange kraken --ticker BTC/USD --rest-url https://api.kraken.com/0\n"
    "  ssmd dq trades --exchange kraken-futures --ticker PF_XBTUSD"
    " --rest-url https://futures.kraken.com/derivatives/api/v3\n"
    "  ssmd dq trades --exchange polymarket --ticker TOKEN_ID"
    " --rest-url https://data-api.polymarket.com",
)
def trades(
    ticker: Annotated[
        str,
        typer.Option(
            "--ticker", "--instrument", metavar="ID", help="The instrument (the venue's id)."
        ),
    ],
    exchange: Annotated[
        Venue,
        typer.Option(
            "--exchange", "--venue", metavar="VENUE", help=f"The venue ({Venue.names()})."
        ),
    ] = Venue.KALSHI,
    date: Annotated[
        str | None,
        typer.Option("--date", metavar="DATE", help="The day (YYYY-MM-DD, UTC).  [default: today]"),
    ] = None,
    dir_: Dir = None,
    rest_url: Annotated[
        str | None,
        typer.Option(
            "--rest-url",
            metavar="URL",
            help="Compare with the venue's REST trade history: its API root (Kalshi,"
            " Kraken spot, Kraken Futures; the Data API root for Polymarket).",
        ),
    ] = None,
    fail_under: FailUnder = None,
    database_url: DatabaseUrl = None,
    json_out: JsonOut = False,
) -> None:
    """Score one instrument's trades on one day from the archive.

    Checks trades per minute, sequence gaps, gaps and resyncs the connector
    recorded, silences beyond the instrument's own rate, duplicates,
    exchange times going back, prices out of bounds and the receive lag;
    with --rest-url, the venue's own trade history. With DATABASE_URL set
    the score is stored in dq_daily_scores.
    """
    require("polars", "data", "ssmd dq trades")
    s = settings(archive_dir=dir_, database_url=database_url)
    day = parse_date(date) if date else dt.datetime.now(dt.timezone.utc).date()
    rest = None
    if rest_url:
        from ssmd.dq.rest import rest_trades

        rest = rest_trades(exchange.value, rest_url, ticker, day, archive_dir=s.archive_dir)
    report = check_trades(s.archive_dir, exchange, ticker, day, rest_trades=rest)
    if s.database_url:
        _store(s.database_url, report)
    if json_out:
        echo_json(report.to_json())
    else:
        _print(report)
    if fail_under is not None and report.score < fail_under:
        typer.echo(f"ssmd: error: score {report.score:.1f} is under {fail_under:g}", err=True)
        raise typer.Exit(1)


def _store(dsn: str, report: TradeReport) -> None:
    require("asyncpg", "secmaster", "storing dq scores (DATABASE_URL)")
    from ssmd.dq.store import store_score

    asyncio.run(
        store_score(
            dsn,
            dt.date.fromisoformat(report.date),
            report.venue,
            f"trades:{report.instrument}",
            round(report.score, 2),
            report.to_json(),
        )
    )


def _print(report: TradeReport) -> None:
    typer.echo(f"{report.venue} {report.instrument} {report.date}: score {report.score:.1f} / 100")
    rows = [("CHECK", "SCORE", "VALUE", "DETAIL")]
    for c in report.checks:
        value = f"{c.value:,.1f}" if isinstance(c.value, float) else f"{c.value:,}"
        rows.append((c.name, f"{100 * c.score:.0f}" if c.weight else "-", value, c.detail))
    w = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        typer.echo(f"{r[0]:<{w[0]}}  {r[1]:>{w[1]}}  {r[2]:>{w[2]}}  {r[3]}".rstrip())


@dq_app.command(
    "secmaster",
    epilog="Examples:\n\n\b\n"
    "  ssmd dq secmaster --date 2026-02-14\n"
    "  ssmd dq secmaster --dir /data/archive --json --fail-under 95\n"
    "  ssmd dq secmaster --max-sync-age 12h",
)
def secmaster(
    date: Annotated[
        str | None,
        typer.Option(
            "--date",
            metavar="DATE",
            help="The archive day to compare with (YYYY-MM-DD, UTC).  [default: today]",
        ),
    ] = None,
    dir_: Dir = None,
    max_sync_age: Annotated[
        float,
        typer.Option(
            "--max-sync-age",
            parser=duration,
            metavar="DURATION",
            help="A venue whose rows have not changed for longer is stale.",
            show_default="7d",
        ),
    ] = 7 * 86400.0,
    fail_under: FailUnder = None,
    database_url: DatabaseUrl = None,
    json_out: JsonOut = False,
) -> None:
    """Score the secmaster and compare it with one day of the archive.

    Counts rows per venue and status, listed instruments missing required
    fields, markets still open past their close time, instruments in the
    archive that day with no secmaster row and instruments trading that day
    with no archive line, and how long each venue's rows have gone
    unchanged. Needs DATABASE_URL; the score is stored in dq_daily_scores
    (check "secmaster", one row per venue and one for "all").
    """
    require("asyncpg", "secmaster", "ssmd dq secmaster")
    s = settings(archive_dir=dir_, database_url=database_url)
    if not s.database_url:
        raise ConfigError("ssmd dq secmaster needs DATABASE_URL (export it or pass --database-url)")
    day = parse_date(date) if date else dt.datetime.now(dt.timezone.utc).date()
    report = asyncio.run(
        _secmaster(s.database_url, s.archive_dir, day, dt.timedelta(seconds=max_sync_age))
    )
    if json_out:
        echo_json(report.to_json())
    else:
        _print_secmaster(report)
    if fail_under is not None and report.score < fail_under:
        typer.echo(f"ssmd: error: score {report.score:.1f} is under {fail_under:g}", err=True)
        raise typer.Exit(1)


async def _secmaster(
    dsn: str, root: Path, day: dt.date, max_sync_age: dt.timedelta
) -> SecmasterReport:
    from ssmd.dq.secmaster import check_secmaster
    from ssmd.dq.store import write_scores
    from ssmd.secmaster.db import connect, database_errors, migrate

    async with database_errors("ssmd dq secmaster"):
        conn = await connect(dsn)
        try:
            await migrate(conn)
            report = await check_secmaster(conn, root, day, max_sync_age=max_sync_age)
            details = report.to_json()
            scores = [("all", round(report.score, 2), details)]
            for venue in report.venues:
                venue_details = {"date": details["date"], **details["venues"][venue]}
                scores.append((venue, round(report.venue_score(venue), 2), venue_details))
            await write_scores(conn, day, "secmaster", scores)
        finally:
            await conn.close()
    return report


def _print_secmaster(report: SecmasterReport) -> None:
    typer.echo(f"secmaster {report.date}: score {report.score:.1f} / 100")
    rows = [("VENUE", "CHECK", "SCORE", "VALUE", "DETAIL")]
    for c in report.checks:
        rows.append(("all", c.name, _cell(c), f"{c.value:,}", c.detail))
    for venue, checks in report.venues.items():
        rows.append((venue, "score", f"{report.venue_score(venue):.0f}", "", ""))
        for c in checks.values():
            rows.append((venue, c.name, _cell(c), f"{c.value:,}", c.detail))
    w = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        typer.echo(
            f"{r[0]:<{w[0]}}  {r[1]:<{w[1]}}  {r[2]:>{w[2]}}  {r[3]:>{w[3]}}  {r[4]}".rstrip()
        )


def _cell(c: Check) -> str:
    return f"{100 * c.score:.0f}" if c.weight else "-"
