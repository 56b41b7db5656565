"""The ``ssmd`` command line (typer). One module per command group."""

from __future__ import annotations

import sys

import typer

from ssmd.cli._app import app
from ssmd.errors import SsmdError

__all__ = ["app", "main"]


def main() -> None:
    """Entry point: run the app, turning ssmd errors into one-line messages."""
    from ssmd.cli import (  # noqa: F401  (registers commands)
        archive,
        archive_service,
        connect,
        db,
        demo,
        kraken,
        polymarket,
        secmaster,
        sim,
        streams,
        version,
    )

    try:
        app()
    except SsmdError as exc:
        typer.echo(f"ssmd: error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("ssmd: interrupted", err=True)
        sys.exit(130)
