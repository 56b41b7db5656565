"""Fixtures of the simulator tests: simulators started on loopback, stopped after."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from ssmd.sim import SimServer, start_sim

MakeSim = Callable[..., Awaitable[SimServer]]


@pytest.fixture
async def make_sim() -> AsyncIterator[MakeSim]:
    """``await make_sim(venue, **start_sim_kwargs)``; every simulator is stopped at teardown."""
    sims: list[SimServer] = []

    async def make(venue: str, **kw: Any) -> SimServer:
        sim = await start_sim(venue, **kw)
        sims.append(sim)
        return sim

    yield make
    for sim in sims:
        await sim.stop()
