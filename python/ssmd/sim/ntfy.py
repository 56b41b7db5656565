"""A local stand-in for an ntfy server (``ssmd notify sim`` and the notifier's tests).

It accepts what ``ssmd notify run`` sends: a JSON publish (``POST /`` with
``{"topic", "message", "title", "priority", "tags", …}``) and the plain form
(``POST /{topic}`` with the message as the body and ``Title``/``Priority``/
``Tags`` headers). Every request is recorded (:attr:`NtfyServer.requests`)
and every accepted message kept (:attr:`NtfyServer.messages`), answered as
ntfy answers: ``200`` with the message as JSON (``id``, ``time``,
``event: "message"``, ``topic``, …).

Faults for tests are scripted: :meth:`NtfyServer.script` queues answers for
the next requests (a status with headers, or a delay longer than the
client waits); :meth:`NtfyServer.stop` and :meth:`NtfyServer.start` take
the port down and bring it back (connections refused meanwhile). A request
answered with anything but ``200`` is not a delivered message; nor is one
whose client went away before the answer was written.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = ["Answer", "NtfyRequest", "NtfyServer"]

MAX_BODY = 1 << 20  # ntfy's own default message limit is far smaller


@dataclass(frozen=True)
class Answer:
    """A scripted answer: ``status`` (with ``headers`` and ``body``) after ``delay`` s."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0


@dataclass
class NtfyRequest:
    """One request as received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    status: int = 0
    #: the answer reached the client (False: it hung up first)
    answered: bool = False

    def json(self) -> Any:
        return orjson.loads(self.body)


class NtfyServer:
    """An ntfy-speaking HTTP/1.1 server on ``host:port`` (0: a free port)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.requests: list[NtfyRequest] = []
        #: messages accepted (``200`` answered), in arrival order, as ntfy stores them
        self.messages: list[dict[str, Any]] = []
        self._script: deque[Answer] = deque()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.arrived = asyncio.Condition()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        """Listen (again, on the same port once one was picked)."""
        self._server = await asyncio.start_server(self._conn, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and drop open connections (clients see the server down)."""
        if self._server is not None:
            self._server.close()
            for w in list(self._writers):
                w.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> NtfyServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def script(self, *answers: Answer) -> None:
        """Answer the next requests with these, in order (then ``200`` again)."""
        self._script.extend(answers)

    async def wait_for(self, n: int, timeout: float) -> list[dict[str, Any]]:
        """Wait until at least ``n`` messages were accepted; the messages."""

        async def enough() -> None:
            async with self.arrived:
                await self.arrived.wait_for(lambda: len(self.messages) >= n)

        await asyncio.wait_for(enough(), timeout)
        return self.messages

    # -- serving ---------------------------------------------------------------------

    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                req = await _read_request(reader)
                if req is None:
                    return
                self.requests.append(req)
                answer = self._script.popleft() if self._script else None
                if answer is not None and answer.delay and await _hung_up(reader, answer.delay):
                    return  # the client gave up waiting: nothing delivered
                keep = await self._answer(req, answer, writer)
                if not keep:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            return
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _answer(
        self, req: NtfyRequest, answer: Answer | None, writer: asyncio.StreamWriter
    ) -> bool:
        if answer is not None and answer.status != 200:
            status, headers = answer.status, dict(answer.headers)
            body = answer.body or orjson.dumps({"code": status * 100, "http": status})
            message = None
        else:
            message = _message(req)
            if message is None:
                status, headers = 400, {}
                body = orjson.dumps({"code": 40001, "http": 400, "error": "invalid request"})
            else:
                status, headers, body = 200, {}, orjson.dumps(message)
        head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        head += ["Content-Type: application/json", f"Content-Length: {len(body)}", "", ""]
        req.status = status
        try:
            writer.write("\r\n".join(head).encode() + body)
            await writer.drain()
        except ConnectionError:
            return False
        if writer.is_closing() or writer.transport.is_closing():
            return False
        req.answered = True
        if message is not None:
            async with self.arrived:
                self.messages.append(message)
                self.arrived.notify_all()
        return True


async def _hung_up(reader: asyncio.StreamReader, delay: float) -> bool:
    """Wait ``delay`` s; True when the client closed its side meanwhile."""
    try:
        data = await asyncio.wait_for(reader.read(1), delay)
    except asyncio.TimeoutError:
        return False
    return not data


async def _read_request(reader: asyncio.StreamReader) -> NtfyRequest | None:
    line = await reader.readline()
    if not line:
        return None
    parts = line.decode("latin-1").split()
    if len(parts) != 3:
        raise ValueError("bad request line")
    method, path, _ = parts
    headers: dict[str, str] = {}
    while True:
        h = await reader.readline()
        if h in (b"\r\n", b"\n", b""):
            break
        k, _, v = h.decode("latin-1").partition(":")
        headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0") or 0)
    if n > MAX_BODY:
        raise ValueError("body too large")
    body = await reader.readexactly(n) if n else b""
    return NtfyRequest(method, path, headers, body, time.time())


def _message(req: NtfyRequest) -> dict[str, Any] | None:
    """The message ntfy would store for ``req`` (``None``: ntfy would refuse it)."""
    if req.method not in ("POST", "PUT"):
        return None
    topic = req.path.strip("/").split("?")[0]
    out: dict[str, Any]
    if not topic:
        try:
            doc = orjson.loads(req.body)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(doc, dict) or not isinstance(doc.get("topic"), str):
            return None
        out = {k: v for k, v in doc.items() if k != "topic"}
        topic = doc["topic"]
    else:
        out = {"message": req.body.decode("utf-8", "replace")}
        for h in ("title", "priority", "tags", "click"):
            if h in req.headers:
                out[h] = req.headers[h]
    if "authorization" in req.headers:
        out["_authorization"] = req.headers["authorization"]
    return {
        "id": secrets.token_urlsafe(9),
        "time": int(time.time()),
        "event": "message",
        "topic": topic,
        **out,
    }


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}
