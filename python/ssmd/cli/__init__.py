"""The ``ssmd`` command line (typer). One module per command group."""

from __future__ import annotations

import sys

import typer

from ssmd.cli._app import app
from ssmd.errors import ConfigError, SsmdError
from ssmd.settings import quiet_blas

__all__ = ["app", "commands", "load_commands", "main"]


def load_commands() -> typer.Typer:
    """Register every command group on :data:`app` and return it."""
    from ssmd.cli import (  # noqa: F401  (registers commands)
        archive,
        archive_book,
        archive_export,
        archive_service,
        backtest,
        cache,
        cdc,
        connect,
        db,
        demo,
        dq,
        kraken,
        lifecycle,
        notify,
        polymarket,
        replay,
        secmaster,
        signal,
        sim,
        streams,
        version,
    )

    return app


def commands() -> list[tuple[str, ...]]:
    """Every command path, the root first: ``()``, ``("archive",)``, ``("archive", "cat")``, …"""
    import typer.main

    out: list[tuple[str, ...]] = []

    def walk(cmd: object, path: tuple[str, ...]) -> None:
        out.append(path)
        for name, sub in sorted(getattr(cmd, "commands", {}).items()):
            if not getattr(sub, "hidden", False):
                walk(sub, (*path, name))

    walk(typer.main.get_command(load_commands()), ())
    return out


def main() -> None:
    """Entry point: run the app, turning errors into one-line messages.

    Exit status 2: a usage or configuration error (bad flag, setting or file);
    1: the command could not do its job (a venue or server unreachable, the
    disk); 130: interrupted. A group given no command prints its help.
    """
    quiet_blas()
    load_commands()
    try:
        result = app(standalone_mode=False, prog_name="ssmd")
    except ConfigError as exc:  # the user's to fix: a flag, a setting, a file
        _fail(str(exc), 2)
    except SsmdError as exc:  # it did not work: a venue, a server, the disk
        _fail(str(exc), 1)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except typer.Abort:
        _fail("interrupted", 130)
    except typer.TyperException as exc:  # click's usage errors, as one line
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
            typer.echo(ctx.get_help())  # a group with no command: its help, nothing run
            sys.exit(getattr(exc, "exit_code", 2))
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        hint = f" (see: {ctx.command_path} -h)" if ctx is not None else ""
        _fail(f"{message}{hint}", getattr(exc, "exit_code", 2))
    if isinstance(result, int) and result:
        sys.exit(result)


def _fail(message: str, code: int) -> None:
    typer.echo(f"ssmd: error: {message}", err=True)
    sys.exit(code)
