"""``ssmd polymarket``: Polymarket conditions and tokens into the secmaster."""

from __future__ import annotations

from typing import Annotated

import typer

from ssmd.cli._app import app
from ssmd.cli.secmaster import (
    AttemptsOpt,
    DatabaseOpt,
    JsonOpt,
    ProgressOpt,
    RateOpt,
    VerboseOpt,
    settings,
    setup_logging,
    sync_command,
)

polymarket_app = typer.Typer(name="polymarket", help="Polymarket.", no_args_is_help=True)
app.add_typer(polymarket_app, name="polymarket")


@polymarket_app.command("sync")
def sync(
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            envvar="SSMD_POLYMARKET_GAMMA_URL",
            show_envvar=True,
            help="Gamma API root [default: https://gamma-api.polymarket.com].",
            show_default=False,
        ),
    ] = None,
    rate: RateOpt = None,
    attempts: AttemptsOpt = None,
    database_url: DatabaseOpt = None,
    as_json: JsonOpt = False,
    progress: ProgressOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Sync Gamma markets (keyset pages) into `polymarket_conditions` and `polymarket_tokens`."""
    from ssmd.secmaster.sync import Job

    setup_logging(verbose)
    s = settings(
        database_url, urls={"polymarket": url}, rates={"polymarket": rate}, attempts=attempts
    )
    sync_command(s, [Job("polymarket")], as_json, progress)
