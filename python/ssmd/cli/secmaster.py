"""``ssmd secmaster``: sync venue metadata into PostgreSQL, show and search it.

``sync`` (Kalshi; ``--all`` for every venue), ``show``, ``search`` and
``schedule``. ``ssmd kraken sync``, ``ssmd polymarket sync`` and ``ssmd db
migrate`` live in their own modules and share the helpers here.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Coroutine, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import orjson
import typer

from ssmd.cli._app import app, group
from ssmd.cli.options import DatabaseUrl, JsonOut, LogFormat, LogLevel, Venues, duration, require
from ssmd.cli.options import settings as common_settings
from ssmd.cli.options import setup_logging as options_setup_logging
from ssmd.errors import ConfigError
from ssmd.secmaster.config import KALSHI_STATUS_FILTERS as STATUS_FILTERS
from ssmd.secmaster.config import SYNCS, SecmasterSettings
from ssmd.types import Venue

if TYPE_CHECKING:  # the database and HTTP stacks load only when a command runs
    from ssmd.secmaster.sync import Job, SyncResult

T = TypeVar("T")

secmaster_app = group(
    "secmaster",
    "Security master: sync venue metadata into PostgreSQL, show and search it.",
)
app.add_typer(secmaster_app, name="secmaster")

DatabaseOpt = DatabaseUrl
RateOpt = Annotated[
    float | None,
    typer.Option(
        "--rate",
        min=0,
        metavar="PER_S",
        help="Requests per second to the venue (0: no limit) [env var: SSMD_<VENUE>_RATE].",
        show_default="per venue",
    ),
]
AttemptsOpt = Annotated[
    int | None,
    typer.Option(
        "--attempts",
        min=1,
        max=100,
        metavar="N",
        help="Attempts per request on 429, 5xx and timeouts.",
        show_default="5",
    ),
]
JsonOpt = JsonOut
ProgressOpt = Annotated[
    bool | None,
    typer.Option(
        "--progress/--no-progress",
        help="Progress bars on stderr.",
        show_default="when stderr is a terminal",
    ),
]


def setup_logging(log_level: str | None, log_format: str | None) -> None:
    """Logging of a secmaster command (``--log-level``, ``--log-format``)."""
    s = common_settings(log_level=log_level, log_format=log_format)
    options_setup_logging(s.log_level, s.log_format)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return str(value)


def print_summary(results: Sequence[SyncResult], as_json: bool) -> None:
    """The end-of-sync table (or JSON), then one ``ssmd: error:`` line per failed listing."""
    if as_json:
        typer.echo(orjson.dumps([r.as_dict() for r in results]).decode())
    else:
        head = (
            f"{'sync':<18}{'table':<24}{'fetched':>9}{'inserted':>10}{'updated':>9}"
            f"{'unchanged':>11}{'marked inactive':>17}{'skipped':>9}{'seconds':>9}"
        )
        typer.echo(head)
        typer.echo("-" * len(head))
        for r in results:
            for i, t in enumerate(r.tables.values()):
                secs = f"{r.seconds:>9.1f}" if i == 0 else ""
                typer.echo(
                    f"{r.name if i == 0 else '':<18}{t.table:<24}{t.fetched:>9,}{t.inserted:>10,}"
                    f"{t.updated:>9,}{t.unchanged:>11,}{t.delisted:>17,}{t.skipped:>9,}{secs}"
                )
            if not r.tables:
                typer.echo(f"{r.name:<18}{'(nothing synced)':<24}")
            typer.echo(
                f"{'':<18}requests {r.requests:,}, retries {r.retries:,}, throttled (429) {r.throttled:,}"
            )
    for r in results:
        for err in r.errors:
            typer.echo(f"ssmd: error: {err}", err=True)


def finish(results: Sequence[SyncResult], as_json: bool) -> None:
    print_summary(results, as_json)
    if any(not r.ok for r in results):
        raise typer.Exit(1)


def settings(
    database_url: str | None,
    *,
    urls: dict[str, str | None] | None = None,
    rates: dict[str, float | None] | None = None,
    attempts: int | None = None,
) -> SecmasterSettings:
    """Flags over :class:`ssmd.settings.Settings` (environment, ``ssmd.toml``) over defaults."""
    s = common_settings(database_url=database_url)
    urls = dict(urls or {})
    rates = dict(rates or {})
    for v in Venue:
        vs = s.venue(v)
        if urls.get(v.value) is None:
            urls[v.value] = vs.rest_url
        if rates.get(v.value) is None:
            rates[v.value] = vs.rate
    return SecmasterSettings.load(
        {}, database_url=s.database_url, urls=urls, rates=rates, attempts=attempts
    )


def sync_command(
    s: SecmasterSettings, jobs: list[Job], as_json: bool, show_progress: bool | None
) -> None:
    """Run the jobs with progress bars and print the summary; exit 1 if a listing failed."""
    require("asyncpg", "secmaster", "the secmaster syncs")
    from ssmd.secmaster.sync import run_job, run_jobs
    from ssmd.secmaster.sync.base import make_progress

    if not s.database_url:
        raise ConfigError("DATABASE_URL is not set (export it or pass --database-url)")

    async def go() -> list[SyncResult]:
        with make_progress(show_progress) as progress:
            if len(jobs) == 1:  # errors such as an unreachable venue: one line, exit 2
                return [await run_job(s, jobs[0], progress)]
            return await run_jobs(s, jobs, progress)

    finish(run(go()), as_json)


@secmaster_app.command(
    "sync",
    epilog="Examples:\n\n\b\n"
    "  ssmd secmaster sync --category Economics\n"
    "  ssmd secmaster sync --all --json",
)
def sync(
    category: Annotated[
        list[str] | None,
        typer.Option(
            "--category",
            "-c",
            metavar="CATEGORY",
            help="Only series of this Kalshi category (repeat for more).",
        ),
    ] = None,
    status: Annotated[
        str | None,
        typer.Option(
            "--status",
            metavar="STATUS",
            help=f"Only events/markets with this Kalshi status filter ({', '.join(STATUS_FILTERS)});"
            " marks nothing delisted.",
        ),
    ] = None,
    all_venues: Annotated[
        bool, typer.Option("--all", help="Sync every venue: Kalshi, Kraken and Polymarket.")
    ] = False,
    url: Annotated[
        str | None,
        typer.Option(
            "--rest-url",
            "--url",
            envvar="SSMD_KALSHI_REST_URL",
            show_envvar=True,
            metavar="URL",
            help="Kalshi API root including /trade-api/v2 (--url: the same).",
            show_default=Venue.KALSHI.rest_root,
        ),
    ] = None,
    rate: RateOpt = None,
    attempts: AttemptsOpt = None,
    database_url: DatabaseOpt = None,
    as_json: JsonOpt = False,
    progress: ProgressOpt = None,
    log_level: LogLevel = None,
    log_format: LogFormat = None,
) -> None:
    """Sync Kalshi series, fee changes, events and markets into PostgreSQL (--all: every venue).

    Rows are upserted in bulk; only rows that changed are touched, and what a
    venue stops listing is marked, never deleted. Exit status 1 when a listing
    failed (the summary says which).
    """
    setup_logging(log_level, log_format)
    if status is not None and status not in STATUS_FILTERS:
        raise ConfigError(f"unknown --status {status!r} (one of: {', '.join(STATUS_FILTERS)})")
    from ssmd.secmaster.sync import Job

    s = settings(database_url, urls={"kalshi": url}, rates={"kalshi": rate}, attempts=attempts)
    jobs = [Job("kalshi", tuple(category or ()), status)]
    if all_venues:
        jobs += [Job(name) for name in SYNCS if name != "kalshi"]
    sync_command(s, jobs, as_json, progress)


def _check_venue(venue: list[Venue] | None) -> list[str]:
    return [v.value for v in dict.fromkeys(venue or ())]


async def _with_conn(s: SecmasterSettings, fn: Any) -> Any:
    require("asyncpg", "secmaster", "ssmd secmaster")
    from ssmd.secmaster import db

    conn = await db.connect(s.database_url)
    try:
        async with db.database_errors("the query"):
            await db.check_schema(conn)
            return await fn(conn)
    finally:
        await conn.close()


def _jsonable(rows: Any) -> str:
    return orjson.dumps(rows, default=str, option=orjson.OPT_INDENT_2).decode()


@secmaster_app.command(
    "show",
    epilog="Examples:\n\n\b\n"
    "  ssmd secmaster show BTC/USD\n"
    "  ssmd secmaster show KXBTCD-26NOV25-T100999.99 --json\n"
    "  ssmd secmaster show PF_XBTUSD --venue kraken-futures",
)
def show(
    instrument: Annotated[
        str,
        typer.Argument(
            metavar="INSTRUMENT", help="Instrument id or symbol: KXBTCD-…, XXBTZUSD, BTC/USD, 0x… ."
        ),
    ],
    venue: Venues = None,
    database_url: DatabaseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show one instrument from the `instruments` view, with the venue's record."""
    from ssmd.secmaster import query

    name = _check_venue(venue)
    s = settings(database_url)
    found = run(_with_conn(s, lambda c: query.show(c, instrument, name)))
    if not found:
        raise ConfigError(f"no instrument {instrument!r} in the secmaster")
    if as_json:
        typer.echo(_jsonable(found))
        return
    for i, item in enumerate(found):
        if i:
            typer.echo("")
        for col in query.VIEW_COLUMNS:
            typer.echo(f"{col:<14}{_fmt(item[col])}")
        if item.get("event"):
            e = item["event"]
            typer.echo(f"{'event':<14}{e['event_ticker']}  {_fmt(e['title'])}")
            typer.echo(f"{'series':<14}{e['series_ticker']}  {_fmt(e['series_title'])}")
        for tok in item.get("tokens", []):
            typer.echo(f"{'token':<14}{tok['token_id']}  {_fmt(tok['outcome'])}  {tok['status']}")
        typer.echo(f"{'raw':<14}{orjson.dumps(item['raw'], option=orjson.OPT_SORT_KEYS).decode()}")


