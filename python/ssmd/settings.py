"""One frozen settings object: defaults, then ``ssmd.toml``, then the environment, then flags.

The CLI builds it once per command (:meth:`Settings.load`) and passes what
each part needs down; library code never reads ``os.environ`` itself. Every
setting has one environment variable (:data:`ENV`), which the CLI's options
name too, so ``--help`` shows it.

``ssmd.toml`` (the file named by ``--config`` or ``$SSMD_CONFIG``, else
``./ssmd.toml`` when it exists) holds the same settings by field name::

    env = "prod"
    archive_dir = "/srv/ssmd/data"
    nats_url = "nats://127.0.0.1:4222"
    log_format = "json"

    [venues.kraken]
    rest_url = "https://api.kraken.com/0"
    rate = 1.0

Unknown keys are an error. Secrets (``KALSHI_API_KEY``, ``SSMD_DATA_API_KEY``)
come only from the environment (or a file it names: ``KALSHI_PRIVATE_KEY_PATH``)
and are never shown in a ``repr``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ssmd.errors import ConfigError
from ssmd.types import Venue

__all__ = [
    "DEFAULT_ARCHIVE_DIR",
    "DEFAULT_CDC_TABLES",
    "DEFAULT_ENV",
    "ENV",
    "LOG_FORMATS",
    "LOG_LEVELS",
    "SECRETS",
    "Settings",
    "VenueSettings",
    "environment",
    "parse_duration",
    "quiet_blas",
]

DEFAULT_ENV = "prod"
DEFAULT_ARCHIVE_DIR = "./data"
DEFAULT_CDC_TABLES = (
    "events",
    "markets",
    "series_fees",
    "pairs",
    "polymarket_conditions",
    "polymarket_tokens",
    "series",
)
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")

#: setting -> its environment variable (the one place these names are spelled)
ENV: Mapping[str, str] = {
    "config": "SSMD_CONFIG",
    "env": "SSMD_ENV",
    "archive_dir": "SSMD_ARCHIVE_DIR",
    "nats_url": "NATS_URL",
    "database_url": "DATABASE_URL",
    "redis_url": "REDIS_URL",
    "kalshi_api_key": "KALSHI_API_KEY",
    "kalshi_private_key_path": "KALSHI_PRIVATE_KEY_PATH",
    "api_url": "SSMD_API_URL",
    "data_api_key": "SSMD_DATA_API_KEY",
    "cdc_tables": "CDC_TABLES",
    "signals_dir": "SSMD_SIGNALS_DIR",
    "runs_dir": "SSMD_RUNS_DIR",
    "notify_config": "SSMD_NOTIFY_CONFIG",
    "log_level": "SSMD_LOG_LEVEL",
    "log_format": "SSMD_LOG_FORMAT",
}
#: settings that only the environment may hold
SECRETS = frozenset({"kalshi_api_key", "data_api_key"})
#: per-venue environment variables; ``{V}`` is the venue's module id in upper case
VENUE_ENV = {
    "ws_url": "SSMD_{V}_WS_URL",
    "rest_url": "SSMD_{V}_REST_URL",
    "rate": "SSMD_{V}_RATE",
    "max_frame_bytes": "SSMD_{V}_MAX_FRAME_BYTES",
}
#: Polymarket's REST root kept its earlier name
VENUE_ENV_ALIASES = {("polymarket", "rest_url"): "SSMD_POLYMARKET_GAMMA_URL"}
#: stream limit overrides: ``SSMD_STREAM_<NAME>_MAX_BYTES`` and friends
STREAM_ENV_PREFIX = "SSMD_STREAM_"


def venue_env(venue: Venue | str, name: str) -> str:
    """The environment variable of one venue setting (``SSMD_KRAKEN_REST_URL``)."""
    v = Venue.parse(venue) if isinstance(venue, str) else venue
    return VENUE_ENV[name].format(V=v.module.upper())


_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h|d)?\s*", re.IGNORECASE)
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def environment() -> Mapping[str, str]:
    """The process environment, for secrets a file names by variable only
    (``token_env`` in ``ssmd notify``'s destinations)."""
    return os.environ


def quiet_blas() -> None:
    """One OpenBLAS thread unless the user chose otherwise (the command line calls it).

    pyarrow imports numpy, whose OpenBLAS starts a thread per core that spins
    for a while waiting for work ssmd never gives it: about 0.1 CPU-second of
    every command that touches Parquet or Arrow (the export of a small day took
    0.49 s of CPU with them, 0.37 without). The setting is read when numpy is
    first imported, so it is made before any command loads.
    """
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def parse_duration(value: str | float | int, what: str = "duration") -> float:
    """Seconds from ``90``, ``1.5``, ``250ms``, ``90s``, ``15m``, ``6h`` or ``7d``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        m = _DURATION.fullmatch(str(value))
        if m is None:
            raise ConfigError(
                f"bad {what} {value!r}: a number of seconds or a number with ms, s, m, h or d"
                " (90, 15m, 6h, 7d)"
            )
        seconds = float(m.group(1)) * _UNIT[(m.group(2) or "s").lower()]
    if not seconds >= 0 or seconds == float("inf"):
        raise ConfigError(f"bad {what} {value!r}: must be a finite number >= 0")
    return seconds


@dataclass(frozen=True, kw_only=True)
class VenueSettings:
    """Where one venue is and how hard to hit its REST API (``None``: the venue's default)."""

    ws_url: str | None = None
    rest_url: str | None = None
    #: REST requests per second (0: no limit)
    rate: float | None = None
    #: longest WebSocket frame parsed; a longer one is archived as malformed (docs/connect.md)
    max_frame_bytes: int | None = None


def _fields(cls: type) -> dict[str, dataclasses.Field[Any]]:
    return {f.name: f for f in dataclasses.fields(cls)}


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Every setting of every ssmd command (see the module docstring for the order)."""

    #: subject prefix and stream-name prefix (``prod.kraken.…``, ``PROD_KRAKEN``)
    env: str = DEFAULT_ENV
    archive_dir: Path = Path(DEFAULT_ARCHIVE_DIR)
    #: NATS server; unset: capture writes the archive itself (the embedded default)
    nats_url: str | None = None
    database_url: str | None = field(default=None, repr=False)
    redis_url: str | None = field(default=None, repr=False)
    kalshi_api_key: str | None = field(default=None, repr=False)
    kalshi_private_key_path: Path | None = None
    api_url: str | None = None
    data_api_key: str | None = field(default=None, repr=False)
    cdc_tables: tuple[str, ...] = DEFAULT_CDC_TABLES
    signals_dir: Path | None = None
    runs_dir: Path = Path("./runs")
    #: ``ssmd notify``'s destinations file (TOML or YAML)
    notify_config: Path | None = None
    log_level: str = "info"
    log_format: str = "text"
    venues: Mapping[str, VenueSettings] = field(default_factory=dict)
    #: raw stream limit overrides (``SSMD_STREAM_PROD_KRAKEN_MAX_BYTES`` -> value)
    streams: Mapping[str, str] = field(default_factory=dict)
    #: the ``ssmd.toml`` read, if any
    config: Path | None = None

    def __post_init__(self) -> None:
        if self.log_level not in LOG_LEVELS:
            raise ConfigError(f"bad log level {self.log_level!r} (use {', '.join(LOG_LEVELS)})")
        if self.log_format not in LOG_FORMATS:
            raise ConfigError(f"bad log format {self.log_format!r} (use text or json)")
        if not re.fullmatch(r"[A-Za-z0-9_-]+", self.env):
            raise ConfigError(f"bad environment name {self.env!r}: letters, digits, _ and - only")

    def venue(self, venue: Venue | str) -> VenueSettings:
        v = Venue.parse(venue) if isinstance(venue, str) else venue
        return self.venues.get(v.value) or VenueSettings()

    # -- loading ---------------------------------------------------------

    @classmethod
    def load(
        cls,
        overrides: Mapping[str, Any] | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        config: str | Path | None = None,
    ) -> Settings:
        """Defaults, then ``ssmd.toml``, then ``environ`` (default: the process
        environment), then ``overrides`` (CLI flags; ``None`` values are ignored)."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        path = config or environ.get(ENV["config"]) or None
        if path is None and Path("ssmd.toml").is_file():
            path = "ssmd.toml"
        venues: dict[str, dict[str, Any]] = {}
        if path is not None:
            values, venues = _read_toml(Path(path))
            values["config"] = Path(path)
        for name, var in ENV.items():
            if name != "config" and environ.get(var):
                values[name] = environ[var]
        for v in Venue:
            for name in VENUE_ENV:
                var = VENUE_ENV_ALIASES.get((v.value, name)) or venue_env(v, name)
                raw = environ.get(venue_env(v, name)) or environ.get(var)
                if raw:
                    venues.setdefault(v.value, {})[name] = raw
        streams = {k: val for k, val in environ.items() if k.startswith(STREAM_ENV_PREFIX)}
        for name, value in (overrides or {}).items():
            if value is None:
                continue
            if name not in _fields(cls):
                raise ConfigError(f"unknown setting {name!r}")
            values[name] = value
        values["venues"] = {v: _venue(v, raw) for v, raw in venues.items()}
        values["streams"] = streams
        return cls(**_coerce(values))


def _venue(venue: str, raw: Mapping[str, Any]) -> VenueSettings:
    Venue.parse(venue)
    unknown = sorted(set(raw) - set(_fields(VenueSettings)))
    if unknown:
        raise ConfigError(
            f"unknown setting(s) for venue {venue}: {', '.join(unknown)} "
            f"(known: {', '.join(_fields(VenueSettings))})"
        )
    rate = raw.get("rate")
    if rate is not None:
        try:
            rate = float(rate)
        except (TypeError, ValueError):
            raise ConfigError(f"{venue}: rate must be a number, got {rate!r}") from None
        if not rate >= 0:
            raise ConfigError(f"{venue}: rate must be >= 0, got {rate}")
    frame = raw.get("max_frame_bytes")
    if frame is not None:
        try:
            frame = int(frame)
        except (TypeError, ValueError):
            raise ConfigError(
                f"{venue}: max_frame_bytes must be a whole number, got {frame!r}"
            ) from None
        if not 1024 <= frame <= 1 << 30:
            raise ConfigError(f"{venue}: max_frame_bytes must be 1024 to 2**30, got {frame}")
    return VenueSettings(
        ws_url=_str(raw.get("ws_url")),
        rest_url=_str(raw.get("rest_url")),
        rate=rate,
        max_frame_bytes=frame,
    )


def _str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _coerce(values: dict[str, Any]) -> dict[str, Any]:
    out = dict(values)
    for name in (
        "archive_dir",
        "runs_dir",
        "signals_dir",
        "notify_config",
        "kalshi_private_key_path",
        "config",
    ):
        if out.get(name) is not None:
            out[name] = Path(out[name]).expanduser()
    for name in ("log_level", "log_format"):
        if name in out:
            out[name] = str(out[name]).lower()
    tables = out.get("cdc_tables")
    if isinstance(tables, str):
        out["cdc_tables"] = tuple(t.strip() for t in tables.split(",") if t.strip())
    elif isinstance(tables, list | tuple):
        out["cdc_tables"] = tuple(str(t) for t in tables)
    for name in ("nats_url", "database_url", "redis_url", "api_url", "kalshi_api_key"):
        if name in out:
            out[name] = _str(out[name])
    return out


def _read_toml(path: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    venues_raw = data.pop("venues", {})
    known = set(_fields(Settings)) - {"venues", "streams", "config"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(
            f"{path}: unknown setting(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})"
        )
    secret = sorted(set(data) & SECRETS)
    if secret:
        names = ", ".join(ENV[s] for s in secret)
        raise ConfigError(f"{path}: secrets come from the environment only ({names})")
    if not isinstance(venues_raw, dict) or not all(
        isinstance(v, dict) for v in venues_raw.values()
    ):
        raise ConfigError(f"{path}: [venues.<venue>] tables expected")
    venues = {Venue.parse(k).value: dict(v) for k, v in venues_raw.items()}
    return data, venues
