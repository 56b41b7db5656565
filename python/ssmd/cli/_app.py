"""The root typer application that every command group registers on.

Help is rendered plainly (no rich markup), so text in brackets, defaults and
environment variables show as written; ``-h`` works as ``--help``.
"""

from __future__ import annotations

from typing import Annotated

import typer
from typer.core import TyperArgument

from ssmd.cli.options import ROOT, Config, LogFormat, LogLevel

_type_label = TyperArgument.display_type_rich


def _argument_label(self: TyperArgument, ctx: typer.Context) -> str | None:
    # an argument given a name (INSTRUMENT, STREAM...) needs no "<str>" after it;
    # one without (a choice such as the venue) keeps its list of values
    return None if self.metavar is not None else _type_label(self, ctx)


TyperArgument.display_type_rich = _argument_label  # type: ignore[method-assign,assignment]

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def group(name: str, help: str) -> typer.Typer:
    """A command group: given no subcommand, it prints its help and exits."""
    return typer.Typer(
        name=name,
        help=help,
        no_args_is_help=True,
        rich_markup_mode=None,
        context_settings=CONTEXT,
    )


app = typer.Typer(
    name="ssmd",
    help="Stupid simple market data: capture, archive and signals for Kalshi, Kraken spot, "
    "Kraken Futures and Polymarket.\n\n"
    "Start with `ssmd demo` (simulators, connectors and the archive in one process, no "
    "servers), then `ssmd connect VENUE`. Every long-running service is `ssmd PART run`.",
    no_args_is_help=True,
    add_completion=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings=CONTEXT,
)


def _version(value: bool) -> None:
    if value:
        import ssmd

        typer.echo(f"ssmd {ssmd.__version__} (core {ssmd.core_version})")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", "-V", is_eager=True, callback=_version, help="Print the version and exit."
        ),
    ] = False,
    log_level: LogLevel = None,
    log_format: LogFormat = None,
    config: Config = None,
) -> None:
    """Options here apply to every command (a command's own flags win)."""
    ROOT.update(log_level=log_level, log_format=log_format, config=config)


__all__ = ["CONTEXT", "app", "group"]
