"""Polymarket CLOB market channel and Gamma/CLOB REST (protocol sheet ``polymarket.md``).

WebSocket ``/ws/market``: the client's first frame
``{"assets_ids":[…],"type":"market","custom_feature_enabled":true}`` (no
ack), later ``{"assets_ids":[…],"operation":"subscribe"|"unsubscribe"}``;
an initial ``book`` per token (grouped into array frames of several books,
some without ``event_type``, as the real server sends them), then
``price_change`` (current schema), ``last_trade_price`` followed by the
re-sent ``book``, ``tick_size_change`` when a book crosses 0.96/0.04, and
with custom features ``best_bid_ask``, ``new_market`` and
``market_resolved``. Text ``PING`` is answered with text ``PONG``. Past 500
assets on one connection the excess gets its initial book but no updates
(what was observed live). Each condition has one book in YES terms; the NO
token's book is its mirror (NO bid at 1 - YES ask).

REST (Gamma at the root): ``/markets/keyset`` (``after_cursor`` →
``next_cursor``, absent on the last page), ``/markets`` (legacy
``limit``/``offset``, a bare array), ``/events/keyset``, ``/events``; CLOB
under ``/clob``: ``/clob/markets`` (``next_cursor``, ``LTE=`` at the end).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from ssmd.sim.http import (
    HttpError,
    Request,
    Response,
    decode_cursor,
    encode_cursor,
    json_response,
    page,
)
from ssmd.sim.server import Session, SimConnection, Venue

__all__ = ["Condition", "PolymarketVenue"]

_TOPICS = (
    ("Crypto", "crypto", "Will {x} close above ${n} on {d}?", ("BTC", "ETH", "SOL", "XRP")),
    (
        "Politics",
        "politics",
        "Will {x} win the {d} election?",
        ("Alvarez", "Brooks", "Chen", "Diaz"),
    ),
    ("Sports", "sports", "Will the {x} win on {d}?", ("Hawks", "Lions", "Tigers", "Bears")),
    ("Finance", "finance", "Will {x} close above ${n} on {d}?", ("NVDA", "AAPL", "TSLA", "MSFT")),
    (
        "Pop Culture",
        "pop-culture",
        "Will {x} top the charts on {d}?",
        ("Aria", "Bex", "Cole", "Dune"),
    ),
)
_DATES = ("January 30", "February 27", "March 31", "April 30", "May 29", "June 30")


@dataclass
class Condition:
    """One binary market (two tokens) and its Gamma/CLOB metadata."""

    condition_id: str
    gamma_id: str
    question_id: str
    question: str
    slug: str
    yes: str
    no: str
    event: dict[str, Any]
    category: str
    tick: int  # price tick in thousandths (10 = 0.01)
    mid: int  # starting YES mid, thousandths
    closed: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def tokens(self) -> tuple[str, str]:
        return self.yes, self.no


def _price(v: int) -> str:
    """Thousandths as Polymarket writes prices: ``480`` → ``0.48``, ``1000`` → ``1``."""
    if v >= 1000:
        return "1"
    if v <= 0:
        return "0"
    return f"0.{v:03d}".rstrip("0")


#: thousandths -> price text
_PRICES = [_price(v) for v in range(1001)]


def _size(v: int) -> str:
    """Hundredths of a share as a trimmed decimal string: ``3000`` → ``30``."""
    whole, frac = divmod(v, 100)
    return f"{whole}.{frac:02d}".rstrip("0").rstrip(".") if frac else str(whole)


def _universe(rng: Any, instruments: Sequence[str] | int | None) -> list[Condition]:
    ids: list[str | None]
    if instruments is None:
        ids = [None] * 100
    elif isinstance(instruments, int):
        ids = [None] * instruments
    else:
        ids = list(dict.fromkeys(instruments))
    out: list[Condition] = []
    event: dict[str, Any] = {}
    left = 0
    for i, cid in enumerate(ids):
        cat, tag, template, names = _TOPICS[i % len(_TOPICS)]
        if left == 0:
            left = 1 + int(rng.random() * 3)
            eid = str(100_000 + i)
            d = _DATES[(i // 7) % len(_DATES)]
            event = {
                "id": eid,
                "ticker": f"{tag}-{eid}",
                "slug": f"{tag}-{eid}",
                "title": template.format(x="___", n="___", d=d),
                "description": f"Simulated {cat.lower()} event {eid}.",
                "active": True,
                "closed": False,
                "archived": False,
                "negRisk": left > 1,
                "tags": [{"id": str(1000 + i % len(_TOPICS)), "label": cat, "slug": tag}],
                "startDate": "2026-01-01T00:00:00Z",
                "endDate": "2026-12-31T00:00:00Z",
            }
        left -= 1
        d = _DATES[(i // 7) % len(_DATES)]
        name = names[i % len(names)]
        question = template.format(x=name, n=100 + 5 * i, d=d)
        extreme = rng.random() < 0.1
        mid = (950 if rng.random() < 0.5 else 50) if extreme else 200 + int(rng.random() * 600)
        out.append(
            Condition(
                condition_id=cid or f"0x{rng.getrandbits(256):064x}",
                gamma_id=str(1_000_000 + i),
                question_id=f"0x{rng.getrandbits(256):064x}",
                question=question,
                slug=f"{tag}-{name.lower()}-{i}",
                yes=str(rng.getrandbits(255) | (1 << 254)),
                no=str(rng.getrandbits(255) | (1 << 254)),
                event=event,
                category=cat,
                tick=1 if extreme else 10,
                mid=mid,
                closed=instruments is None and i % 20 == 19,
            )
        )
    return out


class PolymarketVenue(Venue):
    name = "polymarket"
    ws_path = "/ws/market"
    rest_path = ""

    def __init__(self, server: Any, instruments: Sequence[str] | int | None, seed: int) -> None:
        super().__init__(server, instruments, seed)
        self.conditions = _universe(self.rng, instruments)
        self.by_token: dict[str, tuple[Condition, bool]] = {}
        for c in self.conditions:
            if not c.closed:
                self.by_token[c.yes] = (c, True)
                self.by_token[c.no] = (c, False)

    def instrument_ids(self) -> list[str]:
        return list(self.by_token)

    def extra_urls(self, base: str) -> dict[str, str]:
        return {"gamma": base, "clob": f"{base}/clob"}

    def session(self, conn: SimConnection) -> Session:
        return PolymarketSession(self, conn)

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
        raise HttpError(404, "not found")


class _Market:
    """One condition's book on one connection (YES terms, thousandths; sizes in hundredths)."""

    __slots__ = (
        "_best",
        "asks",
        "bids",
        "cond",
        "last",
        "na",
        "nb",
        "tick",
        "tick_state",
        "ya",
        "yb",
    )

    def __init__(self, cond: Condition, rnd: Any) -> None:
        self.cond = cond
        self.tick = cond.tick
        self.tick_state = cond.tick
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        # wire text of each level: YES bids/asks, NO bids (from YES asks), NO asks (from YES bids)
        self.yb: dict[int, str] = {}
        self.ya: dict[int, str] = {}
        self.nb: dict[int, str] = {}
        self.na: dict[int, str] = {}
        self._best: tuple[int, int] | None = None
        step = max(cond.tick, 10)
        b = cond.mid - step // 2 if step > 1 else cond.mid - 1
        b -= b % cond.tick
        a = b + step
        for i in range(8):
            if b - i * step > 0:
                self.store(True, b - i * step, 100 * (1 + int(rnd() ** 2 * 5000)))
            if a + i * step < 1000:
                self.store(False, a + i * step, 100 * (1 + int(rnd() ** 2 * 5000)))
        self.last = b

    def store(self, bid: bool, p: int, s: int) -> None:
        """Set a YES level (``s == 0`` removes it) and its wire texts."""
        side, own, mirror = (self.bids, self.yb, self.na) if bid else (self.asks, self.ya, self.nb)
        self._best = None
        if s <= 0:
            side.pop(p, None)
            own.pop(p, None)
            mirror.pop(p, None)
            return
        side[p] = s
        size = _size(s)
        own[p] = f'{{"price":"{_PRICES[p]}","size":"{size}"}}'
        mirror[p] = f'{{"price":"{_PRICES[1000 - p]}","size":"{size}"}}'

    def best(self) -> tuple[int, int]:
        b = self._best
        if b is None:
            b = self._best = (max(self.bids, default=0), min(self.asks, default=1000))
        return b

    def token_best(self, yes: bool) -> tuple[int, int]:
        b, a = self.best()
        return (b, a) if yes else (1000 - a, 1000 - b)

    def ladder(self, yes: bool) -> tuple[str, str]:
        """bids ascending (best last), asks descending (best last), in the token's terms."""
        if yes:
            yb, ya = self.yb, self.ya
            return (
                ",".join([yb[p] for p in sorted(self.bids)]),
                ",".join([ya[p] for p in sorted(self.asks, reverse=True)]),
            )
        nb, na = self.nb, self.na
        return (
            ",".join([nb[p] for p in sorted(self.asks, reverse=True)]),
            ",".join([na[p] for p in sorted(self.bids)]),
        )

    def change(self, rnd: Any) -> tuple[bool, int, int]:
        """One level change in YES terms: (bid side, price, new size; 0 removes)."""
        bid = rnd() < 0.5
        side = self.bids if bid else self.asks
        b, a = self.best()
        r = rnd()
        tick = self.tick
        if (r < 0.3 and len(side) > 3) or len(side) > 14:
            levels = sorted(side, reverse=bid)
            p = levels[int(rnd() ** 2 * len(levels))]
            self.store(bid, p, 0)
            return bid, p, 0
        if r < 0.55 and a - b > tick:
            p = b + tick if bid else a - tick
        elif r < 0.75 or not side:
            far = (min(side) if bid else max(side)) if side else (b if bid else a)
            p = far - tick * (1 + int(rnd() * 3)) if bid else far + tick * (1 + int(rnd() * 3))
            if not 0 < p < 1000:
                p = b if bid else a
                if p not in side:
                    return bid, p, 0
        else:
            levels = sorted(side, reverse=bid)
            p = levels[int(rnd() ** 2 * len(levels))]
        s = 100 * (1 + int(rnd() ** 2 * 5000)) + int(rnd() * 100)
        self.store(bid, p, s)
        return bid, p, s


