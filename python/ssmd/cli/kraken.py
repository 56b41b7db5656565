"""``ssmd kraken``: Kraken spot pairs and Futures perpetuals into the secmaster."""

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

kraken_app = typer.Typer(name="kraken", help="Kraken spot and Futures.", no_args_is_help=True)
app.add_typer(kraken_app, name="kraken")


@kraken_app.command("sync")
def sync(
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            envvar="SSMD_KRAKEN_REST_URL",
            show_envvar=True,
            help="Kraken spot API root including /0 [default: https://api.kraken.com/0].",
            show_default=False,
        ),
    ] = None,
    futures_url: Annotated[
        str | None,
        typer.Option(
            "--futures-url",
            envvar="SSMD_KRAKEN_FUTURES_REST_URL",
            show_envvar=True,
            help="Kraken Futures API root including /derivatives/api/v3"
            " [default: https://futures.kraken.com/derivatives/api/v3].",
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
    """Sync spot AssetPairs and Futures perpetuals into `pairs`."""
    from ssmd.secmaster.sync import Job

    setup_logging(verbose)
    s = settings(
        database_url,
        urls={"kraken": url, "kraken-futures": futures_url},
        rates={"kraken": rate, "kraken-futures": rate},
        attempts=attempts,
    )
    sync_command(s, [Job("kraken")], as_json, progress)
