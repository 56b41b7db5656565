"""``ssmd version``: package and core versions."""

from __future__ import annotations

import typer

from ssmd.cli._app import app


@app.command()
def version() -> None:
    """Print the ssmd package and Rust core versions."""
    import ssmd

    typer.echo(f"ssmd {ssmd.__version__} (core {ssmd.core_version})")
