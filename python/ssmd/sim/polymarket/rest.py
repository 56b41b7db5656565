"""Polymarket REST over the simulated universe: Gamma ``/markets``, ``/events`` (keyset and
legacy), CLOB ``/clob/markets`` and the Data API's ``/data/trades`` (the trades it sent)."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import orjson

from ssmd.sim.base import TradeHistory, Venue
from ssmd.sim.http import (
    HttpError,
    Request,
    Response,
    decode_cursor,
    encode_cursor,
    json_response,
    page,
)
from ssmd.sim.polymarket.universe import Condition, build_universe

__all__ = ["PolymarketRest", "TradeLog"]

#: the Data API's ``/trades`` bounds (limit and offset, the documented 0..10000)
DATA_MAX_LIMIT = 10_000


class TradeLog(TradeHistory[tuple[int, str, str, str, str, str]]):
    """The ``last_trade_price`` trades sent, newest ``per_market`` per condition, for the
    Data API's ``GET /trades`` (the venue's public trade history, which ``ssmd dq
    trades`` compares the archive with): ``(ms, token, side, size, price, transaction
    hash)`` as sent."""

    def __init__(self, per_market: int = 20_000) -> None:
        super().__init__(per_market)

    def add(
        self, condition_id: str, ms: int, token: str, side: str, size: str, price: str, txh: str
    ) -> None:
        self.append(condition_id, (ms, token, side, size, price, txh))

    def newest_first(
        self, markets: Sequence[str] | None, side: str | None
    ) -> list[tuple[str, tuple[int, str, str, str, str, str]]]:
        """``(condition id, trade)`` of ``markets`` (all when None), newest first (the
        later sent first among equal times)."""
        conds = self.trades if markets is None else [m for m in markets if m in self.trades]
        out = [(c, t) for c in conds for t in self.trades[c] if side is None or t[2] == side]
        out.reverse()
        out.sort(key=lambda ct: ct[1][0], reverse=True)
        return out


class PolymarketRest(Venue):
    name = "polymarket"
    ws_path = "/ws/market"
    rest_path = ""

    def __init__(self, server: Any, instruments: Sequence[str] | int | None, seed: int) -> None:
        super().__init__(server, instruments, seed)
        self.conditions = build_universe(self.rng, instruments)
        self.by_token: dict[str, tuple[Condition, bool]] = {}
        for c in self.conditions:
            if not c.closed:
                self.by_token[c.yes] = (c, True)
                self.by_token[c.no] = (c, False)
        self.by_condition = {c.condition_id: c for c in self.conditions}
        self.trade_log = TradeLog()
        #: the Data API answers 400 past this ``offset`` (tests lower it)
        self.data_max_offset = DATA_MAX_LIMIT

    def instrument_ids(self) -> list[str]:
        return list(self.by_token)

    def extra_urls(self, base: str) -> dict[str, str]:
        return {"gamma": base, "clob": f"{base}/clob", "data": f"{base}/data"}

    def rest_error(
        self, status: int, message: str, headers: Sequence[tuple[str, str]] = ()
    ) -> Response:
        return json_response({"error": message}, status, headers)

    # -- REST ------------------------------------------------------------------

    def gamma_market(self, c: Condition) -> dict[str, Any]:
        yes_px = c.mid / 1000
        ev = {k: v for k, v in c.event.items()}
        return {
            "id": c.gamma_id,
            "question": c.question,
            "conditionId": c.condition_id,
            "slug": c.slug,
            "endDate": "2026-12-31T00:00:00Z",
            "startDate": "2026-01-01T00:00:00Z",
            "description": f"This market resolves to Yes if: {c.question}",
            "outcomes": '["Yes", "No"]',
            "outcomePrices": orjson.dumps([f"{yes_px:.3f}", f"{1 - yes_px:.3f}"]).decode(),
            "clobTokenIds": orjson.dumps([c.yes, c.no]).decode(),
            "questionID": c.question_id,
            "active": True,
            "closed": c.closed,
            "archived": False,
            "acceptingOrders": not c.closed,
            "enableOrderBook": True,
            "negRisk": bool(c.event["negRisk"]),
            "orderPriceMinTickSize": c.tick / 1000,
            "orderMinSize": 5,
            "volume": "48210.551204",
            "volumeNum": 48210.551204,
            "liquidity": "12044.3071",
            "liquidityNum": 12044.3071,
            "bestBid": round(yes_px - 0.01, 3),
            "bestAsk": round(yes_px + 0.01, 3),
            "lastTradePrice": yes_px,
            "spread": 0.02,
            "category": None,
            "umaResolutionStatus": "resolved" if c.closed else None,
            "events": [ev],
        }

    def clob_market(self, c: Condition) -> dict[str, Any]:
        return {
            "condition_id": c.condition_id,
            "question_id": c.question_id,
            "question": c.question,
            "description": f"This market resolves to Yes if: {c.question}",
            "market_slug": c.slug,
            "tokens": [
                {"token_id": c.yes, "outcome": "Yes", "price": c.mid / 1000, "winner": False},
                {"token_id": c.no, "outcome": "No", "price": 1 - c.mid / 1000, "winner": False},
            ],
            "active": True,
            "closed": c.closed,
            "archived": False,
            "accepting_orders": not c.closed,
            "enable_order_book": True,
            "minimum_order_size": 5,
            "minimum_tick_size": c.tick / 1000,
            "maker_base_fee": 0,
            "taker_base_fee": 0,
            "neg_risk": bool(c.event["negRisk"]),
            "end_date_iso": "2026-12-31T00:00:00Z",
            "tags": [c.category],
        }

    def data_trade(self, cid: str, t: tuple[int, str, str, str, str, str]) -> dict[str, Any]:
        """One Data API ``/trades`` item: a taker trade, time in unix seconds."""
        ms, token, side, size, price, txh = t
        c = self.by_condition[cid]
        yes = token == c.yes
        return {
            "proxyWallet": f"0x{txh[2:42]}",
            "side": side,
            "asset": token,
            "conditionId": cid,
            "size": float(size),
            "price": float(price),
            "timestamp": ms // 1000,
            "title": c.question,
            "slug": c.slug,
            "icon": "",
            "eventSlug": c.event["slug"],
            "outcome": "Yes" if yes else "No",
            "outcomeIndex": 0 if yes else 1,
            "name": "",
            "pseudonym": "",
            "bio": "",
            "profileImage": "",
            "profileImageOptimized": "",
            "transactionHash": txh,
        }

    def data_trades(self, req: Request) -> Response:
        """Data API ``GET /trades``: ``market`` (condition ids, comma-separated), ``side``,
        ``limit``/``offset`` paging, newest first; every trade is a taker's, so
        ``takerOnly`` changes nothing here; ``user`` has no trades (no wallets)."""
        limit = req.int_arg("limit", 100, 0, DATA_MAX_LIMIT)
        offset = req.int_arg("offset", 0, 0, 10**9)
        if offset > self.data_max_offset:
            raise HttpError(400, f"offset must be between 0 and {self.data_max_offset}")
        markets = [m for raw in req.args("market") for m in raw.split(",") if m] or None
        if markets is not None and req.arg("eventId"):
            raise HttpError(400, "market and eventId are mutually exclusive")
        side = (req.arg("side") or "").upper() or None
        if side not in (None, "BUY", "SELL"):
            raise HttpError(400, f"invalid side: {side!r}")
        if req.arg("user"):
            return json_response([])
        chosen = self.trade_log.newest_first(markets, side)[offset : offset + limit]
        return json_response([self.data_trade(c, t) for c, t in chosen])

    def _filtered(self, req: Request) -> list[Condition]:
        conds = self.conditions
        closed = req.bool_arg("closed")
        if closed is not None:
            conds = [c for c in conds if c.closed == closed]
        active = req.bool_arg("active")
        if active is False:
            conds = []
        for key, attr in (
            ("condition_ids", "condition_id"),
            ("id", "gamma_id"),
            ("slug", "slug"),
        ):
            wanted = set(req.args(key))
            if wanted:
                conds = [c for c in conds if getattr(c, attr) in wanted]
        tokens = set(req.args("clob_token_ids"))
        if tokens:
            conds = [c for c in conds if c.yes in tokens or c.no in tokens]
        return conds

    def _events(self, conds: list[Condition]) -> list[dict[str, Any]]:
        events: dict[str, dict[str, Any]] = {}
        for c in conds:
            ev = events.get(c.event["id"])
            if ev is None:
                ev = events[c.event["id"]] = {**c.event, "markets": []}
            market = self.gamma_market(c)
            del market["events"]
            ev["markets"].append(market)
        return list(events.values())

    def rest(self, req: Request) -> Response:
        path = req.path.rstrip("/")
        if path in ("/markets/keyset", "/events/keyset"):
            if req.arg("offset") is not None:
                raise HttpError(400, "offset is not supported; use after_cursor")
            events = path.startswith("/events")
            limit = req.int_arg("limit", 100 if not events else 500, 1, 100 if not events else 500)
            after = req.arg("after_cursor")
            start = decode_cursor(after) if after else 0
            items: list[dict[str, Any]]
            rec = self.records
            if events:
                items_all = self._events(self._filtered(req))
                chunk_e, nxt = page(items_all, start, limit)
                items = chunk_e
            else:
                listed = [c for c in self._filtered(req) if rec.listed("markets", c.condition_id)]
                chunk_c, nxt = page(listed, start, limit)
                items = [
                    rec.record("markets", c.condition_id, self.gamma_market(c)) for c in chunk_c
                ]
                if not after:
                    items = rec.head("markets", items)
            body: dict[str, Any] = {"events" if events else "markets": items}
            cursor = rec.cursor(after, encode_cursor(nxt) if nxt is not None else None)
            if cursor is not None:
                body["next_cursor"] = cursor
            return json_response(body)
        if path in ("/markets", "/events"):
            limit = req.int_arg("limit", 20, 0, 500)
            offset = req.int_arg("offset", 0, 0, 10**9)
            if path == "/events":
                return json_response(page(self._events(self._filtered(req)), offset, limit)[0])
            chunk, _ = page(self._filtered(req), offset, limit)
            return json_response([self.gamma_market(c) for c in chunk])
        if path == "/clob/markets":
            raw = req.arg("next_cursor") or "MA=="
            if raw == "LTE=":
                return json_response({"limit": 0, "count": 0, "next_cursor": "LTE=", "data": []})
            try:
                start = int(base64.b64decode(raw).decode())
            except ValueError:
                raise HttpError(400, f"invalid next_cursor {raw!r}") from None
            limit = 500
            chunk, nxt = page(self.conditions, start, limit)
            cursor = base64.b64encode(str(nxt).encode()).decode() if nxt is not None else "LTE="
            data = [self.clob_market(c) for c in chunk]
            return json_response(
                {"limit": limit, "count": len(data), "next_cursor": cursor, "data": data}
            )
        if path == "/data/trades":
            return self.data_trades(req)
        raise HttpError(404, "not found")
