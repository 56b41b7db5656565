"""Backoff: full-jitter bounds, growth, cap, Retry-After as a floor."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ssmd.runtime.backoff import Backoff


@given(
    base=st.floats(0.01, 5),
    factor=st.floats(1, 4),
    cap_mult=st.floats(1, 100),
    seed=st.integers(0, 2**32),
    n=st.integers(1, 40),
)
def test_full_jitter_stays_within_exponential_ceiling(
    base: float, factor: float, cap_mult: float, seed: int, n: int
) -> None:
    b = Backoff(base, base * cap_mult, factor, rng=random.Random(seed))
    for attempt in range(n):
        ceiling = min(b.cap, base * factor**attempt)
        d = b.next_delay()
        assert 0.0 <= d <= ceiling + 1e-9
    assert b.attempt == n


def test_jitter_spreads_and_reset_starts_over() -> None:
    b = Backoff(1.0, 8.0, 2.0, rng=random.Random(1))
    for _ in range(10):
        b.next_delay()
    assert b.ceiling() == 8.0
    samples = [Backoff(1.0, 8.0, rng=random.Random(i)).next_delay() for i in range(200)]
    assert min(samples) < 0.1 and max(samples) > 0.9  # full jitter over [0, 1]
    b.reset()
    assert b.attempt == 0 and b.ceiling() == 1.0


def test_retry_after_is_a_floor_but_capped() -> None:
    b = Backoff(0.1, 1.0, rng=random.Random(3), max_retry_after=60)
    assert b.next_delay(retry_after=7.5) == 7.5
    assert b.next_delay(retry_after=3600) == 60
    assert b.next_delay(retry_after=0) <= 1.0


def test_bad_parameters() -> None:
    with pytest.raises(ValueError):
        Backoff(0)
    with pytest.raises(ValueError):
        Backoff(2, 1)


def test_delay_of_an_attempt_does_not_count_it() -> None:
    b = Backoff(0.05, 2.0, rng=random.Random(5))
    for attempt in range(12):
        d = b.delay(attempt)
        assert 0.0 <= d <= min(2.0, 0.05 * 2**attempt)
    assert b.attempt == 0
    assert b.delay(0, retry_after=1.5) == 1.5  # Retry-After is a floor here too
    spread = [Backoff(1.0, 1.0, rng=random.Random(i)).delay(3) for i in range(200)]
    assert min(spread) < 0.1 and max(spread) > 0.9  # full jitter, not equal jitter


async def test_retry_until_stopped_retries_what_is_retryable() -> None:
    import asyncio

    from ssmd.errors import Failure
    from ssmd.runtime.backoff import retry_until_stopped

    calls: list[int] = []
    heard: list[Failure] = []

    async def flaky() -> None:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionResetError("gone")

    ok = await retry_until_stopped(
        flaky, asyncio.Event(), Backoff(0.001, 0.002), on_retry=heard.append
    )
    assert ok and len(calls) == 3
    assert [f.reason for f in heard] == ["ConnectionResetError: gone"] * 2


async def test_retry_until_stopped_raises_a_bug_at_once() -> None:
    import asyncio

    from ssmd.runtime.backoff import retry_until_stopped

    calls: list[int] = []

    async def buggy() -> None:
        calls.append(1)
        raise AttributeError("'NoneType' object has no attribute 'publish'")

    with pytest.raises(AttributeError):
        await retry_until_stopped(buggy, asyncio.Event(), Backoff(0.001, 0.002))
    assert len(calls) == 1
    # an earlier failure that is not retryable is raised without trying again
    with pytest.raises(TypeError):
        await retry_until_stopped(buggy, asyncio.Event(), Backoff(0.001, 0.002), error=TypeError())
    assert len(calls) == 1


async def test_retry_until_stopped_gives_up_when_stopped() -> None:
    import asyncio

    from ssmd.runtime.backoff import retry_until_stopped

    stop = asyncio.Event()
    calls: list[int] = []

    async def down() -> None:
        calls.append(1)
        raise ConnectionRefusedError("down")

    # an hour's delay: stopping cuts it short instead of waiting it out
    asyncio.get_running_loop().call_later(0.05, stop.set)
    assert not await asyncio.wait_for(
        retry_until_stopped(down, stop, Backoff(3600.0, 3600.0, rng=_Top())), 60
    )
    assert len(calls) == 1


class _Top(random.Random):
    """Always the ceiling, so the delay is the longest backoff allows."""

    def uniform(self, a: float, b: float) -> float:
        return b
