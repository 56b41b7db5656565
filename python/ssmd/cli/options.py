"""Options every command spells the same way, and what commands share.

The same thing has the same flag everywhere: ``--dir`` (``SSMD_ARCHIVE_DIR``)
for the archive root, ``--nats`` (``NATS_URL``), ``--database-url``
(``DATABASE_URL``), ``--redis-url`` (``REDIS_URL``), ``--ws-url`` and
``--rest-url``, a repeatable ``--venue``, durations as ``90``, ``15m``, ``6h``,
``7d``, ``--log-level`` and ``--log-format``, ``--json``. Each option names
its environment variable (one table: :data:`ssmd.settings.ENV`) so that
``--help`` shows it, and :func:`settings` folds flags, environment and
``ssmd.toml`` into one :class:`~ssmd.settings.Settings`.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer

from ssmd.errors import ConfigError
from ssmd.settings import (
    DEFAULT_ARCHIVE_DIR,
    ENV,
    LOG_FORMATS,
    LOG_LEVELS,
    Settings,
    parse_duration,
)
from ssmd.types import Venue

__all__ = [
    "Config",
    "DatabaseUrl",
    "Dir",
    "JsonOut",
    "LogFormat",
    "LogLevel",
    "MetricsPort",
    "Nats",
    "RedisUrl",
    "Venues",
    "check_port",
    "check_url",
    "duration",
    "echo_json",
    "need_nats",
    "require",
    "service_settings",
    "settings",
    "setup_logging",
    "split",
    "table",
]

VENUES = ", ".join(v.value for v in Venue)


def duration(value: str) -> float:
    """A duration flag: ``90``, ``1.5``, ``250ms``, ``90s``, ``15m``, ``6h``, ``7d`` (seconds)."""
    return parse_duration(value, "duration")


def split(value: str | None) -> tuple[str, ...]:
    """``A,B , C`` -> ``("A", "B", "C")``."""
    if not value:
        return ()
    return tuple(s.strip() for s in value.split(",") if s.strip())


# -- shared option types ------------------------------------------------------------

Dir = Annotated[
    Path | None,
    typer.Option(
        "--dir",
        envvar=ENV["archive_dir"],
        show_envvar=True,
        metavar="DIR",
        show_default=DEFAULT_ARCHIVE_DIR,
        help="Archive root.",
    ),
]
Nats = Annotated[
    str | None,
    typer.Option(
        "--nats",
        envvar=ENV["nats_url"],
        show_envvar=True,
        metavar="URL",
        help="NATS server with JetStream (nats://host:port).",
    ),
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar=ENV["database_url"],
        show_envvar=True,
        metavar="URL",
        help="Secmaster PostgreSQL database (postgresql://user:pass@host:port/db).",
    ),
]
RedisUrl = Annotated[
    str | None,
    typer.Option(
        "--redis-url",
        envvar=ENV["redis_url"],
        show_envvar=True,
        metavar="URL",
        help="Redis server (redis://host:port/db).",
    ),
]
Venues = Annotated[
    list[Venue] | None,
    typer.Option(
        "--venue",
        metavar="VENUE",
        help=f"Only this venue; repeat for more ({VENUES}). Default: all.",
    ),
]
LogLevel = Annotated[
    str | None,
    typer.Option(
        "--log-level",
        envvar=ENV["log_level"],
        show_envvar=True,
        metavar="|".join(LOG_LEVELS),
        show_default="info",
        help="Log level.",
        autocompletion=lambda incomplete: [x for x in LOG_LEVELS if x.startswith(incomplete)],
    ),
]
LogFormat = Annotated[
    str | None,
    typer.Option(
        "--log-format",
        envvar=ENV["log_format"],
        show_envvar=True,
        metavar="|".join(LOG_FORMATS),
        show_default="text",
        help="Log lines as text, or as JSON objects (for containers).",
        autocompletion=lambda incomplete: [x for x in LOG_FORMATS if x.startswith(incomplete)],
    ),
]
JsonOut = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
#: ``--duration`` of a service: stop cleanly after this long
StopAfter = Annotated[
    float | None,
    typer.Option(
        "--duration",
        parser=duration,
        metavar="DURATION",
        help="Stop cleanly after this long.",
        show_default="until a signal",
    ),
]
MetricsPort = Annotated[
    int | None,
    typer.Option(
        "--metrics-port", min=0, max=65535, metavar="PORT", help="Serve Prometheus /metrics here."
    ),
]
Config = Annotated[
    Path | None,
    typer.Option(
        "--config",
        envvar=ENV["config"],
        show_envvar=True,
        metavar="FILE",
        show_default="./ssmd.toml if present",
        help="Settings file (TOML).",
    ),
]


#: what the root command's options said (``ssmd --log-level debug …``)
ROOT: dict[str, Any] = {}


def settings(**flags: Any) -> Settings:
    """The settings of this command: defaults < ``ssmd.toml`` < environment < flags
    (the command's own over the root command's)."""
    merged = {k: v for k, v in ROOT.items() if v is not None}
    merged.update({k: v for k, v in flags.items() if v is not None})
    config = merged.pop("config", None)
    return Settings.load(merged, config=config)


def service_settings(**flags: Any) -> Settings:
    """:func:`settings`, then logging set up from them (long-running commands)."""
    s = settings(**flags)
    setup_logging(s.log_level, s.log_format)
    return s


# -- logging --------------------------------------------------------------------------


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to the current ``sys.stderr`` (progress bars redirect it while they draw)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def setup_logging(level: str = "info", fmt: str = "text") -> None:
    """Configure the root handler (only entry points do this)."""
    if level not in LOG_LEVELS:
        raise ConfigError(f"bad --log-level {level!r} (use {', '.join(LOG_LEVELS)})")
    if fmt not in LOG_FORMATS:
        raise ConfigError(f"bad --log-format {fmt!r} (use text or json)")
    handler = _StderrHandler()
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper()))
    # at debug these would log upgrade and request headers (Kalshi's signed ones)
    for noisy in ("httpx", "httpcore", "picows", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


# -- checks -----------------------------------------------------------------------------


def check_port(port: int, what: str) -> int:
    if not 0 <= port <= 65535:
        raise ConfigError(f"bad {what} {port}: a port is 0-65535")
    return port


def check_url(url: str, what: str, schemes: Sequence[str]) -> str:
    """``url`` with a scheme of ``schemes`` and a valid port, or a one-line ConfigError."""
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for a bad or out-of-range port
    except ValueError as exc:
        raise ConfigError(f"bad {what} {_redact(url)}: {exc}") from None
    if parts.scheme not in schemes:
        raise ConfigError(
            f"bad {what} {_redact(url)}: the scheme must be {' or '.join(s + '://' for s in schemes)}"
        )
    if not parts.hostname and parts.scheme not in ("memory",):
        raise ConfigError(f"bad {what} {_redact(url)}: no host")
    if port is not None:
        check_port(port, f"{what} port")
    return url


def _redact(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(unparseable URL)"
    if parts.password is None:
        return repr(url)
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return repr(parts._replace(netloc=netloc).geturl())


#: extra -> what it installs, for the one-line error when a command needs it
EXTRAS = {
    "bus": "nats-py",
    "secmaster": "asyncpg",
    "cache": "redis",
    "data": "pyarrow, polars",
    "plot": "matplotlib",
}


def require(module: str, extra: str, command: str) -> Any:
    """Import ``module`` or stop with a one-line error naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(
            f"{command} needs the [{extra}] extra ({EXTRAS.get(extra, module)}): "
            f"pip install 'ssmd[{extra}]' (from a checkout: pip install '.[{extra}]')"
        ) from None


