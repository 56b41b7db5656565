"""VenueClient and cursor pagination against the Kalshi simulator's REST (no database)."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from helpers import async_wait_until
from sim_client import MakeSim
from ssmd.errors import ConnectorError
from ssmd.secmaster.config import VenueApi
from ssmd.secmaster.http import CursorError, VenueClient, VenueUnreachable, cursor_pages
from ssmd.sim import SimServer

ROOT = "/trade-api/v2"
HTML_PAGE = (
    b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
    b"<body><h1>Bad Gateway</h1><p>cloudflare</p></body></html>"
)


@pytest.fixture
async def sim(make_sim: MakeSim) -> SimServer:
    return await make_sim("kalshi", rate=0.0)


def api(sim: SimServer, **kw: float) -> VenueApi:
    opts = {"rate": 0.0, "attempts": 4, "backoff": 0.01, **kw}
    return VenueApi("kalshi", sim.rest_url, **opts)  # type: ignore[arg-type]


async def test_base_url_keeps_its_version_path(sim: SimServer) -> None:
    async with VenueClient(api(sim)) as c:
        body = await c.get_json("/series", [("category", "Economics")])
    assert body["series"] and all(s["category"] == "Economics" for s in body["series"])
    assert [h[1] for h in sim.rest_log] == [f"{ROOT}/series?category=Economics"]


async def test_429_pauses_every_request_to_the_venue(sim: SimServer) -> None:
    sim.inject("rest_response", path=f"{ROOT}/series", status=429, retry_after="1")
    async with VenueClient(api(sim)) as c:
        first = asyncio.create_task(c.get_json("/series"))
        await async_wait_until(lambda: c.throttled == 1, message="the 429 reached the client")
        t0 = time.monotonic()
        assert "markets" in await c.get_json("/markets")  # another path, same venue
        waited = time.monotonic() - t0
        assert "series" in await first
    assert waited >= 0.85, waited
    assert c.throttled == 1 and c.retries == 1
    t429 = sim.rest_log[0][0]
    assert all(t - t429 >= 0.95 for t, _, _ in sim.rest_log[1:])


async def test_5xx_and_html_pages_are_retried(sim: SimServer) -> None:
    path = f"{ROOT}/series"
    sim.inject("rest_response", path=path, status=500, body="oops", content_type="text/plain")
    sim.inject("rest_response", path=path, body=HTML_PAGE, content_type="text/html")
    sim.inject("rest_response", path=path, status=503, retry_after="0.1")
    async with VenueClient(api(sim)) as c:
        assert "series" in await c.get_json("/series")
        assert c.retries == 3 and c.requests == 4
    assert [h[2] for h in sim.rest_log] == [500, 200, 503, 200]


async def test_gives_up_after_attempts_with_one_line(sim: SimServer) -> None:
    sim.inject("rest_response", path=f"{ROOT}/series", status=502, body="bad gateway", count=4)
    async with VenueClient(api(sim)) as c:
        with pytest.raises(ConnectorError) as info:
            await c.get_json("/series")
    msg = str(info.value)
    assert "HTTP 502" in msg and "4 attempts" in msg and "\n" not in msg


async def test_4xx_is_not_retried(sim: SimServer) -> None:
    async with VenueClient(api(sim)) as c:
        with pytest.raises(ConnectorError, match="HTTP 404"):
            await c.get_json("/nope")
    assert len(sim.rest_log) == 1


async def test_unreachable_venue() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = VenueApi("kraken", f"http://127.0.0.1:{port}/0", rate=0, attempts=2, backoff=0.01)
    async with VenueClient(dead) as c:
        with pytest.raises(VenueUnreachable, match="unreachable"):
            await c.get_json("/public/AssetPairs")


async def test_rate_limit_spaces_requests(sim: SimServer) -> None:
    async with VenueClient(api(sim, rate=20.0)) as c:
        await c.get_json("/series")  # the first takes the token there is
        started = time.monotonic()
        await asyncio.gather(*(c.get_json("/series") for _ in range(5)))
        took = time.monotonic() - started
    # five more at 20/s cannot all go out in less than 5 intervals, however busy the machine
    # (the simulator's own receive times can bunch up under load: only a lower bound holds)
    assert took >= 5 * 0.05 * 0.9, took
    assert len(sim.rest_log) == 6


async def test_cursor_pages_and_a_stuck_cursor(sim: SimServer) -> None:
    tickers = sim.venue.instrument_ids()
    async with VenueClient(api(sim)) as c:

        def listing() -> object:
            return cursor_pages(
                c,
                "/markets",
                [("limit", 50)],
                items_key="markets",
                cursor_param="cursor",
                cursor_key="cursor",
            )

        got = [m["ticker"] async for page in listing() for m in page]  # type: ignore[attr-defined]
        assert len(got) == len(set(got)) == len(sim.venue.markets) > 150
        assert set(tickers) <= set(got)
        sim.venue.records.stuck_cursor = True  # the second page hands back its own cursor
        with pytest.raises(CursorError, match="did not advance after page 2"):
            async for _ in listing():  # type: ignore[attr-defined]
                pass