@secmaster_app.command(
    "search",
    epilog="Examples:\n\n\b\n"
    "  ssmd secmaster search bitcoin\n"
    "  ssmd secmaster search BTC --venue kraken --venue kraken-futures --status active\n"
    "  ssmd secmaster search election -n 10 --json",
)
def search(
    text: Annotated[
        str, typer.Argument(metavar="TEXT", help="Text in the id, symbol, title or category.")
    ],
    venue: Venues = None,
    status: Annotated[
        str | None, typer.Option("--status", metavar="STATUS", help="Only this status.")
    ] = None,
    limit: Annotated[
        int,
        typer.Option("--limit", "-n", min=1, max=100_000, metavar="N", help="At most this many."),
    ] = 50,
    database_url: DatabaseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Search the `instruments` view (case-insensitive substring)."""
    from ssmd.secmaster import query

    name = _check_venue(venue)
    s = settings(database_url)
    rows = run(_with_conn(s, lambda c: query.search(c, text, name, limit, status)))
    if as_json:
        typer.echo(_jsonable(rows))
        return
    if not rows:
        typer.echo(f"no instrument matches {text!r}", err=True)
        return
    for r in rows:
        title = (r["title"] or "")[:60]
        typer.echo(
            f"{r['venue']:<15}{r['instrument_id'][:42]:<44}{r['status']:<11}"
            f"{_fmt(r['closes_at']):<22}{title}"
        )


@secmaster_app.command(
    "run",
    epilog="Examples:\n\n\b\n"
    "  ssmd secmaster run --interval 6h\n"
    "  ssmd secmaster run --venue kalshi --category Economics --interval 30m",
)
def schedule(
    interval: Annotated[
        float,
        typer.Option(
            "--interval",
            parser=duration,
            metavar="DURATION",
            help="Time between runs of each sync (90s, 30m, 6h).",
            show_default="6h",
        ),
    ] = 6 * 3600.0,
    jitter: Annotated[
        float,
        typer.Option(
            "--jitter",
            min=0,
            max=0.99,
            metavar="FRACTION",
            help="Random spread, as a fraction of the interval.",
        ),
    ] = 0.1,
    category: Annotated[
        list[str] | None,
        typer.Option(
            "--category",
            "-c",
            metavar="CATEGORY",
            help="Kalshi categories, one sync each (repeat for more).",
            show_default="every category of /series",
        ),
    ] = None,
    per_category: Annotated[
        bool,
        typer.Option(
            "--per-category/--no-per-category", help="One Kalshi sync per category, or one in all."
        ),
    ] = True,
    venue: Annotated[
        list[str] | None,
        typer.Option(
            "--venue", metavar="SYNC", help=f"Only these syncs: {', '.join(SYNCS)} (repeat)."
        ),
    ] = None,
    runs: Annotated[
        int | None,
        typer.Option(
            "--runs",
            min=1,
            metavar="N",
            help="Stop after this many runs of each sync.",
            show_default="never",
        ),
    ] = None,
    database_url: DatabaseOpt = None,
    log_level: LogLevel = None,
    log_format: LogFormat = None,
) -> None:
    """Run the secmaster service: every sync on its interval, logging each run.

    Kalshi runs one sync per category (or one in all), Kraken and Polymarket
    one each; a failed run is retried at its next turn.
    """
    require("asyncpg", "secmaster", "ssmd secmaster run")
    from ssmd.secmaster import schedule as sched

    setup_logging(log_level, log_format)
    if interval <= 0:
        raise ConfigError("--interval must be longer than 0 s")
    every = interval
    chosen = venue or list(SYNCS)
    for v in chosen:
        if v not in SYNCS:
            raise ConfigError(f"unknown --venue {v!r} (one of: {', '.join(SYNCS)})")
    s = settings(database_url)
    if not s.database_url:
        raise ConfigError("DATABASE_URL is not set (export it or pass --database-url)")

    async def go() -> None:
        from ssmd.secmaster import db

        conn = await db.connect(s.database_url)  # fail fast: one line, exit 1
        try:
            async with db.database_errors("the schema check"):
                await db.check_schema(conn)
        finally:
            await conn.close()
        entries = await sched.default_entries(
            s, interval=every, categories=category or (), per_category=per_category, venues=chosen
        )
        await sched.run_schedule(s, entries, jitter=jitter, runs=runs)

    run(go())
