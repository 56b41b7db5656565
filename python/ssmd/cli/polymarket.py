"""``ssmd polymarket``: Polymarket conditions and tokens into the secmaster."""

from __future__ import annotations

from typing import Annotated

import typer

from ssmd.cli._app import app, group
from ssmd.cli.options import LogFormat, LogLevel
from ssmd.cli.secmaster import (
    AttemptsOpt,
    DatabaseOpt,
    JsonOpt,
    ProgressOpt,
    RateOpt,
    settings,
    setup_logging,
    sync_command,
)
from ssmd.types import Venue

polymarket_app = group("polymarket", "Polymarket: conditions and tokens in the secmaster.")
app.add_typer(polymarket_app, name="polymarket")


@polymarket_app.command(
    "sync",
    epilog="Examples:\n\n\b\n"
    "  ssmd polymarket sync --database-url postgresql://ssmd@127.0.0.1/ssmd\n"
    "  ssmd polymarket sync --rest-url http://127.0.0.1:PORT --rate 0 --json",
)
def sync(
    url: Annotated[
        str | None,
        typer.Option(
            "--rest-url",
            "--url",
            envvar="SSMD_POLYMARKET_GAMMA_URL",
            show_envvar=True,
            metavar="URL",
            help="Gamma API root (--url: the same).",
            show_default=Venue.POLYMARKET.rest_root,
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
    """Sync Gamma markets (keyset pages) into `polymarket_conditions` and `polymarket_tokens`."""
    from ssmd.secmaster.sync import Job

    setup_logging(log_level, log_format)
    s = settings(
        database_url, urls={"polymarket": url}, rates={"polymarket": rate}, attempts=attempts
    )
    sync_command(s, [Job("polymarket")], as_json, progress)
