"""Local venue simulators that speak each venue's real protocol.

``ssmd sim <venue>`` and :func:`start_sim` serve a WebSocket and the REST
discovery endpoints of Kalshi, Kraken spot v2, Kraken Futures v1 or the
Polymarket market channel on loopback, with generated data shaped like
the venue fixtures in ``tests/fixtures`` at a chosen rate and faults injected on demand. See
``docs/sim.md``.

>>> sim = await start_sim("kraken", port=0, rate=2000.0)   # doctest: +SKIP
>>> sim.ws_url, sim.rest_url                              # doctest: +SKIP
('ws://127.0.0.1:41234/v2', 'http://127.0.0.1:41234/0')
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ssmd.sim.faults import FAULT_TYPES, FaultPlan
from ssmd.sim.options import SimOptions
from ssmd.sim.server import SimServer
from ssmd.sim.venues import venue_class
from ssmd.types import Venue

__all__ = [
    "FAULT_TYPES",
    "FaultPlan",
    "SimOptions",
    "SimServer",
    "load_public_key",
    "start_sim",
    "venue_class",
]


def load_public_key(key: Any) -> Any:
    """A Kalshi public key from PEM bytes/str, a path, or a ``cryptography`` key object."""
    if key is None:
        return None
    import importlib

    return importlib.import_module("ssmd.sim.kalshi").load_public_key(key)


async def start_sim(
    venue: str | Venue,
    host: str = "127.0.0.1",
    port: int = 0,
    rate: float = 2000.0,
    instruments: Sequence[str] | int | None = None,
    faults: FaultPlan | None = None,
    seed: int = 7,
    kalshi_public_key: bytes | str | Path | Any = None,
    *,
    rest_port: int | None = None,
    options: SimOptions | None = None,
) -> SimServer:
    """Start the simulator of ``venue`` and return it once it listens.

    ``rate`` is data messages per second over all connections (shared in
    proportion to what each subscribed; ``0`` or ``inf``: as fast as each
    connection drains). ``instruments`` is ``None`` (the default universe),
    a count, or explicit ids. ``port=0`` picks a free port; REST is served on
    the same port unless ``rest_port`` is given. ``kalshi_public_key`` (PEM,
    path or key object) makes the Kalshi simulator verify signatures.
    """
    sim = SimServer(
        venue_class(venue),
        host=host,
        rate=rate,
        instruments=instruments,
        faults=faults,
        seed=seed,
        options=options,
        kalshi_public_key=load_public_key(kalshi_public_key),
    )
    await sim.start(port, rest_port)
    return sim
