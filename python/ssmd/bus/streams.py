"""JetStream streams (docs/bus.md): names, subjects, limits, idempotent set-up.

Venue streams are ``{ENV}_{VENUE}`` over ``{env}.{venue}.>``; the Kalshi
politics stream is a sourced copy of the Kalshi stream filtered on
``{env}.kalshi.politics.>`` (JetStream refuses overlapping subjects);
``SECMASTER_CDC`` (``cdc.>``) and ``SIGNALS`` (``signals.>``) keep their names
in every environment. Limits are the seed's; each can be overridden with
``SSMD_STREAM_<NAME>_MAX_BYTES`` (``512MiB``, ``1G``, bytes),
``SSMD_STREAM_<NAME>_MAX_AGE`` (``48h``, ``15m``, ``7d``, ``0`` for none) and
``SSMD_STREAM_<NAME>_MAX_MSGS``, ``SSMD_STREAM_<NAME>_REPLICAS``, or by :func:`stream_specs` arguments.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ssmd.errors import ConfigError
from ssmd.types import Venue

__all__ = [
    "DUPLICATE_WINDOW",
    "VENUE_LIMITS",
    "StreamSpec",
    "ensure_result",
    "env_name",
    "parse_duration",
    "parse_size",
    "stream_specs",
    "venue_stream",
    "venue_subjects",
]

#: seconds during which JetStream drops a re-sent ``Nats-Msg-Id``
DUPLICATE_WINDOW = 120.0

KiB = 1024
MiB = KiB * KiB
GiB = MiB * KiB
HOUR = 3600.0
DAY = 24 * HOUR

_ENV = re.compile(r"[a-z0-9][a-z0-9_-]*")


@dataclass(frozen=True)
class StreamSpec:
    """What ssmd wants a stream to look like."""

    name: str
    subjects: tuple[str, ...] = ()
    max_bytes: int = -1
    max_msgs: int = -1
    max_age: float = 0.0  # seconds, 0 = unlimited
    storage: str = "file"
    replicas: int = 1
    duplicate_window: float = DUPLICATE_WINDOW
    #: (stream, filter subject) this stream copies from instead of subjects
    source: tuple[str, str] | None = None
    description: str = ""
    venue: str | None = None

    def config(self) -> Any:
        """The ``nats.js.api.StreamConfig`` for this spec."""
        from nats.js.api import StorageType, StreamConfig, StreamSource

        return StreamConfig(
            name=self.name,
            description=self.description or None,
            subjects=list(self.subjects) if self.subjects else None,
            sources=(
                [StreamSource(name=self.source[0], filter_subject=self.source[1])]
                if self.source
                else None
            ),
            max_bytes=self.max_bytes,
            max_msgs=self.max_msgs,
            max_age=self.max_age,
            storage=StorageType.FILE if self.storage == "file" else StorageType.MEMORY,
            num_replicas=self.replicas,
            duplicate_window=self.duplicate_window,
        )

    def differences(self, cfg: Any) -> list[str]:
        """Fields of a server ``StreamConfig`` that differ from this spec."""
        out: list[str] = []
        subjects = tuple(cfg.subjects or ())
        if subjects != self.subjects:
            out.append(f"subjects {list(subjects)} -> {list(self.subjects)}")
        if (cfg.max_bytes or -1) != self.max_bytes:
            out.append(f"max_bytes {cfg.max_bytes} -> {self.max_bytes}")
        if (cfg.max_msgs or -1) != self.max_msgs:
            out.append(f"max_msgs {cfg.max_msgs} -> {self.max_msgs}")
        if abs(float(cfg.max_age or 0) - self.max_age) > 1e-6:
            out.append(f"max_age {cfg.max_age} -> {self.max_age}")
        if abs(float(cfg.duplicate_window or 0) - self.duplicate_window) > 1e-6:
            out.append(f"duplicate_window {cfg.duplicate_window} -> {self.duplicate_window}")
        if (cfg.num_replicas or 1) != self.replicas:
            out.append(f"replicas {cfg.num_replicas} -> {self.replicas}")
        have = [(s.name, s.filter_subject) for s in cfg.sources or ()]
        want = [self.source] if self.source else []
        if have != want:
            out.append(f"sources {have} -> {want}")
        return out


def env_name(env: str | None = None) -> str:
    """The environment (subject prefix): ``env``, else ``prod`` (the CLI passes ``SSMD_ENV``)."""
    value = env if env is not None else "prod"
    if not _ENV.fullmatch(value):
        raise ConfigError(f"bad SSMD_ENV {value!r}: use lower-case letters, digits, '-' or '_'")
    return value


def venue_stream(venue: str | Venue, env: str | None = None) -> str:
    """``PROD_KRAKEN_FUTURES`` for ``kraken-futures`` in ``prod``."""
    return f"{env_name(env)}_{Venue.parse(venue).module}".upper()


def venue_subjects(venue: str | Venue, env: str | None = None) -> str:
    """``prod.kraken.>``."""
    return f"{env_name(env)}.{Venue.parse(venue).value}.>"


_SIZE = re.compile(r"(?i)\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*")
_AGE = re.compile(r"(?i)\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*")
_AGE_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": HOUR, "d": DAY, "w": 7 * DAY, None: 1.0}


def parse_size(text: str) -> int:
    """``512MiB``, ``1G``, ``1.5GB``, ``1048576`` -> bytes (powers of 1024); ``-1`` = none."""
    if text.strip() == "-1":
        return -1
    m = _SIZE.fullmatch(text)
    if not m:
        raise ConfigError(f"bad size {text!r}: expected e.g. 512MiB, 1G or a number of bytes")
    unit = {"": 1, "k": KiB, "m": MiB, "g": GiB, "t": GiB * KiB}[m.group(2).lower()]
    return int(float(m.group(1)) * unit)


def parse_duration(text: str) -> float:
    """``48h``, ``15m``, ``7d``, ``90`` (seconds) -> seconds; ``0`` = none."""
    m = _AGE.fullmatch(text)
    if not m:
        raise ConfigError(f"bad duration {text!r}: expected e.g. 15m, 48h, 7d or seconds")
    unit = m.group(2).lower() if m.group(2) else None
    return float(m.group(1)) * _AGE_UNIT[unit]


@dataclass(frozen=True)
class VenueLimits:
    """The seed's limits of a venue's primary stream."""

    max_bytes: int
    max_age: float
    description: str


#: every venue's primary stream (docs/bus.md); the keys are every :class:`Venue`
VENUE_LIMITS = {
    Venue.KALSHI: VenueLimits(1 * GiB, 0.0, "Kalshi market data, all categories"),
    Venue.KRAKEN: VenueLimits(256 * MiB, 48 * HOUR, "Kraken spot market data"),
    Venue.KRAKEN_FUTURES: VenueLimits(256 * MiB, 48 * HOUR, "Kraken Futures market data"),
    Venue.POLYMARKET: VenueLimits(512 * MiB, 48 * HOUR, "Polymarket market data"),
}


def _venue_spec(venue: Venue, env: str) -> StreamSpec:
    limits = VENUE_LIMITS[venue]
    return StreamSpec(
        venue_stream(venue, env),
        (venue_subjects(venue, env),),
        max_bytes=limits.max_bytes,
        max_age=limits.max_age,
        venue=venue.value,
        description=limits.description,
    )


def _defaults(env: str) -> list[StreamSpec]:
    kalshi = venue_stream(Venue.KALSHI, env)
    politics = StreamSpec(
        f"{kalshi}_POLITICS",
        (),
        max_bytes=512 * MiB,
        source=(kalshi, f"{env}.kalshi.politics.>"),
        description="Kalshi politics: a filtered copy of the Kalshi stream",
    )
    specs = [_venue_spec(v, env) for v in Venue]
    specs.insert(1, politics)
    return [
        *specs,
        StreamSpec(
            "SECMASTER_CDC",
            ("cdc.>",),
            max_bytes=100 * MiB,
            max_age=15 * 60.0,
            # a CDC restart within it republishes nothing twice (docs/cdc.md)
            duplicate_window=15 * 60.0,
            description="secmaster change data capture",
        ),
        StreamSpec(
            "DEADLETTER",
            ("deadletter.>",),
            max_bytes=64 * MiB,
            max_age=7 * DAY,
            description="messages a consumer could not use, with the reason",
        ),
        StreamSpec(
            "SIGNALS",
            ("signals.>",),
            max_bytes=64 * MiB,
            max_age=7 * DAY,
            duplicate_window=10 * 60.0,
            description="signal runner output",
        ),
    ]


def stream_specs(
    env: str | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[StreamSpec]:
    """Every stream ssmd uses, with ``SSMD_STREAM_*`` values (``environ``, which the CLI
    takes from :attr:`ssmd.settings.Settings.streams`) and explicit overrides applied.

    ``overrides`` maps a stream name to ``{"max_bytes": int, "max_msgs": int, "max_age": float,
    "replicas": int, "storage": "file"|"memory"}``; they win over the
    ``SSMD_STREAM_*`` variables.
    """
    env = env_name(env)
    environ = {} if environ is None else environ
    out = []
    for spec in _defaults(env):
        changes: dict[str, Any] = {}
        key = f"SSMD_STREAM_{spec.name}_"
        if v := environ.get(key + "MAX_BYTES"):
            changes["max_bytes"] = parse_size(v)
        if v := environ.get(key + "MAX_MSGS"):
            if not v.lstrip("-").isdigit():
                raise ConfigError(f"bad {key}MAX_MSGS {v!r}: expected an integer")
            changes["max_msgs"] = int(v)
        if v := environ.get(key + "MAX_AGE"):
            changes["max_age"] = parse_duration(v)
        if v := environ.get(key + "REPLICAS"):
            if not v.isdigit() or int(v) < 1:
                raise ConfigError(f"bad {key}REPLICAS {v!r}: expected a positive integer")
            changes["replicas"] = int(v)
        if v := environ.get(key + "STORAGE"):
            if v not in ("file", "memory"):
                raise ConfigError(f"bad {key}STORAGE {v!r}: expected file or memory")
            changes["storage"] = v
        changes.update((overrides or {}).get(spec.name, {}))
        out.append(replace(spec, **changes) if changes else spec)
    return out


def spec_for_venue(venue: str | Venue, specs: Sequence[StreamSpec]) -> StreamSpec:
    """The primary stream of ``venue`` (the one the archiver reads)."""
    name = Venue.parse(venue).value
    for s in specs:
        if s.venue == name:
            return s
    raise ConfigError(f"no stream for venue {name!r} among {', '.join(s.name for s in specs)}")


def ensure_result(action: str, spec: StreamSpec, changes: Sequence[str] = ()) -> dict[str, Any]:
    """One line of :func:`ssmd.bus.nats.ensure_streams` output."""
    return {"stream": spec.name, "action": action, "changes": list(changes)}
