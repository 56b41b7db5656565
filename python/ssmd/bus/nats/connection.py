"""Connecting to NATS: the URL, its redacted form for logs, and a connection that reconnects forever."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ssmd.errors import ConfigError, SinkError

__all__ = ["DEFAULT_URL", "connect", "nats_url", "redact"]


log = logging.getLogger("ssmd.bus")


DEFAULT_URL = "nats://localhost:4222"


def nats_url(url: str | None = None) -> str:
    """``url``, else ``nats://localhost:4222`` (the CLI passes ``--nats``/``NATS_URL``)."""
    return url or DEFAULT_URL


def redact(url: str) -> str:
    """The URL without user name, password or token (safe to log)."""
    out = []
    for part in url.split(","):
        try:
            u = urlsplit(part.strip())
            port = u.port  # raises ValueError for a bad or out-of-range port
        except ValueError:
            out.append("<bad url>")
            continue
        host = u.hostname or ""
        if port:
            host = f"{host}:{port}"
        out.append(urlunsplit((u.scheme, host, u.path, "", "")))
    return ",".join(out)


def _check(url: str) -> None:
    """``ConfigError`` for a server URL no server could answer (a bad port, no host)."""
    for part in url.split(","):
        part = part.strip()
        try:
            u = urlsplit(part if "://" in part else f"nats://{part}")
            port = u.port  # a bad or out-of-range port raises ValueError
        except ValueError as exc:
            raise ConfigError(f"bad NATS URL {redact(part)}: {exc}") from None
        if not u.hostname:
            raise ConfigError(f"bad NATS URL {redact(part)}: no host")
        if port == 0:
            raise ConfigError(f"bad NATS URL {redact(part)}: port 0")


async def connect(
    url: str | None = None,
    *,
    name: str = "ssmd",
    connect_timeout: float = 5.0,
    on_disconnect: Callable[[], Any] | None = None,
    on_reconnect: Callable[[], Any] | None = None,
    pending_size: int = 0,
) -> Any:
    """A connection that reconnects forever.

    ``ConfigError`` for a URL that cannot be right (a bad port, no host);
    ``SinkError`` for a server that cannot be reached now (exit status 1).

    ``pending_size=0`` makes publishing while disconnected fail at once (the
    bus sink keeps its own bounded backlog instead of nats-py's buffer).
    """
    import nats

    url = nats_url(url)
    _check(url)

    async def error_cb(exc: Exception) -> None:
        if not client:
            return  # still connecting: the SinkError below says it once
        log.warning("nats %s: %s", redact(url), exc)

    client: list[Any] = []

    async def disconnected_cb() -> None:
        if client and client[0].is_closed:
            return  # our own close
        log.warning("nats %s: disconnected", redact(url))
        if on_disconnect is not None:
            on_disconnect()

    async def reconnected_cb() -> None:
        log.info("nats %s: reconnected", redact(url))
        if on_reconnect is not None:
            on_reconnect()

    try:
        nc = await nats.connect(
            url,
            name=name,
            connect_timeout=connect_timeout,
            allow_reconnect=True,
            max_reconnect_attempts=1,  # at start-up; forever once connected
            reconnect_time_wait=0.25,
            pending_size=pending_size,
            error_cb=error_cb,
            disconnected_cb=disconnected_cb,
            reconnected_cb=reconnected_cb,
        )
    except Exception as exc:
        # the URL was checked above: what is left is a server that does not answer
        raise SinkError(f"cannot reach NATS at {redact(url)}: {exc or type(exc).__name__}") from exc
    nc.options["max_reconnect_attempts"] = -1
    client.append(nc)
    return nc
