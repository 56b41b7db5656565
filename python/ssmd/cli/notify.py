"""``ssmd notify run|check|sim``: signal fires to ntfy."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from ssmd.cli._app import app, group
from ssmd.cli.options import (
    JsonOut,
    LogFormat,
    LogLevel,
    MetricsPort,
    Nats,
    StopAfter,
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
from ssmd.settings import ENV

notify_app = group("notify", "Signal fires to ntfy (docs/notify.md).")
app.add_typer(notify_app, name="notify")

Destinations = Annotated[
    Path | None,
    typer.Option(
        "--destinations",
        envvar=ENV["notify_config"],
        show_envvar=True,
        metavar="FILE",
        help="Where fires go: a TOML or YAML file of [[destinations]] (docs/notify.md).",
        show_default=False,
    ),
]


def _config(path: Path | None, command: str) -> Any:
    from ssmd.notify.config import load_config
    from ssmd.settings import environment

    s = settings(notify_config=path)
    if s.notify_config is None:
        raise ConfigError(
            f"{command} needs a destinations file: give --destinations FILE or set"
            f" {ENV['notify_config']}"
        )
    return load_config(s.notify_config, environment())


@notify_app.command(
    "run",
    epilog="Examples:\n\n\b\n"
    "  ssmd notify run --destinations notify.toml --nats nats://127.0.0.1:4222\n"
    "  NTFY_TOKEN=tk_... ssmd notify run --destinations notify.yaml --metrics-port 9105",
)
def notify_run(
    destinations: Destinations = None,
    nats: Nats = None,
    consumer: Annotated[
        str,
        typer.Option(
            "--consumer",
            metavar="NAME",
            help="Durable consumer of SIGNALS (created on first start: fires from then on).",
        ),
    ] = "notify",
    duration_: StopAfter = None,
    metrics_port: MetricsPort = None,
    log_level: LogLevel = None,
    log_format: LogFormat = None,
    json_out: JsonOut = False,
) -> None:
    """Route fires from signals.> to the destinations whose rules they match.

    A fire is acknowledged only after every matching destination accepted it;
    failures are retried with backoff (Retry-After honoured), then the fire goes
    to deadletter.notify with the reason. Nothing is sent twice across restarts.
    """
    require("nats", "bus", "ssmd notify run")
    s = service_settings(nats_url=nats, log_level=log_level, log_format=log_format)
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", consumer):
        raise ConfigError(f"--consumer {consumer!r}: letters, digits, _ and - only")
    config = _config(destinations, "ssmd notify run")
    url = need_nats(s.nats_url, "ssmd notify run")
    serve_metrics(metrics_port)
    from ssmd.notify.service import NotifyService
    from ssmd.runtime.shutdown import run_until_stopped

    service = NotifyService(config, url, durable=consumer)

    stats = asyncio.run(run_until_stopped(service.run, duration_))
    if json_out:
        echo_json(stats.as_dict())
        return
    sent = sum(stats.sent.values())
    typer.echo(
        f"ssmd notify: {stats.fires:,} fire(s), {sent:,} sent, {stats.unmatched:,} matched no"
        f" destination, {sum(stats.suppressed.values()):,} held back by a cooldown,"
        f" {sum(stats.deadletters.values()):,} sent to deadletter.notify"
    )


@notify_app.command(
    "check",
    epilog="Examples:\n\n\b\n"
    "  ssmd notify check --destinations notify.toml\n"
    "  ssmd notify check --destinations notify.toml --send-test   # one test message each",
)
def notify_check(
    destinations: Destinations = None,
    send_test: Annotated[
        bool,
        typer.Option("--send-test", help="Send one test message to every destination."),
    ] = False,
    json_out: JsonOut = False,
) -> None:
    """Read the destinations file and show where fires would go (exit 1 when a test send fails)."""
    config = _config(destinations, "ssmd notify check")
    results: dict[str, str] = {}
    if send_test:
        results = asyncio.run(_send_test(config))
    rows: list[list[Any]] = [
        ["destination", "server", "topic", "priority", "cooldown", "signals", "rules", "token"]
    ]
    docs = []
    for d in config.destinations:
        rules = " and ".join(f"{r.field} {r.op} {r.value!r}" for r in d.rules) or "-"
        rows.append(
            [
                d.name,
                d.server,
                d.topic,
                d.priority,
                f"{d.cooldown:g}s" if d.cooldown else "-",
                ",".join(d.signals) or "all",
                rules,
                d.token is not None,
            ]
        )
        docs.append(
            {
                "name": d.name,
                "server": d.server,
                "topic": d.topic,
                "priority": d.priority,
                "tags": list(d.tags),
                "cooldown": d.cooldown,
                "signals": list(d.signals),
                "rules": [{"field": r.field, "op": r.op, "value": r.value} for r in d.rules],
                "token": d.token is not None,
                "max_attempts": d.retry.max_attempts,
                **({"test": results[d.name]} if d.name in results else {}),
            }
        )
    if json_out:
        echo_json({"file": str(config.path), "destinations": docs})
    else:
        if results:
            rows[0].append("test")
            for row, d in zip(rows[1:], config.destinations, strict=True):
                row.append(results[d.name])
        table(rows, left=len(rows[0]))
    if any(r != "sent" for r in results.values()):
        raise typer.Exit(1)


async def _send_test(config: Any) -> dict[str, str]:
    import httpx

    from ssmd.notify.ntfy import publish

    now = time.time_ns()
    fire = {
        "signal": "ssmd-test",
        "instrument": "TEST",
        "venue": "ssmd",
        "ts": now,
        "rx": now,
        "source_seq": 0,
        "payload": {"note": "a test message from ssmd notify check"},
    }
    out = {}
    async with httpx.AsyncClient() as client:
        for d in config.destinations:
            res = await publish(client, d, fire)
            out[d.name] = "sent" if res.ok else f"failed: {res.reason}"
    return out


@notify_app.command(
    "sim",
    epilog="Examples:\n\n\b\n"
    '  ssmd notify sim --port 8090     # then server = "http://127.0.0.1:8090" in the file',
)
def notify_sim(
    host: Annotated[str, typer.Option(metavar="ADDR", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(min=0, max=65535, metavar="PORT", help="Port; 0 picks a free one.")
    ] = 0,
    duration_: Annotated[
        float | None,
        typer.Option(
            "--duration",
            parser=duration,
            metavar="DURATION",
            help="Stop after this long.",
            show_default="until a signal",
        ),
    ] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print each message as a JSON line.")
    ] = False,
) -> None:
    """A local stand-in for an ntfy server: prints every message it is sent.

    It speaks ntfy's publish API (JSON and plain), so a destinations file can be
    tried without a phone or an account.
    """
    from ssmd.runtime.shutdown import StopSignal, install_stop_signals
    from ssmd.sim.ntfy import NtfyServer

    async def main() -> int:
        server = NtfyServer(host, port)
        try:
            await server.start()
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port}: {exc}") from None
        typer.echo(f"ntfy stand-in listening on {server.url}", err=True)
        stop = StopSignal()
        remove = install_stop_signals(stop)
        shown = 0
        deadline = None if duration_ is None else time.monotonic() + duration_
        try:
            while not stop.event.is_set():
                if deadline is not None and time.monotonic() >= deadline:
                    break
                try:
                    await server.wait_for(shown + 1, 0.25)
                except asyncio.TimeoutError:
                    continue
                for m in server.messages[shown:]:
                    shown += 1
                    if json_out:
                        echo_json({k: v for k, v in m.items() if k != "_authorization"})
                    else:
                        title = m.get("title") or "(no title)"
                        typer.echo(f"[{m['topic']}] {title}: {m.get('message', '')}")
        finally:
            remove()
            await server.stop()
        return shown

    asyncio.run(main())
