"""One Polymarket market-channel WebSocket connection: subscriptions, books, updates, PING/PONG."""

from __future__ import annotations

import time
from typing import Any

import orjson

from ssmd.sim.base import Link, Session
from ssmd.sim.polymarket.book import PRICES, Market, order_hash, size_text
from ssmd.sim.polymarket.rest import PolymarketRest
from ssmd.sim.polymarket.universe import Condition

__all__ = ["PolymarketSession", "PolymarketVenue"]


class PolymarketSession(Session):
    venue: PolymarketVenue

    def __init__(self, venue: PolymarketVenue, conn: Link) -> None:
        super().__init__(venue, conn)
        self.assets: dict[str, None] = {}  # subscribed token ids, in order
        self.markets: dict[str, Market] = {}  # condition id -> book
        self.streams: list[tuple[Market, bool]] = []  # active tokens: (market, is_yes)
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

    def _market(self, cond: Condition) -> Market:
        m = self.markets.get(cond.condition_id)
        if m is None:
            m = self.markets[cond.condition_id] = Market(cond, self.rnd)
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

    def _book(self, m: Market, yes: bool, ts: str, event_type: bool = True) -> str:
        cond = m.cond
        bids, asks = m.ladder(yes)
        head = '"event_type":"book",' if event_type else ""
        last = m.last if yes else 1000 - m.last
        return (
            f'{{"market":"{cond.condition_id}","asset_id":"{cond.yes if yes else cond.no}",'
            f'"timestamp":"{ts}","hash":"{order_hash(self.rng)}","bids":[{bids}],"asks":[{asks}],'
            f'{head}"tick_size":"{PRICES[m.tick]}","last_trade_price":"{PRICES[last]}"}}'
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
        ms = time.time_ns() // 1_000_000
        ts = str(ms)
        trade_log = self.venue.trade_log
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
                        f'{{"asset_id":"{t}","price":"{PRICES[price]}","size":"{size_text(s)}",'
                        f'"side":"{side}","hash":"{order_hash(rng)}","best_bid":"{PRICES[tb]}",'
                        f'"best_ask":"{PRICES[ta]}"}}'
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
                            f'"best_bid":"{PRICES[tb]}","best_ask":"{PRICES[ta]}",'
                            f'"spread":"{PRICES[max(0, ta - tb)]}","timestamp":"{ts}"}}'
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
                bits = rng.getrandbits(256)
                txh = f"0x{bits:064x}"
                side = "BUY" if buy else "SELL"
                sz = size_text(size)
                # the venue leaves transaction_hash out of some frames: about 3 in 10 here
                # (taken from the hash's bits, so the random stream is unchanged)
                tail = f',"transaction_hash":"{txh}"}}' if bits % 10 >= 3 else "}"
                events.append(
                    f'{{"asset_id":"{token}","event_type":"last_trade_price","fee_rate_bps":"0",'
                    f'"market":"{cond.condition_id}","price":"{PRICES[price]}",'
                    f'"side":"{side}","size":"{sz}","timestamp":"{ts}"' + tail
                )
                trade_log.add(cond.condition_id, ms, token, side, sz, PRICES[price], txh)
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

    def _tick_change(self, m: Market, toks: list[tuple[str, bool]], ts: str) -> list[str]:
        b, a = m.best()
        want = 1 if (b > 960 or a < 40) else 10
        if want == m.tick_state:
            return []
        old, m.tick_state = m.tick_state, want
        m.tick = want
        self.sent["tick_size_change"] += len(toks)
        return [
            f'{{"event_type":"tick_size_change","asset_id":"{t}","market":"{m.cond.condition_id}",'
            f'"old_tick_size":"{PRICES[old]}","new_tick_size":"{PRICES[want]}","timestamp":"{ts}"}}'
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


class PolymarketVenue(PolymarketRest):
    """The simulated venue: its REST listings and a :class:`PolymarketSession` per connection."""

    def session(self, conn: Link) -> Session:
        return PolymarketSession(self, conn)
