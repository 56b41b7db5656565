"""Connecting to NATS: the URL, its redacted form for logs, and a connection that reconnects forever."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ssmd.errors import ConfigError

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
        except ValueError:
            out.append("<bad url>")
            continue
        host = u.hostname or ""
        if u.port:
            host = f"{host}:{u.port}"
        out.append(urlunsplit((u.scheme, host, u.path, "", "")))
    return ",".join(out)


async def connect(
    url: str | None = None,
    *,
    name: str = "ssmd",
    connect_timeout: float = 5.0,
    on_disconnect: Callable[[], Any] | None = None,
    on_reconnect: Callable[[], Any] | None = None,
    pending_size: int = 0,
) -> Any:
    """A connection that reconnects forever; ``ConfigError`` if unreachable now.

    ``pending_size=0`` makes publishing while disconnected fail at once (the
    bus sink keeps its own bounded backlog instead of nats-py's buffer).
    """
    import nats

    url = nats_url(url)

    async def error_cb(exc: Exception) -> None:
        if not client:
            return  # still connecting: the ConfigError below says it once
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
        raise ConfigError(
            f"cannot reach NATS at {redact(url)}: {exc or type(exc).__name__}"
        ) from exc
    nc.options["max_reconnect_attempts"] = -1
    client.append(nc)
    return nc
