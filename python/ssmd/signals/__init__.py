"""Signals: the signal API, the engine shared by live runs and backtests.

See docs/signals.md (the API, the builders, the live runner) and
docs/backtest.md (replaying the archive).
"""

from __future__ import annotations

from ssmd.core import BuilderView, SignalState
from ssmd.signals.api import (
    Builder,
    Clause,
    Lifecycle,
    Param,
    PriceProfile,
    Signal,
    Spread,
    VolumeProfile,
    duration,
)
from ssmd.signals.builtin import BUILTINS
from ssmd.signals.discover import SignalLoadError, SignalSource, discover, find_signal, load_file
from ssmd.signals.engine import Fire, SignalRun

__all__ = [
    "BUILTINS",
    "Builder",
    "BuilderView",
    "Clause",
    "Fire",
    "Lifecycle",
    "Param",
    "PriceProfile",
    "Signal",
    "SignalLoadError",
    "SignalRun",
    "SignalSource",
    "SignalState",
    "Spread",
    "VolumeProfile",
    "discover",
    "duration",
    "find_signal",
    "load_file",
]
