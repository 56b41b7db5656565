"""``ssmd streams ls|create|info``: the JetStream streams, for operators."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Annotated, Any

import orjson
import typer

from ssmd.cli._app import app, group
from ssmd.cli.options import JsonOut, Nats, need_nats, require, settings
from ssmd.errors import ConfigError

streams_app = group(
    "streams",
    "List, create or update, and inspect the NATS JetStream streams ssmd uses (docs/bus.md).",
)
app.add_typer(streams_app, name="streams")

NatsOpt = Nats
JsonOpt = JsonOut


def _specs(nats: str | None, command: str) -> tuple[str, list[Any]]:
    """The NATS URL and the stream specs of this environment (``SSMD_ENV``, ``SSMD_STREAM_*``)."""
    require("nats", "bus", command)
    from ssmd.bus.streams import stream_specs

    s = settings(nats_url=nats)
    return need_nats(s.nats_url, command), stream_specs(s.env, environ=s.streams)


def _size(n: int) -> str:
    if n < 0:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n = n / 1024  # type: ignore[assignment]
    return str(n)


def _age(secs: float) -> str:
    if secs <= 0:
        return "-"
    for unit, s in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= s and secs % s == 0:
            return f"{secs / s:.0f}{unit}"
    return f"{secs:.0f}s"


async def _with_js(url: str, fn: Any) -> Any:
    from ssmd.bus.nats import connect

    nc = await connect(url, name="ssmd-streams", connect_timeout=3.0)
    try:
        return await fn(nc.jetstream())
    finally:
        await nc.close()


def _table(rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


@streams_app.command(
    "ls",
    epilog="Examples:\n\n\b\n"
    "  ssmd streams ls --nats nats://127.0.0.1:4222\n"
    "  SSMD_ENV=staging ssmd streams ls --json",
)
def streams_ls(nats: NatsOpt = None, as_json: JsonOpt = False) -> None:
    """Each stream ssmd uses: wanted limits and, when it exists, its state.

    The environment SSMD_ENV (default prod) names the venue streams and their
    subjects: PROD_KRAKEN over prod.kraken.>, STAGING_KRAKEN with
    SSMD_ENV=staging; SECMASTER_CDC and SIGNALS keep their names.
    """
    url, specs = _specs(nats, "ssmd streams ls")
    from ssmd.bus.nats import stream_info

    async def go(js: Any) -> list[tuple[Any, Any]]:
        return [(s, await stream_info(js, s.name)) for s in specs]

    found = asyncio.run(_with_js(url, go))
    if as_json:
        out = []
        for spec, info in found:
            d: dict[str, Any] = {
                "stream": spec.name,
                "subjects": list(spec.subjects),
                "source": list(spec.source) if spec.source else None,
                "max_bytes": spec.max_bytes,
                "max_age": spec.max_age,
                "exists": info is not None,
            }
            if info is not None:
                d.update(
                    messages=info.state.messages,
                    bytes=info.state.bytes,
                    first_seq=info.state.first_seq,
                    last_seq=info.state.last_seq,
                    differences=spec.differences(info.config),
                )
            out.append(d)
        typer.echo(orjson.dumps(out).decode())
        return
    rows = [("stream", "subjects", "max bytes", "max age", "messages", "bytes", "state")]
    for spec, info in found:
        subjects = ",".join(spec.subjects) or f"<- {spec.source[0] if spec.source else ''}"
        if info is None:
            rows.append(
                (
                    spec.name,
                    subjects,
                    _size(spec.max_bytes),
                    _age(spec.max_age),
                    "-",
                    "-",
                    "missing",
                )
            )
            continue
        diff = spec.differences(info.config)
        rows.append(
            (
                spec.name,
                subjects,
                _size(spec.max_bytes),
                _age(spec.max_age),
                f"{info.state.messages:,}",
                _size(info.state.bytes),
                "differs: " + "; ".join(diff) if diff else "ok",
            )
        )
    _table(rows)


@streams_app.command(
    "create",
    epilog="Examples:\n\n\b\n"
    "  ssmd streams create --nats nats://127.0.0.1:4222\n"
    "  SSMD_ENV=staging ssmd streams create STAGING_KRAKEN STAGING_KALSHI",
)
def streams_create(
    names: Annotated[
        list[str] | None,
        typer.Argument(metavar="STREAM", help="Streams to create or update.", show_default="all"),
    ] = None,
    nats: NatsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create missing streams and update changed ones (idempotent).

    The environment SSMD_ENV (default prod) names the venue streams and their
    subjects: PROD_KRAKEN over prod.kraken.>, STAGING_KRAKEN with
    SSMD_ENV=staging; SECMASTER_CDC and SIGNALS keep their names.
    """
    url, specs = _specs(nats, "ssmd streams create")
    from ssmd.bus.nats import ensure_streams

    if names:
        known = {s.name: s for s in specs}
        bad = [n for n in names if n not in known]
        if bad:
            raise ConfigError(f"unknown stream {bad[0]!r} (streams: {', '.join(known)})")
        specs = [known[n] for n in names]
        # a sourced stream needs its origin
        for s in list(specs):
            if s.source and s.source[0] not in names:
                specs.insert(0, known[s.source[0]])
    results = asyncio.run(_with_js(url, lambda js: ensure_streams(js, specs)))
    if as_json:
        typer.echo(orjson.dumps(results).decode())
        return
    for r in results:
        extra = f" ({'; '.join(r['changes'])})" if r["changes"] else ""
        typer.echo(f"{r['stream']}: {r['action']}{extra}")


