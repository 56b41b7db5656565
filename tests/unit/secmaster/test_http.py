"""VenueClient and cursor pagination against the local server (no database)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator

import pytest

from helpers import async_wait_until
from secmaster_server import HTML_ERROR, HttpServer, Response, json_response, too_many
from ssmd.errors import ConnectorError
from ssmd.secmaster.config import VenueApi
from ssmd.secmaster.http import CursorError, VenueClient, VenueUnreachable, cursor_pages


@pytest.fixture
async def server() -> AsyncIterator[HttpServer]:
    srv = HttpServer()
    srv.routes["/v2/a"] = lambda req: json_response({"path": "a"})
    srv.routes["/v2/b"] = lambda req: json_response({"path": "b"})
    await srv.start()
    yield srv
    await srv.close()


def api(server: HttpServer, **kw: float) -> VenueApi:
    opts = {"rate": 0.0, "attempts": 4, "backoff": 0.01, **kw}
    return VenueApi("kalshi", server.url + "/v2", **opts)  # type: ignore[arg-type]


async def test_base_url_keeps_its_version_path(server: HttpServer) -> None:
    async with VenueClient(api(server)) as c:
        assert await c.get_json("/a", [("x", "1")]) == {"path": "a"}
    assert server.hits[0][1] == "/v2/a?x=1"


async def test_429_pauses_every_request_to_the_venue(server: HttpServer) -> None:
    server.inject("/v2/a", too_many("1"))
    async with VenueClient(api(server)) as c:
        first = asyncio.create_task(c.get_json("/a"))
        await async_wait_until(lambda: c.throttled == 1, message="the 429 reached the client")
        t0 = time.monotonic()
        assert await c.get_json("/b") == {"path": "b"}  # another path, same venue
        waited = time.monotonic() - t0
        assert await first == {"path": "a"}
    assert waited >= 0.85, waited
    assert c.throttled == 1 and c.retries == 1
    t429 = server.hits[0][0]
    assert all(t - t429 >= 0.95 for t, _, _ in server.hits[1:])


async def test_5xx_and_html_pages_are_retried(server: HttpServer) -> None:
    server.inject(
        "/v2/a",
        Response(500, b"oops"),
        HTML_ERROR,
        Response(503, b"", {"Retry-After": "0.1"}),
    )
    async with VenueClient(api(server)) as c:
        assert await c.get_json("/a") == {"path": "a"}
        assert c.retries == 3 and c.requests == 4


async def test_gives_up_after_attempts_with_one_line(server: HttpServer) -> None:
    server.inject("/v2/a", *[Response(502, b"bad gateway")] * 4)
    async with VenueClient(api(server)) as c:
        with pytest.raises(ConnectorError) as info:
            await c.get_json("/a")
    msg = str(info.value)
    assert "HTTP 502" in msg and "4 attempts" in msg and "\n" not in msg


async def test_4xx_is_not_retried(server: HttpServer) -> None:
    async with VenueClient(api(server)) as c:
        with pytest.raises(ConnectorError, match="HTTP 404"):
            await c.get_json("/nope")
    assert len(server.hits) == 1


async def test_unreachable_venue() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = VenueApi("kraken", f"http://127.0.0.1:{port}/0", rate=0, attempts=2, backoff=0.01)
    async with VenueClient(dead) as c:
        with pytest.raises(VenueUnreachable, match="unreachable"):
            await c.get_json("/public/AssetPairs")


async def test_rate_limit_spaces_requests(server: HttpServer) -> None:
    async with VenueClient(api(server, rate=20.0)) as c:
        await asyncio.gather(*(c.get_json("/a") for _ in range(6)))
    times = sorted(t for t, _, _ in server.hits)
    assert times[-1] - times[0] >= 5 * 0.05 * 0.9


async def test_cursor_pages_and_a_stuck_cursor(server: HttpServer) -> None:
    pages = {"": ("c1", [1, 2]), "c1": ("c2", [3]), "c2": ("", [4])}
    server.routes["/v2/list"] = lambda req: json_response(
        {"cursor": pages[req.arg("cursor") or ""][0], "items": pages[req.arg("cursor") or ""][1]}
    )
    async with VenueClient(api(server)) as c:
        got = [
            x
            async for page in cursor_pages(
                c, "/list", [], items_key="items", cursor_param="cursor", cursor_key="cursor"
            )
            for x in page
        ]
        assert got == [1, 2, 3, 4]
        pages["c2"] = ("c1", [4])  # loops back to a cursor already given
        with pytest.raises(CursorError, match="did not advance after page 3"):
            async for _ in cursor_pages(
                c, "/list", [], items_key="items", cursor_param="cursor", cursor_key="cursor"
            ):
                pass