def table(rows: Sequence[Sequence[Any]], left: int = 1) -> None:
    """Print ``rows`` (the first is the header) as aligned columns: the first ``left``
    columns left-aligned, the rest right-aligned; numbers as ``1,234``, ``None`` as ``-``."""

    def cell(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, bool):
            return "yes" if v else "no"
        if isinstance(v, int):
            return f"{v:,}"
        if isinstance(v, float):
            return f"{v:,.1f}"
        return str(v)

    text = [[cell(v) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in text) for i in range(len(text[0]))]
    for r in text:
        typer.echo(
            "  ".join(
                c.ljust(w) if i < left else c.rjust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            ).rstrip()
        )


def need_nats(url: str | None, command: str) -> str:
    """The NATS URL a command needs, or a one-line error saying how to give it."""
    if not url:
        raise ConfigError(f"{command} reads NATS JetStream: give --nats URL or set NATS_URL")
    return check_url(url, "--nats", ("nats", "tls"))


def serve_metrics(port: int | None) -> None:
    """Serve Prometheus ``/metrics`` on ``port`` (``--metrics-port``), if given."""
    if port is None:
        return
    from ssmd.runtime.metrics import serve

    try:
        serve(port)
    except OSError as exc:
        raise ConfigError(f"cannot serve metrics on port {port}: {exc}") from exc


def echo_json(obj: Any) -> None:
    """One JSON document on stdout."""
    typer.echo(json.dumps(obj, ensure_ascii=False, default=str))
