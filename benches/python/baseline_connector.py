"""The plain Python connector that ssmd's connector is measured against.

What one would write without ssmd: a WebSocket client (``websockets``, or
``picows`` for a tighter baseline), stdlib ``json.loads`` per frame, an
envelope per message built as a dict and written with ``json.dumps`` into
a ``gzip`` file (level 6, Python's usual choice). Only the venue protocol
(discovery, subscribe messages, auth headers) comes from ssmd, so both
connectors receive the same stream from the same simulator.

Used by ``bench_connect.py`` (pytest-benchmark) and ``tools/bench_connect.py``.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import resource
import time
from pathlib import Path
from typing import Any

import httpx

from ssmd.connectors.base import InstrumentQuery
from ssmd.connectors.registry import create

__all__ = ["CLIENTS", "run_plain"]

CLIENTS = ("websockets", "picows")


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class _Plain:
    """Frame handling of the plain connector: json per frame, json.dumps envelope, gzip."""

    def __init__(self, venue: str, path: Path) -> None:
        self.venue = venue
        self.out = gzip.open(path, "wb", compresslevel=6)  # noqa: SIM115 - closed by close()
        self.messages = 0
        self.bytes = 0

    def frame(self, raw: bytes) -> None:
        self.bytes += len(raw)
        try:
            obj = json.loads(raw)
        except ValueError:
            return
        for msg in obj if isinstance(obj, list) else [obj]:
            if not isinstance(msg, dict):
                continue
            kind = msg.get("channel") or msg.get("feed") or msg.get("type")
            kind = kind or msg.get("event_type") or "unknown"
            env = {
                "rx": time.time_ns(),
                "conn": "b",
                "subj": f"prod.{self.venue}.{kind}",
                "msg": msg,
            }
            self.out.write(json.dumps(env).encode() + b"\n")
            self.messages += 1

    def close(self) -> None:
        self.out.close()


async def run_plain(
    venue: str,
    settings: dict[str, Any],
    root: Path,
    *,
    client: str = "websockets",
    target: int | None = None,
    seconds: float | None = None,
) -> dict[str, Any]:
    """Receive ``target`` messages (after a warm-up of a tenth) or for ``seconds``.

    Returns messages, seconds, CPU seconds and the rates, measured between
    the two marks.
    """
    if client not in CLIENTS:
        raise ValueError(f"client must be one of {CLIENTS}")
    connector = create(venue, settings)
    async with httpx.AsyncClient() as http:
        res = await connector.resolve(InstrumentQuery(all=True), http)
    ws = connector.ws_url
    session = connector.new_session(0)
    first = res.instruments[: connector.config.max_per_connection]
    requests = session.on_open() + session.subscribe(first)
    plain = _Plain(venue, root / f"baseline-{client}.jsonl.gz")
    marks: dict[str, float] = {}
    warm = (target or 0) // 10

    def mark(now: float) -> bool:
        """Set the marks; True when the measurement is over."""
        if "t0" not in marks:
            if plain.messages >= warm:
                marks.update(n0=plain.messages, t0=now, c0=_cpu())
            return False
        if (target is not None and plain.messages - marks["n0"] >= target) or (
            seconds is not None and now - marks["t0"] >= seconds
        ):
            marks.update(n1=plain.messages, t1=now, c1=_cpu())
            return True
        return False

    try:
        if client == "websockets":
            await _with_websockets(ws, connector.auth_headers(ws), requests, plain, mark)
        else:
            await _with_picows(ws, connector.auth_headers(ws), requests, plain, mark)
    finally:
        plain.close()
    n = marks["n1"] - marks["n0"]
    wall, cpu = marks["t1"] - marks["t0"], marks["c1"] - marks["c0"]
    return {
        "venue": venue,
        "baseline": f"{client} + json + gzip",
        "messages": int(n),
        "seconds": round(wall, 2),
        "msg_per_s": round(n / wall) if wall else 0,
        "cpu_percent": round(100 * cpu / wall) if wall else 0,
        "msg_per_cpu_s": round(n / cpu) if cpu else 0,
        "MB_per_s": round(plain.bytes / wall / 1e6, 1) if wall else 0,
    }


async def _with_websockets(
    url: str, headers: dict[str, str], requests: list[bytes], plain: _Plain, mark: Any
) -> None:
    import websockets

    async with websockets.connect(
        url, additional_headers=headers, max_size=None, compression=None
    ) as c:
        for m in requests:
            await c.send(m.decode())
        while True:
            raw = await c.recv(decode=False)
            if isinstance(raw, str):
                raw = raw.encode()
            plain.frame(raw)
            if mark(time.perf_counter()):
                return


async def _with_picows(
    url: str, headers: dict[str, str], requests: list[bytes], plain: _Plain, mark: Any
) -> None:
    from picows import WSListener, WSMsgType, ws_connect

    done = asyncio.get_running_loop().create_future()

    class Listener(WSListener):
        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            if frame.msg_type is WSMsgType.PING:
                transport.send_pong(frame.get_payload_as_bytes())
                return
            if frame.msg_type is not WSMsgType.TEXT:
                return
            plain.frame(frame.get_payload_as_bytes())
            if mark(time.perf_counter()) and not done.done():
                done.set_result(None)

    transport, _ = await ws_connect(Listener, url, extra_headers=headers)
    for m in requests:
        transport.send(WSMsgType.TEXT, m)
    try:
        await done
    finally:
        transport.disconnect()
