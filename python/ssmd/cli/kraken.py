"""``ssmd kraken``: Kraken spot pairs and Futures perpetuals into the secmaster."""

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

kraken_app = group("kraken", "Kraken spot and Futures: pairs in the secmaster.")
app.add_typer(kraken_app, name="kraken")


@kraken_app.command(
    "sync",
    epilog="Examples:\n\n\b\n"
    "  ssmd kraken sync --database-url postgresql://ssmd@127.0.0.1/ssmd\n"
    "  ssmd kraken sync --rest-url http://127.0.0.1:PORT/0 \\\n"
    "      --futures-rest-url http://127.0.0.1:PORT2/derivatives/api/v3 --json",
)
def sync(
    url: Annotated[
        str | None,
        typer.Option(
            "--rest-url",
            "--url",
            envvar="SSMD_KRAKEN_REST_URL",
            show_envvar=True,
            metavar="URL",
            help="Kraken spot API root including /0 (--url: the same).",
            show_default=Venue.KRAKEN.rest_root,
        ),
    ] = None,
    futures_url: Annotated[
        str | None,
        typer.Option(
            "--futures-rest-url",
            "--futures-url",
            envvar="SSMD_KRAKEN_FUTURES_REST_URL",
            show_envvar=True,
            metavar="URL",
            help="Kraken Futures API root including /derivatives/api/v3 (--futures-url: the same).",
            show_default=Venue.KRAKEN_FUTURES.rest_root,
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
    """Sync spot AssetPairs and Futures perpetuals into `pairs`."""
    from ssmd.secmaster.sync import Job

    setup_logging(log_level, log_format)
    s = settings(
        database_url,
        urls={"kraken": url, "kraken-futures": futures_url},
        rates={"kraken": rate, "kraken-futures": rate},
        attempts=attempts,
    )
    sync_command(s, [Job("kraken")], as_json, progress)
