"""What to do about an error: ``ssmd.errors.classify`` and ``parse_retry_after``.

The supervisor, the REST helpers and the bus decide from the class alone;
an exception the classifier does not know is a bug and FATAL.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import subprocess
import sys

import httpx
import pytest
from picows import WSHandshakeError, WSInvalidURL, WSUpgradeResponse

from ssmd.errors import (
    ClassifiedError,
    ConfigError,
    ConnectorError,
    ErrorClass,
    ParseError,
    SinkError,
    classify,
    parse_retry_after,
)


def test_parse_retry_after() -> None:
    assert parse_retry_after("5") == 5.0
    assert parse_retry_after(" 2.5 ") == 2.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-3") == 0.0
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after(date, now=now) == pytest.approx(30, abs=1)


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


@pytest.mark.parametrize(
    "exc",
    [
        AttributeError("'NoneType' object has no attribute 'send'"),
        TypeError("unsupported operand"),
        KeyError("channel"),
        IndexError("list index out of range"),
        ValueError("invalid literal for int()"),
        json.JSONDecodeError("Expecting value", "", 0),
        ZeroDivisionError("division by zero"),
        RuntimeError("boom"),
        AssertionError(),
        NotImplementedError(),
        MemoryError(),
    ],
    ids=lambda e: type(e).__name__,
)
def test_an_exception_it_does_not_know_is_a_bug(exc: BaseException) -> None:
    f = classify(exc)
    assert f.cls is ErrorClass.FATAL
    assert type(exc).__name__ in f.reason


def test_known_failures_are_not_fatal() -> None:
    assert classify(asyncio.TimeoutError()).cls is ErrorClass.RETRYABLE
    assert classify(EOFError()).cls is ErrorClass.RETRYABLE
    assert classify(ConnectionResetError()).cls is ErrorClass.RETRYABLE
    assert classify(WSInvalidURL("x", "scheme isn't ws or wss")).cls is ErrorClass.NON_RETRYABLE
    # an ssmd error is raised on purpose, never a bug; retrying it would not help
    assert classify(ParseError("bad")).cls is ErrorClass.NON_RETRYABLE


def test_classify_nats() -> None:
    import nats.errors as ne
    import nats.js.errors as jse

    for exc in (
        ne.ConnectionClosedError(),
        ne.ConnectionReconnectingError(),
        ne.NoRespondersError(),
        ne.TimeoutError(),
        ne.OutboundBufferLimitError(),
        jse.NoStreamResponseError(),
        jse.ServiceUnavailableError(code=503),
        jse.APIError(code=500),
    ):
        assert classify(exc).cls is ErrorClass.RETRYABLE, exc
    for exc in (
        ne.BadSubjectError(),
        ne.MaxPayloadError(),
        ne.AuthorizationError(),
        jse.NotFoundError(code=404),
        jse.BadRequestError(code=400),
        jse.APIError(code=400, description="wrong last sequence"),
    ):
        f = classify(exc)
        assert f.cls is ErrorClass.NON_RETRYABLE, exc
        assert type(exc).__name__ in f.reason


def test_classify_without_nats_py() -> None:
    """The bus extra is optional: without nats-py a bug is still FATAL, a network error RETRYABLE."""
    code = (
        "import sys; sys.modules['nats'] = None\n"
        "from ssmd.errors import ErrorClass, classify\n"
        "assert classify(AttributeError('x')).cls is ErrorClass.FATAL\n"
        "assert classify(ConnectionResetError()).cls is ErrorClass.RETRYABLE\n"
        "assert 'nats.errors' not in sys.modules\n"
        "print('ok')\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert r.stdout.strip() == "ok", r.stderr