def _hash(rng: Any) -> str:
    return f"{rng.getrandbits(160):040x}"


class PolymarketSession(Session):
    venue: PolymarketVenue

    def __init__(self, venue: PolymarketVenue, conn: SimConnection) -> None:
        super().__init__(venue, conn)
        self.assets: dict[str, None] = {}  # subscribed token ids, in order
        self.markets: dict[str, _Market] = {}  # condition id -> book
        self.streams: list[tuple[_Market, bool]] = []  # active tokens: (market, is_yes)
        self.active: set[str] = set()
        self.custom = False
        self.initialized = False
        self.limit = venue.options.polymarket_asset_limit

    def on_text(self, data: bytes) -> None:
        if data.strip() == b"PING":
            self.send(b"PONG", "pong")
            return
        try:
            req = orjson.loads(data)
        except orjson.JSONDecodeError:
            self.server.sent_controls["ignored"] += 1
            return
        ids = req.get("assets_ids") if isinstance(req, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            self.server.sent_controls["ignored"] += 1
            return
        op = req.get("operation", "subscribe")
        if req.get("custom_feature_enabled") is True:
            self.custom = True
        if op == "unsubscribe":
            for i in ids:
                self.assets.pop(i, None)
            self._rebuild()
            return
        if op != "subscribe":
            self.server.sent_controls["ignored"] += 1
            return
        self.initialized = True
        new = [i for i in dict.fromkeys(ids) if i not in self.assets and i in self.venue.by_token]
        for i in new:
            self.assets[i] = None
        self._rebuild()
        if req.get("initial_dump", True) and new:
            self._dump(new)

    def _market(self, cond: Condition) -> _Market:
        m = self.markets.get(cond.condition_id)
        if m is None:
            m = self.markets[cond.condition_id] = _Market(cond, self.rnd)
        return m

    def _rebuild(self) -> None:
        streams = []
        active = set()
        for i, token in enumerate(self.assets):
            if i >= self.limit:
                break  # past the cap: no updates (observed live)
            cond, yes = self.venue.by_token[token]
            streams.append((self._market(cond), yes))
            active.add(token)
        self.streams, self.active = streams, active

    def weight(self) -> int:
        return len(self.streams)

    def subscription_count(self) -> int:
        return len(self.assets)

    def _book(self, m: _Market, yes: bool, ts: str, event_type: bool = True) -> str:
        cond = m.cond
        bids, asks = m.ladder(yes)
        head = '"event_type":"book",' if event_type else ""
        last = m.last if yes else 1000 - m.last
        return (
            f'{{"market":"{cond.condition_id}","asset_id":"{cond.yes if yes else cond.no}",'
            f'"timestamp":"{ts}","hash":"{_hash(self.rng)}","bids":[{bids}],"asks":[{asks}],'
            f'{head}"tick_size":"{_PRICES[m.tick]}","last_trade_price":"{_PRICES[last]}"}}'
        )

    def _dump(self, tokens: list[str]) -> None:
        ts = str(time.time_ns() // 1_000_000)
        rnd = self.rnd
        frames: list[bytes] = []
        group: list[str] = []
        size = 1 + int(rnd() * 5)
        for t in tokens:
            cond, yes = self.venue.by_token[t]
            group.append(self._book(self._market(cond), yes, ts, event_type=rnd() >= 0.3))
            if len(group) >= size:
                frames.append(self._frame(group))
                group, size = [], 1 + int(rnd() * 5)
        if group:
            frames.append(self._frame(group))
        self.conn.write_data(frames)
        self.sent["book"] += len(tokens)

    @staticmethod
    def _frame(events: list[str]) -> bytes:
        if len(events) == 1 and events[0].find('"event_type"') >= 0:
            return events[0].encode()
        return ("[" + ",".join(events) + "]").encode()

    def generate(self, n: int, out: list[bytes]) -> None:
        streams = self.streams
        if not streams:
            return
        count = len(streams)
        rnd = self.rnd
        rng = self.rng
        ts = str(time.time_ns() // 1_000_000)
        stalled = self.server.instrument_stalled if self.server.instrument_stalls else None
        active = self.active
        custom = self.custom
        sent = self.sent
        produced = 0
        attempts = 0
        while produced < n and attempts < 2 * n + 8:
            attempts += 1
            m, yes = streams[int(rnd() * count)]
            cond = m.cond
            if stalled and (stalled(cond.yes) or stalled(cond.no) or stalled(cond.condition_id)):
                continue
            toks = [(t, y) for t, y in ((cond.yes, True), (cond.no, False)) if t in active]
            events: list[str] = []
            r = rnd()
            if r < 0.8:
                before = m.best()
                bid, p, s = m.change(rnd)
                items = []
                for t, y in toks:
                    tb, ta = m.token_best(y)
                    price = p if y else 1000 - p
                    side = "BUY" if bid == y else "SELL"
                    items.append(
                        f'{{"asset_id":"{t}","price":"{_PRICES[price]}","size":"{_size(s)}",'
                        f'"side":"{side}","hash":"{_hash(rng)}","best_bid":"{_PRICES[tb]}",'
                        f'"best_ask":"{_PRICES[ta]}"}}'
                    )
                events.append(
                    f'{{"market":"{cond.condition_id}","price_changes":[{",".join(items)}],'
                    f'"timestamp":"{ts}","event_type":"price_change"}}'
                )
                sent["price_change"] += 1
                if custom and m.best() != before:
                    for t, y in toks:
                        tb, ta = m.token_best(y)
                        events.append(
                            f'{{"event_type":"best_bid_ask","market":"{cond.condition_id}","asset_id":"{t}",'
                            f'"best_bid":"{_PRICES[tb]}","best_ask":"{_PRICES[ta]}",'
                            f'"spread":"{_PRICES[max(0, ta - tb)]}","timestamp":"{ts}"}}'
                        )
                        sent["best_bid_ask"] += 1
                events.extend(self._tick_change(m, toks, ts))
            elif r < 0.998 or not custom:
                buy = rnd() < 0.5
                tb, ta = m.token_best(yes)
                price = ta if buy else tb
                size = 100 + int(rnd() ** 3 * 200_000)
                m.last = price if yes else 1000 - price
                # the trade takes liquidity from the touched level, then books are re-sent
                ask_side = buy == yes
                book = m.asks if ask_side else m.bids
                level = price if yes else 1000 - price
                if level in book:
                    left = book[level] - size
                    if left > 0 or len(book) <= 2:
                        m.store(not ask_side, level, max(left, 100))
                    else:
                        m.store(not ask_side, level, 0)
                token = cond.yes if yes else cond.no
                events.append(
                    f'{{"asset_id":"{token}","event_type":"last_trade_price","fee_rate_bps":"0",'
                    f'"market":"{cond.condition_id}","price":"{_PRICES[price]}",'
                    f'"side":"{"BUY" if buy else "SELL"}","size":"{_size(size)}","timestamp":"{ts}",'
                    f'"transaction_hash":"0x{rng.getrandbits(256):064x}"}}'
                )
                sent["trade"] += 1
                for _t, y in toks:
                    events.append(self._book(m, y, ts))
                    sent["book"] += 1
            else:
                other = self.venue.conditions[int(rnd() * len(self.venue.conditions))]
                if stalled and (
                    stalled(other.yes) or stalled(other.no) or stalled(other.condition_id)
                ):
                    continue  # a stalled market is silent on the lifecycle events too
                events.append(self._lifecycle(other, ts, resolved=rnd() < 0.5))
            if len(events) > 1 and rnd() < 0.3:
                out.append(("[" + ",".join(events) + "]").encode())  # a burst in one array frame
            else:
                out.extend(e.encode() for e in events)
            produced += len(events)

    def _tick_change(self, m: _Market, toks: list[tuple[str, bool]], ts: str) -> list[str]:
        b, a = m.best()
        want = 1 if (b > 960 or a < 40) else 10
        if want == m.tick_state:
            return []
        old, m.tick_state = m.tick_state, want
        m.tick = want
        self.sent["tick_size_change"] += len(toks)
        return [
            f'{{"event_type":"tick_size_change","asset_id":"{t}","market":"{m.cond.condition_id}",'
            f'"old_tick_size":"{_PRICES[old]}","new_tick_size":"{_PRICES[want]}","timestamp":"{ts}"}}'
            for t, _ in toks
        ]

    def _lifecycle(self, cond: Condition, ts: str, resolved: bool) -> str:
        ev = cond.event
        body: dict[str, Any] = {
            "id": cond.gamma_id,
            "question": cond.question,
            "market": cond.condition_id,
            "slug": cond.slug,
            "description": f"This market resolves to Yes if: {cond.question}",
            "assets_ids": [cond.yes, cond.no],
            "outcomes": ["Yes", "No"],
        }
        if resolved:
            body["winning_asset_id"] = cond.yes
            body["winning_outcome"] = "Yes"
        body["event_message"] = {
            "id": ev["id"],
            "ticker": ev["ticker"],
            "slug": ev["slug"],
            "title": ev["title"],
            "description": ev["description"],
        }
        body["timestamp"] = ts
        body["event_type"] = "market_resolved" if resolved else "new_market"
        self.sent[body["event_type"]] += 1
        return orjson.dumps(body).decode()
