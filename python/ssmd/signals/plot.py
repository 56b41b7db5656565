"""``ssmd backtest run --plot``: price and dollar volume of chosen instruments, with fires.

A :class:`Tracer` sees the same chunks as the backtest and keeps, for each
chosen instrument, one point per record: the receive time, the price (the
last trade's, else the quote mid) and the dollar volume over the signal's
volume window (1 minute when it has none). At most 200 000 points are kept
per instrument (every other one is dropped when that is reached, so memory
stays bounded). :meth:`Tracer.write` draws ``plot-{instrument token}.png``
with matplotlib (the ``[plot]`` extra).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from ssmd.core import SignalState, subject_token
from ssmd.signals.api import Builder, PriceProfile, Signal, VolumeProfile
from ssmd.signals.engine import Fire, SignalRun

__all__ = ["MAX_POINTS", "Tracer"]

MAX_POINTS = 200_000


class Tracer:
    """Collects the plotted series of ``instruments`` while a backtest runs."""

    def __init__(self, signal: Signal, instruments: Sequence[str]) -> None:
        window: Any = "1m"
        for b in signal.builders().values():
            if isinstance(b, VolumeProfile):
                window = b.window
                break
        self.window = window
        self.points: dict[tuple[str, str], list[tuple[int, float | None, float]]] = {}
        self.instruments = list(instruments)
        points = self.points

        class _Trace(Signal):
            id = "trace"
            name = "plot trace"
            requires: ClassVar[Mapping[str, Builder]] = {
                "volume": VolumeProfile(window=window),
                "price": PriceProfile(window="1m"),
            }

            def evaluate(self, state: SignalState) -> bool:
                vol = state.volume
                price = vol.last_price
                if price is None:
                    price = state.price.mid
                key = (state.venue, state.instrument)
                pts = points.setdefault(key, [])
                pts.append((state.rx, price, vol.dollar_volume))
                if len(pts) >= MAX_POINTS:
                    del pts[::2]
                return False

        self.run = SignalRun(_Trace(), instruments=self.instruments, python=True)

    def feed(self, chunk: bytes) -> None:
        self.run.process(chunk, fire=False)

    def figure(self, venue: str, instrument: str, fires: Sequence[Fire]) -> Any:
        """The matplotlib figure of one traced instrument: price above, dollar volume
        below, a red vertical line at each of its fires (receive time) on both."""
        plt = _pyplot()
        pts = self.points.get((venue, instrument), [])
        times = [dt.datetime.fromtimestamp(p[0] / 1e9, dt.timezone.utc) for p in pts]
        fig, (ax1, ax2) = plt.subplots(2, 1, sharex=True, figsize=(11, 6))
        ax1.plot(times, [p[1] for p in pts], lw=0.8, color="tab:blue")
        ax1.set_ylabel("price")
        ax1.set_title(f"{venue} {instrument}")
        ax2.plot(times, [p[2] for p in pts], lw=0.8, color="tab:green")
        ax2.set_ylabel(f"dollar volume ({self.window})")
        for f in fires:
            if f.venue == venue and f.instrument == instrument:
                t = dt.datetime.fromtimestamp(f.rx / 1e9, dt.timezone.utc)
                for ax in (ax1, ax2):
                    ax.axvline(t, color="tab:red", lw=0.8, alpha=0.7)
        fig.autofmt_xdate()
        fig.tight_layout()
        return fig

    def write(self, out: Path, fires: Sequence[Fire]) -> list[Path]:
        """One PNG per instrument seen; the files written."""
        plt = _pyplot()
        written = []
        for venue, inst in sorted(self.points):
            fig = self.figure(venue, inst, fires)
            path = out / f"plot-{subject_token(inst)}.png"
            fig.savefig(path, dpi=100)
            plt.close(fig)
            written.append(path)
        return written


def _pyplot() -> Any:
    """matplotlib's pyplot, drawing to files (no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
