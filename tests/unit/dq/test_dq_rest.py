"""``ssmd dq trades --rest-url``: the venue's trade history over REST against a tiny
local server that throttles, pages, and answers with something that is not JSON."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from ssmd.dq.rest import rest_trades
from ssmd.errors import ConfigError, ConnectorError

DAY = dt.date(2024, 3, 1)
#: (status, headers, body) for the n-th request (from 0) and its query
Script = Callable[[int, dict[str, list[str]]], tuple[int, dict[str, str], bytes]]


class Server:
    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests: list[tuple[str, dict[str, list[str]]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                query = parse_qs(url.query)
                n = len(server.requests)
                server.requests.append((url.path, query))
                status, headers, body = server.script(n, query)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/trade-api/v2"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve() -> Iterator[Callable[[Script], Server]]:
    servers: list[Server] = []

    def make(script: Script) -> Server:
        servers.append(Server(script))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def _json(body: object) -> tuple[int, dict[str, str], bytes]:
    return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()


def test_throttled_and_paged(serve: Callable[[Script], Server]) -> None:
    def script(n: int, q: dict[str, list[str]]) -> tuple[int, dict[str, str], bytes]:
        if n == 0:
            return 429, {"Retry-After": "0"}, b"slow down"
        if n == 1:
            return 503, {}, b"busy"
        if "cursor" not in q:
            return _json({"cursor": "p2", "trades": [{"trade_id": "a"}, {"trade_id": "b"}]})
        return _json({"cursor": "", "trades": [{"trade_id": "c"}]})

    s = serve(script)
    got = rest_trades("kalshi", s.url, "KX-1", DAY, backoff=0.01, rate=0)
    assert [t["trade_id"] for t in got] == ["a", "b", "c"]
    # the 429 and the 503 were asked again; then two pages
    assert len(s.requests) == 4
    path, q = s.requests[-1]
    assert path == "/trade-api/v2/markets/trades"
    assert q["ticker"] == ["KX-1"] and q["cursor"] == ["p2"]
    assert q["min_ts"] == ["1709251200"] and q["max_ts"] == ["1709337599"]


def test_an_answer_that_is_not_json_is_one_line(serve: Callable[[Script], Server]) -> None:
    s = serve(lambda n, q: (200, {"Content-Type": "text/html"}, b"<html>maintenance</html>"))
    with pytest.raises(ConnectorError) as err:
        rest_trades("kalshi", s.url, "KX-1", DAY, attempts=2, backoff=0.01, rate=0)
    msg = str(err.value)
    assert "not a JSON page" in msg and "text/html" in msg and "\n" not in msg
    assert len(s.requests) == 2  # retried once, then given up


def test_refused_and_malformed_trades(serve: Callable[[Script], Server]) -> None:
    s = serve(lambda n, q: (404, {}, b"no such market"))
    with pytest.raises(ConnectorError, match="HTTP 404"):
        rest_trades("kalshi", s.url, "KX-1", DAY, backoff=0.01, rate=0)
    assert len(s.requests) == 1  # a 404 is not retried
    s = serve(lambda n, q: _json({"cursor": "", "trades": [{"price": 1}]}))
    with pytest.raises(ConnectorError, match="without a trade_id"):
        rest_trades("kalshi", s.url, "KX-1", DAY, backoff=0.01, rate=0)
    s = serve(lambda n, q: _json({"cursor": "", "trades": "none"}))
    with pytest.raises(ConnectorError, match="not a list"):
        rest_trades("kalshi", s.url, "KX-1", DAY, attempts=1, rate=0)


def test_polymarket_pages_shifted_by_new_trades(
    serve: Callable[[Script], Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Newest first by offset: a trade arriving between two pages pushes the last one of
    the first page onto the second; it counts once. Other tokens' trades and trades of
    other days are left out."""
    import ssmd.dq.rest as dq_rest

    t0 = 1709251200
    cid = "0x" + "c" * 64

    def trade(i: int, asset: str = "7", t: int | None = None) -> dict[str, object]:
        return {
            "asset": asset,
            "conditionId": cid,
            "side": "BUY",
            "size": 10,
            "price": 0.5,
            "timestamp": t0 + 100 - i if t is None else t,
            "transactionHash": f"0x{i:064x}",
        }

    late = trade(99, t=t0 + 86_400)  # the next day
    pages = {
        "0": [late, trade(0), trade(1)],
        # a new trade came: the second page starts with the first page's last one
        "3": [trade(1), trade(2, asset="8"), trade(3)],
        # the day before: the last page asked for
        "6": [trade(4, t=t0 - 1), trade(5, t=t0 - 2), trade(6, t=t0 - 3)],
    }

    def script(n: int, q: dict[str, list[str]]) -> tuple[int, dict[str, str], bytes]:
        assert q["market"] == [cid] and q["takerOnly"] == ["true"] and q["limit"] == ["3"]
        return _json(pages[q["offset"][0]])

    monkeypatch.setattr(dq_rest, "POLYMARKET_LIMIT", 3)
    s = serve(script)
    url = s.url.rsplit("/trade-api", 1)[0]
    got = rest_trades("polymarket", url, "7", DAY, rate=0, condition_id=cid)
    assert [int(t["trade_id"], 16) for t in got] == [0, 1, 3]
    assert got[0] == {
        "trade_id": f"0x{0:064x}",
        "ts": (t0 + 100) * 1000,
        "price": "0.5",
        "size": "10",
        "side": "BUY",
    }
    assert [r[0] for r in s.requests] == ["/trades"] * 3


