"""A plain picows client for the simulator tests, and small HTTP helpers.

Imported as ``from sim_client import ...`` (``tests/`` is on the test path).
"""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

if TYPE_CHECKING:
    from ssmd.sim import SimServer

__all__ = ["Client", "MakeSim", "connect", "http_get"]

#: the ``make_sim`` fixture (``tests/conftest.py``): ``await make_sim(venue, **start_sim_kwargs)``
MakeSim = Callable[..., Awaitable["SimServer"]]


class Client(WSListener):
    """Records every frame; answers server Pings (and records them)."""

    def __init__(self) -> None:
        super().__init__()
        self.frames: list[bytes] = []
        self.pings: list[bytes] = []
        self.pongs: list[bytes] = []
        self.close_code: int | None = None
        self.disconnected = asyncio.Event()
        self.transport: WSTransport | None = None

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        t = frame.msg_type
        if t == WSMsgType.TEXT:
            self.frames.append(frame.get_payload_as_bytes())
        elif t == WSMsgType.PING:
            self.pings.append(frame.get_payload_as_bytes())
            transport.send_pong(frame.get_payload_as_bytes())
        elif t == WSMsgType.PONG:
            self.pongs.append(frame.get_payload_as_bytes())
        elif t == WSMsgType.CLOSE:
            self.close_code = frame.get_close_code().value
            transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.disconnected.set()

    # -- helpers ---------------------------------------------------------------

    def send(self, obj: Any) -> None:
        assert self.transport is not None
        payload = obj if isinstance(obj, (bytes, str)) else orjson.dumps(obj)
        self.transport.send(WSMsgType.TEXT, payload)

    def ping(self, payload: bytes = b"p") -> None:
        assert self.transport is not None
        self.transport.send_ping(payload)

    def json(self, start: int = 0, end: int | None = None) -> list[Any]:
        """Every parseable frame from number ``start`` up to ``end``, decoded."""
        out = []
        for f in self.frames[start:end]:
            try:
                out.append(orjson.loads(f))
            except orjson.JSONDecodeError:
                continue
        return out

    def close(self) -> None:
        if self.transport is not None:
            self.transport.disconnect()


async def connect(url: str, headers: dict[str, str] | None = None) -> Client:
    """Open a WebSocket to ``url``; the returned client records frames."""
    _, client = await ws_connect(
        Client, url, enable_auto_pong=False, max_frame_size=64 * 1024 * 1024, extra_headers=headers
    )
    assert isinstance(client, Client)
    return client


def _get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, dict(r.headers.items()), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers.items()), e.read()


async def http_get(url: str) -> tuple[int, dict[str, str], Any]:
    """GET ``url`` in a thread; status, headers and the decoded JSON body."""
    status, headers, body = await asyncio.to_thread(_get, url)
    return status, headers, orjson.loads(body) if body else None
