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