def test_polymarket_refused_and_malformed(serve: Callable[[Script], Server]) -> None:
    cid = "0x" + "c" * 64
    s = serve(lambda n, q: (400, {}, b'{"error": "bad market"}'))
    with pytest.raises(ConnectorError, match="HTTP 400"):
        rest_trades("polymarket", s.url, "7", DAY, rate=0, condition_id=cid)
    assert len(s.requests) == 1  # a 400 at offset 0 is an error, not the offset limit
    s = serve(lambda n, q: _json({"trades": []}))
    with pytest.raises(ConnectorError, match="expected a JSON array of trades"):
        rest_trades("polymarket", s.url, "7", DAY, attempts=1, rate=0, condition_id=cid)
    s = serve(lambda n, q: _json([{"asset": "7", "timestamp": "soon"}]))
    with pytest.raises(ConnectorError, match="trade time that is not a number"):
        rest_trades("polymarket", s.url, "7", DAY, rate=0, condition_id=cid)


def test_kraken_spot_pair_name_rate_limit_and_errors(serve: Callable[[Script], Server]) -> None:
    pairs = {"XXBTZUSD": {"altname": "XBTUSD", "wsname": "XBT/USD"}}
    t0 = 1709251200

    def script(n: int, q: dict[str, list[str]]) -> tuple[int, dict[str, str], bytes]:
        if "pair" not in q:
            return _json({"error": [], "result": pairs})
        if n == 1:  # Kraken says "slow down" in a 200 body
            return _json({"error": ["EAPI:Rate limit exceeded"]})
        rows = [["1.0", "2.0", t0 - 1, "b", "l", "", 9], ["1.0", "2.0", t0 + 5, "s", "m", "", 10]]
        if q["since"] != [str(t0)]:
            rows = [["1.0", "2.0", t0 + 86_400, "s", "m", "", 11]]
        return _json({"error": [], "result": {"XXBTZUSD": rows, "last": str(t0 + 6)}})

    s = serve(script)
    got = rest_trades("kraken", s.url.replace("/trade-api/v2", "/0"), "BTC/USD", DAY, rate=0)
    # before the day and after it left out; the v2 name found through AssetPairs' wsname
    assert [(t["trade_id"], t["ts"]) for t in got] == [("10", (t0 + 5) * 1000)]
    assert [p for p, _ in s.requests] == ["/0/public/AssetPairs"] + ["/0/public/Trades"] * 2
    assert s.requests[2][1]["pair"] == ["XXBTZUSD"]
    with pytest.raises(ConfigError, match="no pair 'DOGE/USD'"):
        rest_trades("kraken", s.url.replace("/trade-api/v2", "/0"), "DOGE/USD", DAY, rate=0)
    s = serve(lambda n, q: _json({"error": ["EQuery:Unknown asset pair"]}))
    with pytest.raises(ConnectorError, match="EQuery:Unknown asset pair") as err:
        rest_trades("kraken", s.url, "BTC/USD", DAY, rate=0)
    assert len(s.requests) == 1 and "\n" not in str(err.value)  # not asked again


def test_cli_says_it_in_one_line(serve: Callable[[Script], Server], tmp_path: Path) -> None:
    s = serve(lambda n, q: (200, {"Content-Type": "text/plain"}, b"Bad Gateway"))
    env = {**os.environ, "DATABASE_URL": ""}
    env.pop("SSMD_ARCHIVE_DIR", None)
    r = subprocess.run(
        [
            *(sys.executable, "-m", "ssmd", "dq", "trades", "--ticker", "KX-1"),
            *("--date", "2024-03-01", "--dir", str(tmp_path), "--rest-url", s.url),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "not a JSON page" in lines[0], r.stderr
