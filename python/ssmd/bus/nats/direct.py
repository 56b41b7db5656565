"""Direct delivery: messages of chosen subscriptions straight from nats-py's protocol parser.

This is the one place that relies on nats-py internals (``Client._process_msg``,
``Subscription._id``); ``tests/unit/bus/test_nats_internals.py`` checks them without a
server, and ``pyproject.toml`` bounds nats-py below its next, untested release.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

__all__ = [
    "RawHandler",
    "ack_stream_seq",
    "direct_delivery",
    "drop_subscription",
    "header_status",
    "subscribe_direct",
]


def ack_stream_seq(reply: str | bytes) -> int:
    """The stream sequence from a JetStream ack subject (v1 and v2 forms)."""
    tokens = reply.split(b"." if isinstance(reply, bytes) else ".")  # type: ignore[arg-type]
    n = len(tokens)
    if n == 9:  # $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>
        return int(tokens[5])
    if n >= 12:  # $JS.ACK.<domain>.<hash>.<stream>.<consumer>.<delivered>.<sseq>...
        return int(tokens[7])
    raise ValueError(f"not a JetStream ack subject: {reply!r}")


RawHandler = Callable[[bytes, bytes, bytes, "bytes | None"], None]


def direct_delivery(nc: Any, sid: int, handler: RawHandler | None) -> bool:
    """Hand the messages of subscription ``sid`` to ``handler(subject, reply, data, headers)``.

    nats-py turns every delivered message into a ``Msg``: its headers parsed
    into a dict, the message put on an ``asyncio.Queue`` and a task woken to
    run the callback, about 10 µs a message. The archiver's inbox receives
    tens of thousands of messages a second and needs only the reply subject
    and the payload, so its messages skip all of that: the connection's
    message dispatch (``Client._process_msg``) is wrapped once, and messages
    of a registered sid go to their handler, raw. Every other subscription
    is untouched. ``handler=None`` unregisters. Returns False (and nothing
    changes) when this nats-py has no such dispatch; the caller then keeps
    the ordinary subscription callback.
    """
    table: dict[int, RawHandler] | None = getattr(nc, "_ssmd_direct", None)
    if table is None and handler is None:
        return True  # nothing registered: nothing to undo
    if table is None:
        orig = getattr(nc, "_process_msg", None)
        if orig is None or not asyncio.iscoroutinefunction(orig):
            return False
        table = {}

        async def dispatch(
            sid: int, subject: bytes, reply: bytes, data: bytes, headers: bytes | None
        ) -> None:
            h = table.get(sid)
            if h is None:
                await orig(sid, subject, reply, data, headers)
                return
            h(subject, reply, data, headers)

        nc._process_msg = dispatch
        nc._ssmd_direct = table
    if handler is None:
        table.pop(sid, None)
    else:
        table[sid] = handler
    return True


async def subscribe_direct(
    nc: Any, subject: str, cb: Any, raw: RawHandler, **kw: Any
) -> tuple[Any, bool]:
    """Subscribe with ``cb``; deliver through ``raw`` instead when nats-py allows it.

    Returns ``(subscription, direct)``.
    """
    sub = await nc.subscribe(subject, cb=cb, **kw)
    sid = getattr(sub, "_id", None)
    return sub, isinstance(sid, int) and direct_delivery(nc, sid, raw)


async def drop_subscription(nc: Any, sub: Any) -> None:
    """Unsubscribe (best effort), dropping a direct-delivery registration first."""
    sid = getattr(sub, "_id", None)
    if isinstance(sid, int):
        direct_delivery(nc, sid, None)
    with contextlib.suppress(Exception):
        await sub.unsubscribe()


def header_status(headers: bytes | None) -> bytes:
    """The status code of a NATS header block (``NATS/1.0 404 No Messages``), or b""."""
    if headers and headers.startswith(b"NATS/1.0 "):
        return headers[9:12]
    return b""
