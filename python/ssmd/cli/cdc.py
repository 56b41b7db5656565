"""``ssmd cdc run|status``: secmaster change data capture onto NATS JetStream."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer

from ssmd.cli._app import app, group
from ssmd.cli.options import (
    DatabaseUrl,
    JsonOut,
    LogFormat,
    LogLevel,
    MetricsPort,
    Nats,
    StopAfter,
    check_url,
    duration,
    echo_json,
    need_nats,
    require,
    serve_metrics,
    service_settings,
    settings,
    table,
)
from ssmd.errors import ConfigError

cdc_app = group(
    "cdc",
    "Change data capture: every committed row change of the secmaster onto NATS (cdc.>).",
)
app.add_typer(cdc_app, name="cdc")

Slot = Annotated[str, typer.Option("--slot", metavar="NAME", help="Logical replication slot.")]
Tables = Annotated[
    str | None,
    typer.Option(
        "--tables",
        envvar="CDC_TABLES",
        show_envvar=True,
        metavar="A,B",
        help="Tables to capture.",
        show_default="events,markets,series_fees,pairs,polymarket_conditions,polymarket_tokens,series",
    ),
]


def _dsn(url: str | None) -> str:
    if not url:
        raise ConfigError("CDC reads the secmaster: give --database-url or set DATABASE_URL")
    return check_url(url, "--database-url", ("postgresql", "postgres"))


@cdc_app.command(
    "run",
    epilog="Examples:\n\n\b\n"
    "  ssmd cdc run --database-url postgresql://ssmd@127.0.0.1/ssmd --nats nats://127.0.0.1:4222\n"
    "  ssmd cdc run --resync     # after PostgreSQL invalidated the slot",
)
def cdc_run(
    database_url: DatabaseUrl = None,
    nats: Nats = None,
    slot: Slot = "ssmd_cdc",
    tables: Tables = None,
    resync: Annotated[
        bool,
        typer.Option(
            "--resync",
            help="Drop and recreate the slot, publish a snapshot of the tables (op snapshot),"
            " then stream.",
        ),
    ] = False,
    poll: Annotated[
        float,
        typer.Option(
            "--poll",
            parser=duration,
            metavar="DURATION",
            help="Wait between looks at an idle slot.",
            show_default="20ms",
        ),
    ] = 0.02,
    heartbeat: Annotated[
        float,
        typer.Option(
            "--heartbeat",
            parser=duration,
            metavar="DURATION",
            help="On a quiet database, a heartbeat this often keeps the slot advancing.",
            show_default="10s",
        ),
    ] = 10.0,
    batch: Annotated[
        int,
        typer.Option(
            "--batch",
            min=1,
            max=1_000_000,
            metavar="N",
            help="Changes per round (whole transactions).",
        ),
    ] = 10_000,
    duration_: StopAfter = None,
    metrics_port: MetricsPort = None,
    log_level: LogLevel = None,
    log_format: LogFormat = None,
    json_out: JsonOut = False,
) -> None:
    """Run the CDC service: the slot's changes onto JetStream (SECMASTER_CDC), none lost.

    One message per row change on cdc.TABLE.insert|update|delete, id {lsn}:{n}.
    The slot advances only past transactions JetStream acknowledged in full.
    """
    require("asyncpg", "secmaster", "ssmd cdc run")
    require("nats", "bus", "ssmd cdc run")
    s = service_settings(
        database_url=database_url,
        nats_url=nats,
        cdc_tables=tables,
        log_level=log_level,
        log_format=log_format,
    )
    dsn = _dsn(s.database_url)
    url = need_nats(s.nats_url, "ssmd cdc run")
    serve_metrics(metrics_port)
    from ssmd.cdc.service import CdcService
    from ssmd.runtime.shutdown import run_until_stopped

    service = CdcService(
        dsn,
        url,
        tables=s.cdc_tables,
        slot=slot,
        batch=batch,
        poll=poll,
        heartbeat=heartbeat,
        resync=resync,
    )

    stats = asyncio.run(run_until_stopped(service.run, duration_))
    if json_out:
        echo_json(stats.as_dict())
        return
    typer.echo(
        f"ssmd cdc: {stats.changes:,} change(s) in {stats.transactions:,} transaction(s)"
        f" ({stats.duplicates:,} already in the stream), {stats.snapshot_rows:,} snapshot row(s),"
        f" {stats.heartbeats:,} heartbeat(s), slot {stats.slot} confirmed at"
        f" {stats.confirmed_lsn or '-'}"
    )


@cdc_app.command(
    "status",
    epilog="Examples:\n\n\b\n"
    "  ssmd cdc status --database-url postgresql://ssmd@127.0.0.1/ssmd --nats nats://127.0.0.1:4222\n"
    "  ssmd cdc status --slot ssmd_cdc_staging --json",
)
def cdc_status(
    database_url: DatabaseUrl = None,
    nats: Nats = None,
    slot: Slot = "ssmd_cdc",
    json_out: JsonOut = False,
) -> None:
    """The slot's position and lag, and the stream's last change."""
    require("asyncpg", "secmaster", "ssmd cdc status")
    s = settings(database_url=database_url, nats_url=nats)
    dsn = _dsn(s.database_url)

    async def go() -> dict[str, Any]:
        from ssmd.cdc.slot import slot_info
        from ssmd.secmaster.db import connect

        conn = await connect(dsn)
        try:
            info = await slot_info(conn, slot)
        finally:
            await conn.close()
        out: dict[str, Any] = {"slot": info.as_dict() if info else None, "stream": None}
        if s.nats_url:
            out["stream"] = await _stream(need_nats(s.nats_url, "ssmd cdc status"))
        return out

    out = asyncio.run(go())
    info = out["slot"]
    if json_out:
        echo_json(out)  # and then the same exit as the table: 2 for a missing or lost slot
    elif info is not None:
        _print_status(info, out["stream"])
    if info is None:
        raise ConfigError(f"no replication slot {slot!r} (ssmd cdc run creates it)")
    if info["wal_status"] == "lost":
        raise ConfigError(
            f"slot {slot!r} was invalidated by PostgreSQL: run `ssmd cdc run --resync`"
        )


def _print_status(info: dict[str, Any], st: dict[str, Any] | None) -> None:
    rows: list[tuple[Any, ...]] = [
        ("slot", "confirmed", "server", "lag bytes", "wal status", "active"),
        (
            info["slot"],
            info["confirmed_lsn"],
            info["server_lsn"],
            info["lag_bytes"],
            info["wal_status"],
            info["active"],
        ),
    ]
    table(rows, left=1)
    if st:
        typer.echo(
            f"stream SECMASTER_CDC: {st['messages']:,} message(s), last {st['last_subject'] or '-'}"
            f" at {st['last_time'] or '-'}"
        )


async def _stream(url: str) -> dict[str, Any] | None:
    from ssmd.bus.nats import connect, stream_info

    nc = await connect(url, name="ssmd-cdc-status", connect_timeout=3.0)
    try:
        js = nc.jetstream()
        info = await stream_info(js, "SECMASTER_CDC")
        if info is None:
            return None
        last_subject = last_time = None
        if info.state.last_seq:
            msg = await js.get_msg("SECMASTER_CDC", info.state.last_seq)
            last_subject = msg.subject
            last_time = str(info.state.last_ts) if getattr(info.state, "last_ts", None) else None
        return {
            "messages": info.state.messages,
            "last_seq": info.state.last_seq,
            "last_subject": last_subject,
            "last_time": last_time,
        }
    finally:
        await nc.close()
