"""The signal API: what a signal declares (docs/signals.md).

A signal declares an ``id`` (its subject token: ``signals.{id}.…``), a
``name``, the state builders it ``requires`` (named, with typed
parameters), typed ``params`` a user may set (``--param k=v``),
``evaluate(state) -> bool`` and, optionally, ``payload(state) -> dict``::

    from ssmd.signals import Param, Signal, VolumeProfile

    class BigVolume(Signal):
        id = "big-volume"
        name = "Dollar volume over 5 minutes reaches a threshold"
        params = {"threshold": Param(float, 250_000.0, "dollars")}
        requires = {"volume": VolumeProfile(window="5m")}

        def evaluate(self, state):
            return state.volume.dollar_volume >= self.threshold

It fires on the rising edge of ``evaluate`` per instrument and re-arms when
it falls back (``trigger = "record"``: on every record it holds for, for
event signals). A signal may also declare a ``rule``: clauses on builder
fields that the engine evaluates in Rust, with the same meaning as its
``evaluate`` (the built-ins do; ``evaluate`` stays the reference and is
what ``--python-evaluate`` runs).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ssmd.core import SignalState
from ssmd.errors import ConfigError
from ssmd.settings import parse_duration

__all__ = [
    "BUILDER_KINDS",
    "Builder",
    "Clause",
    "Lifecycle",
    "Param",
    "PriceProfile",
    "Signal",
    "Spread",
    "VolumeProfile",
    "duration",
    "human",
]

ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


class _Duration:
    """Marker for a duration parameter (``90``, ``15m``, ``6h``): seconds as a float."""

    __name__ = "duration"

    def __repr__(self) -> str:
        return "duration"


#: a parameter type: seconds from ``90``, ``15m``, ``6h``, ``7d``
duration: Any = _Duration()


def _seconds(value: float | int | str, what: str) -> float:
    return parse_duration(value, what)


@dataclass(frozen=True)
class Builder:
    """A state builder a signal requires; ``window`` and ``resolution`` are durations.

    ``resolution`` (default 0: exact) rounds receive times down to buckets of
    that length, bounding a window to ``window / resolution`` entries however
    busy the instrument; entries then leave up to one bucket early.
    """

    kind: ClassVar[str] = ""
    window: float | int | str = "1m"
    resolution: float | int | str = 0

    def spec(self) -> tuple[str, float, float]:
        """``(kind, window s, resolution s)`` for the engine."""
        return (
            self.kind,
            _seconds(self.window, f"{self.kind} window"),
            _seconds(self.resolution, f"{self.kind} resolution"),
        )


@dataclass(frozen=True)
class VolumeProfile(Builder):
    """Trades over ``window``: ``dollar_volume``, ``contracts``, ``trades``, ``buy_contracts``,
    ``sell_contracts``, ``buy_sell_ratio``, ``avg_trade_size``, ``last_price``, ``unpriced``."""

    kind: ClassVar[str] = "volume_profile"


@dataclass(frozen=True)
class PriceProfile(Builder):
    """The mid of quotes over ``window``: ``mid``, ``first``, ``high``, ``low``, ``change``,
    ``change_pct``, ``last`` (the venue's last price), ``quotes``."""

    kind: ClassVar[str] = "price_profile"


@dataclass(frozen=True)
class Spread(Builder):
    """The latest ``bid``, ``ask``, sizes, ``spread``, ``spread_pct``, and ``avg_spread`` and
    ``quotes`` over ``window`` (0: the latest quote only)."""

    kind: ClassVar[str] = "spread"
    window: float | int | str = 0


@dataclass(frozen=True)
class Lifecycle(Builder):
    """The last lifecycle ``event``, its ``phase`` (open, close, settle, other), ``ts``,
    ``rx``, ``changed_rx`` (when the phase last changed) and ``events``."""

    kind: ClassVar[str] = "lifecycle"
    window: float | int | str = 0


BUILDER_KINDS: dict[str, type[Builder]] = {
    b.kind: b for b in (VolumeProfile, PriceProfile, Spread, Lifecycle)
}

_PARAM_TYPES: tuple[Any, ...] = (int, float, str, bool, duration)


@dataclass(frozen=True)
class Param:
    """A typed parameter: ``Param(float, 1_000_000.0, "dollars")``; types are ``int``,
    ``float``, ``str``, ``bool`` and ``duration`` (seconds from ``15m``)."""

    type: Any
    default: Any
    help: str = ""

    def __post_init__(self) -> None:
        if self.type not in _PARAM_TYPES:
            raise ConfigError(
                f"bad parameter type {self.type!r}: int, float, str, bool or duration"
            )

    def parse(self, name: str, value: Any) -> Any:
        """``value`` (text from ``--param`` or a typed value) as this parameter's type."""
        t = self.type
        try:
            if t is duration:
                return parse_duration(value, f"parameter {name}")
            if t is bool:
                if isinstance(value, bool):
                    return value
                text = str(value).strip().lower()
                if text in ("1", "true", "yes", "on"):
                    return True
                if text in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            if t is int and isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return t(value)
        except ConfigError:
            raise
        except (TypeError, ValueError):
            raise ConfigError(
                f"bad value {value!r} for parameter {name}: {getattr(t, '__name__', t)} expected"
            ) from None


@dataclass(frozen=True)
class Clause:
    """``builder.field op value`` (``op``: ``>=``, ``>``, ``<=``, ``<``, ``==``, ``!=``, ``in``),
    on the field's absolute value with ``abs=True``; ``in`` takes a list of words."""

    builder: str
    field: str
    op: str
    value: Any
    abs: bool = False

    def engine(self) -> tuple[str, str, str, str, bool]:
        v = self.value
        text = ",".join(map(str, v)) if isinstance(v, list | tuple | set | frozenset) else str(v)
        return (self.builder, self.field, self.op, text, self.abs)


class Signal:
    """Base class of a signal. Subclass it and declare ``id``, ``name``, ``requires``
    (a mapping of names to builders, or a method of ``self`` returning one, to use
    parameters in windows), ``params``, ``evaluate`` and optionally ``payload``,
    ``trigger`` and ``rule``. Parameters become attributes (``self.threshold``)."""

    id: ClassVar[str] = ""
    name: ClassVar[str] = ""
    requires: ClassVar[Mapping[str, Builder] | Callable[..., Mapping[str, Builder]]] = {}
    params: ClassVar[Mapping[str, Param]] = {}
    #: ``edge`` (rising edge per instrument) or ``record`` (every record it holds for)
    trigger: ClassVar[str] = "edge"
    #: the file it was loaded from (set by the loader)
    path: ClassVar[str | None] = None
    #: ``builtin``, ``dir`` or ``entry point`` (set by the loader)
    origin: ClassVar[str] = "builtin"

    def __init__(self, **values: Any) -> None:
        declared = dict(type(self).params)
        unknown = sorted(set(values) - set(declared))
        if unknown:
            known = ", ".join(sorted(declared)) or "none"
            raise ConfigError(
                f"signal {self.id}: unknown parameter{'s' if len(unknown) > 1 else ''}"
                f" {', '.join(unknown)} (parameters: {known})"
            )
        self.param_values: dict[str, Any] = {}
        for name, p in declared.items():
            v = p.parse(name, values[name]) if name in values else p.default
            self.param_values[name] = v
            setattr(self, name, v)

    def builders(self) -> dict[str, Builder]:
        """The declared builders, by name."""
        req = type(self).requires
        got = req(self) if callable(req) else req
        return dict(got)

    def evaluate(self, state: SignalState) -> bool:
        """Whether the signal holds for this record's instrument."""
        raise NotImplementedError

    def payload(self, state: SignalState) -> dict[str, Any]:
        """What a fire carries: every builder field, then the parameters."""
        return {**state.payload(), **self.param_values}

    def rule(self) -> Sequence[Clause] | None:
        """Clauses the engine evaluates in Rust instead of calling :meth:`evaluate`
        (same meaning); ``None``: call :meth:`evaluate`."""
        return None

    def engine_builders(self) -> list[tuple[str, str, float, float]]:
        """``(name, kind, window s, resolution s)`` for the engine."""
        out = []
        for name, b in self.builders().items():
            kind, window, resolution = b.spec()
            out.append((name, kind, window, resolution))
        return out

    def describe(self) -> str:
        """``volume=volume_profile(window=30m)`` for listings."""
        parts = []
        for name, b in self.builders().items():
            w = _seconds(b.window, "window")
            parts.append(f"{name}={b.kind}" + (f"(window={human(w)})" if w else ""))
        return ", ".join(parts)


def human(seconds: float) -> str:
    """``1800`` → ``30m``, ``90`` → ``90s``, ``0.25`` → ``250ms``."""
    for unit, n in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= n and float(seconds / n).is_integer():
            return f"{int(seconds // n)}{unit}"
    if seconds < 1 and float(seconds * 1000).is_integer():
        return f"{int(seconds * 1000)}ms"
    return f"{seconds:g}s"
