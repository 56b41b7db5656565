"""Backoff: full-jitter bounds, growth, cap, Retry-After; error classes."""

from __future__ import annotations

import email.utils
import random

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from picows import WSHandshakeError, WSUpgradeResponse

from ssmd.errors import ConfigError, ConnectorError, SinkError
from ssmd.runtime.backoff import (
    Backoff,
    ClassifiedError,
    ErrorClass,
    classify,
    parse_retry_after,
)


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


def test_parse_retry_after() -> None:
    assert parse_retry_after("5") == 5.0
    assert parse_retry_after(" 2.5 ") == 2.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-3") == 0.0
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after(date, now=now) == pytest.approx(30, abs=1)


def test_bad_parameters() -> None:
    with pytest.raises(ValueError):
        Backoff(0)
    with pytest.raises(ValueError):
        Backoff(2, 1)


def _refused(status: int, headers: dict[str, str] | None = None) -> WSHandshakeError:
    resp = WSUpgradeResponse.create_error_response(status, b"no", extra_headers=headers)
    return WSHandshakeError("refused", response=resp)


def test_classify_by_class_not_text() -> None:
    assert classify(ConnectionRefusedError("x")).cls is ErrorClass.RETRYABLE
    assert classify(TimeoutError()).cls is ErrorClass.RETRYABLE
    assert classify(ConnectorError("x")).cls is ErrorClass.RETRYABLE
    assert classify(ConfigError("x")).cls is ErrorClass.NON_RETRYABLE
    assert classify(SinkError("disk full")).cls is ErrorClass.FATAL
    f = classify(ClassifiedError("x", ErrorClass.NON_RETRYABLE, 3.0))
    assert (f.cls, f.retry_after) == (ErrorClass.NON_RETRYABLE, 3.0)


def test_classify_refused_upgrades() -> None:
    f = classify(_refused(429, {"Retry-After": "4"}))
    assert (f.cls, f.retry_after, f.status) == (ErrorClass.RETRYABLE, 4.0, 429)
    assert classify(_refused(503)).cls is ErrorClass.RETRYABLE
    assert classify(_refused(401)).cls is ErrorClass.NON_RETRYABLE
    assert classify(_refused(403)).cls is ErrorClass.NON_RETRYABLE


def test_classify_rest() -> None:
    req = httpx.Request("GET", "http://x/")
    resp = httpx.Response(429, headers={"Retry-After": "2"}, request=req)
    f = classify(httpx.HTTPStatusError("429", request=req, response=resp))
    assert (f.cls, f.retry_after) == (ErrorClass.RETRYABLE, 2.0)
    resp = httpx.Response(404, request=req)
    assert classify(httpx.HTTPStatusError("404", request=req, response=resp)).cls is (
        ErrorClass.NON_RETRYABLE
    )
    assert classify(httpx.ConnectError("down")).cls is ErrorClass.RETRYABLE