@streams_app.command(
    "info",
    epilog="Examples:\n\n\b\n"
    "  ssmd streams info PROD_KRAKEN\n"
    "  ssmd streams info SECMASTER_CDC --nats nats://127.0.0.1:4222 --json",
)
def streams_info(
    name: Annotated[str, typer.Argument(metavar="STREAM", help="Stream name, e.g. PROD_KRAKEN.")],
    nats: NatsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Configuration, state and consumers of one stream."""
    url, _ = _specs(nats, "ssmd streams info")
    from ssmd.bus.nats import stream_info

    async def go(js: Any) -> tuple[Any, list[Any]]:
        info = await stream_info(js, name)
        if info is None:
            raise ConfigError(f"no stream {name!r} on the server (ssmd streams ls)")
        consumers = await js.consumers_info(name)
        return info, consumers

    info, consumers = asyncio.run(_with_js(url, go))
    cfg, st = info.config, info.state
    if as_json:
        typer.echo(
            orjson.dumps(
                {
                    "config": cfg.as_dict(),
                    "state": {
                        "messages": st.messages,
                        "bytes": st.bytes,
                        "first_seq": st.first_seq,
                        "last_seq": st.last_seq,
                        "consumer_count": st.consumer_count,
                    },
                    "consumers": [
                        {
                            "name": c.name,
                            "num_pending": c.num_pending,
                            "num_ack_pending": c.num_ack_pending,
                            "ack_floor": c.ack_floor.stream_seq if c.ack_floor else None,
                        }
                        for c in consumers
                    ],
                },
                default=str,
            ).decode()
        )
        return
    typer.echo(f"stream     {cfg.name}")
    typer.echo(f"subjects   {', '.join(cfg.subjects or []) or '-'}")
    if cfg.sources:
        typer.echo(
            "sources    "
            + ", ".join(f"{s.name} ({s.filter_subject or 'all'})" for s in cfg.sources)
        )
    typer.echo(
        f"limits     max_bytes {_size(cfg.max_bytes or -1)}, max_age {_age(cfg.max_age or 0)}, "
        f"max_msgs {cfg.max_msgs if cfg.max_msgs and cfg.max_msgs > 0 else '-'}, "
        f"duplicate window {_age(cfg.duplicate_window or 0)}, storage {getattr(cfg.storage, 'value', cfg.storage) or '-'}, "
        f"replicas {cfg.num_replicas or 1}"
    )
    typer.echo(
        f"state      {st.messages:,} messages, {_size(st.bytes)}, seq {st.first_seq}..{st.last_seq}"
    )
    for c in consumers:
        floor = c.ack_floor.stream_seq if c.ack_floor else 0
        typer.echo(
            f"consumer   {c.name}: {c.num_pending:,} pending, {c.num_ack_pending:,} unacknowledged, ack floor {floor}"
        )
