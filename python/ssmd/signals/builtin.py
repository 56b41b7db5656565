"""The built-in signals. Each declares a ``rule`` (evaluated in Rust) with the
same meaning as its ``evaluate`` (the reference, run by ``--python-evaluate``).

- ``volume-1m-1min``, ``volume-1m-5min``, ``volume-1m-15min``,
  ``volume-1m-30min``: an instrument's dollar volume over the window reaches
  $1,000,000 (``threshold``);
- ``price-jump``: the quote mid moved by ``threshold`` (a fraction, default
  5 %) or more, up or down, from the first mid of ``window`` (default 1 min);
- ``lifecycle``: a market opens, closes or settles (``phases``); each such
  event fires.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from ssmd.core import SignalState
from ssmd.errors import ConfigError
from ssmd.signals.api import (
    Builder,
    Clause,
    Lifecycle,
    Param,
    PriceProfile,
    Signal,
    VolumeProfile,
    duration,
)

__all__ = ["BUILTINS", "LifecycleSignal", "PriceJump", "VolumeSignal"]


class VolumeSignal(Signal):
    """Dollar volume over a window reaches a threshold."""

    params: ClassVar[Mapping[str, Param]] = {
        "threshold": Param(float, 1_000_000.0, "dollar volume to reach"),
    }
    threshold: float

    def evaluate(self, state: SignalState) -> bool:
        return bool(state.volume.dollar_volume >= self.threshold)

    def rule(self) -> Sequence[Clause]:
        return [Clause("volume", "dollar_volume", ">=", self.threshold)]


def _volume(minutes: int) -> type[VolumeSignal]:
    return type(
        f"Volume1m{minutes}min",
        (VolumeSignal,),
        {
            "id": f"volume-1m-{minutes}min",
            "name": f"Dollar volume over {minutes} min reaches $1,000,000",
            "requires": {"volume": VolumeProfile(window=f"{minutes}m")},
            "__module__": __name__,
        },
    )


class PriceJump(Signal):
    """The quote mid moves by a fraction of itself within a window."""

    id = "price-jump"
    name = "Quote mid moves by 5 % or more within 1 min"
    params: ClassVar[Mapping[str, Param]] = {
        "threshold": Param(float, 0.05, "move as a fraction of the window's first mid"),
        "window": Param(duration, 60.0, "window"),
    }
    threshold: float
    window: float

    def builders(self) -> dict[str, Builder]:
        return {"price": PriceProfile(window=self.window)}

    def evaluate(self, state: SignalState) -> bool:
        change = state.price.change_pct
        return change is not None and abs(change) >= self.threshold

    def rule(self) -> Sequence[Clause]:
        return [Clause("price", "change_pct", ">=", self.threshold, abs=True)]


_PHASES = ("open", "close", "settle", "other")


class LifecycleSignal(Signal):
    """A market opens, closes or settles: every such event fires."""

    id = "lifecycle"
    name = "A market opens, closes or settles"
    params: ClassVar[Mapping[str, Param]] = {
        "phases": Param(str, "open,close,settle", f"comma-separated: {', '.join(_PHASES)}"),
    }
    requires: ClassVar[Mapping[str, Builder]] = {"lifecycle": Lifecycle()}
    trigger = "record"
    phases: str

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        self.phase_set = {p.strip() for p in self.phases.split(",") if p.strip()}
        bad = sorted(self.phase_set - set(_PHASES))
        if bad or not self.phase_set:
            raise ConfigError(
                f"signal lifecycle: bad phases {self.phases!r} (use {', '.join(_PHASES)})"
            )

    def evaluate(self, state: SignalState) -> bool:
        return state.record == "lifecycle" and state.lifecycle.phase in self.phase_set

    def rule(self) -> Sequence[Clause]:
        return [Clause("lifecycle", "phase", "in", sorted(self.phase_set))]


#: the built-in signals by id
_ALL: tuple[type[Signal], ...] = (*(_volume(m) for m in (1, 5, 15, 30)), PriceJump, LifecycleSignal)
BUILTINS: dict[str, type[Signal]] = {s.id: s for s in _ALL}
