"""The root typer application that every command group registers on."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="ssmd",
    help="Stupid simple market data: capture, archive and signals for prediction-market and crypto venues.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
