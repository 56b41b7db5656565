"""One Kraken Futures v1 WebSocket connection: feeds, snapshots, generated data, heartbeats, the ping rule."""

from __future__ import annotations

import calendar
import time

import orjson
from picows import WSCloseCode

from ssmd.sim._fmt import BatchClock, trim, uuid4
from ssmd.sim.base import Link, Session
from ssmd.sim.kraken_futures.book import SNAPSHOT_TRADES, Prod
from ssmd.sim.kraken_futures.rest import KrakenFuturesRest

__all__ = ["PRIVATE_FEEDS", "PUBLIC_FEEDS", "KrakenFuturesSession", "KrakenFuturesVenue"]


#: served feeds (``ticker_lite`` and candles are not simulated: an ``alert`` like any unknown feed)
PUBLIC_FEEDS = ("ticker", "trade", "book", "heartbeat")


PRIVATE_FEEDS = (
    "open_orders",
    "open_orders_verbose",
    "fills",
    "open_positions",
    "account_log",
    "balances",
    "notifications_auth",
)


#: stall keys of whole feeds (SimServer.inject("stall", channel=…)), by stream kind
_CHANNEL_KEYS = ("channel:book", "channel:trade", "channel:ticker")


_TRADE = (
    '{"feed":"trade","product_id":"%s","uid":"%s","side":"%s","type":"%s","seq":%d,'
    '"time":%d,"qty":%s,"price":%s}'
)


_DELTA = '{"feed":"book","product_id":"%s","side":"%s","seq":%d,"price":%s,"qty":%s,"timestamp":%d}'


class KrakenFuturesSession(Session):
    venue: KrakenFuturesVenue

    def __init__(self, venue: KrakenFuturesVenue, conn: Link) -> None:
        super().__init__(venue, conn)
        self.prods: dict[str, Prod] = {}
        self.streams: list[tuple[Prod, int]] = []  # (product, 0 book / 1 trade / 2 ticker)
        self.tickers: list[Prod] = []
        self.heartbeat_sub = False
        self.next_heartbeat = 0.0
        self.last_ping = time.monotonic()
        opts = venue.options
        self.heartbeat = opts.heartbeat_interval or 5.0
        self.ticker_interval = opts.ticker_interval
        # trade ids: a random UUID v4 prefix per connection and a counter (unique, cheap)
        self.uid_prefix = uuid4(self.rng)[:24]
        self.uid_count = int(self.rnd() * 2**40)
        self.clock = BatchClock()

    def on_open(self) -> None:
        self.send('{"event":"info","version":1}', "info")

    def on_ping(self) -> None:
        self.last_ping = time.monotonic()

    def housekeep(self, now: float) -> None:
        if now - self.last_ping > self.venue.options.ping_timeout:
            self.conn.close(WSCloseCode.OK, b"no ping")
            return
        if self.heartbeat_sub and now >= self.next_heartbeat:
            self.next_heartbeat = now + self.heartbeat
            self.send(f'{{"feed":"heartbeat","time":{time.time_ns() // 1_000_000}}}', "heartbeat")

    def _error(self, message: str, event: str = "error") -> None:
        self.send(orjson.dumps({"event": event, "message": message}), event)

    def on_text(self, data: bytes) -> None:
        try:
            req = orjson.loads(data)
        except orjson.JSONDecodeError:
            self._error("Json Error")
            return
        if not isinstance(req, dict):
            self._error("Json Error")
            return
        event = req.get("event")
        if event == "challenge":
            self.send(orjson.dumps({"event": "challenge", "message": uuid4(self.rng)}), "challenge")
            return
        if event not in ("subscribe", "unsubscribe"):
            self._error("Json Error")
            return
        feed = req.get("feed")
        if feed in PRIVATE_FEEDS:
            self._error("Failed to subscribe to authenticated feed", "alert")
            return
        if feed not in PUBLIC_FEEDS:
            self._error("Couldn't subscribe to invalid feed", "alert")
            return
        if feed == "heartbeat":
            self.heartbeat_sub = event == "subscribe"
            self.next_heartbeat = time.monotonic() + self.heartbeat
            self.send(orjson.dumps({"event": f"{event}d", "feed": "heartbeat"}), f"{event}d")
            return
        ids = req.get("product_ids")
        if (
            not isinstance(ids, list)
            or not ids
            or not all(isinstance(i, str) and i.upper() in self.venue.by_symbol for i in ids)
        ):
            self._error("Invalid product id")
            return
        ids = [i.upper() for i in ids]
        self.send(
            orjson.dumps({"event": f"{event}d", "feed": req["feed"], "product_ids": ids}),
            f"{event}d",
        )
        if event == "unsubscribe":
            for i in ids:
                st = self.prods.get(i)
                if st is not None:
                    setattr(st, f"sub_{feed}", False)
            self._rebuild()
            return
        now_ms = time.time_ns() // 1_000_000
        self.clock.sent(now_ms * 1_000_000)
        snaps: list[bytes] = []
        stalled = self.server.instrument_stalled
        for i in ids:
            st = self.prods.get(i)
            if st is None:
                st = self.prods[i] = Prod(self.venue.by_symbol[i], self.rnd)
            setattr(st, f"sub_{feed}", True)
            if stalled(i) or stalled(f"channel:{feed}"):
                continue  # acknowledged, but a stalled product sends nothing, not even a snapshot
            if feed == "ticker":
                snaps.append(self._ticker(st, now_ms).encode())
                st.next_ticker = time.monotonic() + self.ticker_interval
            elif feed == "trade":
                while len(st.recent) < SNAPSHOT_TRADES:
                    self._trade(st, now_ms - 1000 * (SNAPSHOT_TRADES - len(st.recent)))
                trades = ",".join(reversed(st.recent))  # newest first
                snaps.append(
                    f'{{"feed":"trade_snapshot","product_id":"{i}","trades":[{trades}]}}'.encode()
                )
            else:
                bids, asks = st.book.ladders()
                snaps.append(
                    f'{{"feed":"book_snapshot","product_id":"{i}","timestamp":{now_ms},"seq":{st.book_seq},'
                    f'"tickSize":null,"bids":[{bids}],"asks":[{asks}]}}'.encode()
                )
        kind = {"ticker": "ticker", "trade": "trade", "book": "book"}[feed]
        self.conn.write_data(snaps)
        self.sent[kind] += len(snaps)
        self._rebuild()

    def _rebuild(self) -> None:
        streams: list[tuple[Prod, int]] = []
        tickers = []
        for st in self.prods.values():
            if st.sub_book:
                streams.append((st, 0))
            if st.sub_trade:
                streams.append((st, 1))
            if st.sub_ticker:
                if self.ticker_interval > 0:
                    tickers.append(st)
                else:
                    streams.append((st, 2))
        self.streams, self.tickers = streams, tickers

    def weight(self) -> int:
        return len(self.streams) + len(self.tickers)

    def subscription_count(self) -> int:
        return sum(st.sub_book + st.sub_trade + st.sub_ticker for st in self.prods.values())

    def _trade(self, st: Prod, now_ms: int) -> str:
        rnd = self.rnd
        p = st.product
        buy = rnd() < 0.5
        price = st.book.asks[0] if buy else st.book.bids[-1]
        q = st.book.qty()
        st.trade_seq += 1
        st.volume += q
        st.last = price
        kind = "fill" if rnd() < 0.97 else ("liquidation" if rnd() < 0.7 else "block")
        uid = self._uid()
        side = "buy" if buy else "sell"
        qty, px = trim(q, p.qp), trim(price, p.pp)
        self.venue.trade_log.add(p.symbol, now_ms, st.trade_seq, uid, side, kind, qty, px)
        msg = _TRADE % (
            p.symbol,
            uid,
            side,
            kind,
            st.trade_seq,
            now_ms,
            qty,
            px,
        )
        st.recent.append(msg)
        return msg

    def _ticker(self, st: Prod, now_ms: int) -> str:
        p = st.product
        book = st.book
        b, a = book.bids[-1], book.asks[0]
        pp, qp = p.pp, p.qp
        rnd = self.rnd
        scale = 10**pp
        funding = ""
        if p.perpetual:
            hour = 3_600_000
            funding = (
                f'"funding_rate":{rnd() * 2 - 1:.12g},"funding_rate_prediction":{rnd() * 2 - 1:.12g},'
                f'"relative_funding_rate":{(rnd() - 0.5) * 4e-5:.12g},'
                f'"relative_funding_rate_prediction":{(rnd() - 0.5) * 4e-5:.12g},'
                f'"next_funding_rate_time":{(now_ms // hour + 1) * hour},'
            )
        maturity = 0
        dtm = 0
        if p.last_trading:
            maturity = calendar.timegm(time.strptime(p.last_trading, "%Y-%m-%dT%H:%M:%SZ")) * 1000
            dtm = max(0, (maturity - now_ms) // 86_400_000)
        mark = (b + a) / 2 / scale
        return (
            f'{{"time":{now_ms},"product_id":"{p.symbol}",{funding}"feed":"ticker",'
            f'"bid":{trim(b, pp)},"ask":{trim(a, pp)},"bid_size":{trim(book.levels[True, b], qp)},'
            f'"ask_size":{trim(book.levels[False, a], qp)},"volume":{trim(st.volume, qp)},"dtm":{dtm},'
            f'"leverage":"50x","index":{mark:.8g},"premium":0.0,"last":{trim(st.last, pp)},'
            f'"change":{rnd() * 4 - 2:.4g},"suspended":false,'
            f'"tag":"{"perpetual" if p.perpetual else "quarter"}","pair":"{p.pair}",'
            f'"openInterest":{trim(st.volume // 2 + 1, qp)},"markPrice":{mark:.10g},'
            f'"maturityTime":{maturity},"post_only":false,"volumeQuote":{st.volume / 10**qp * mark:.3f}}}'
        )

    def _uid(self) -> str:
        self.uid_count += 1
        return f"{self.uid_prefix}{self.uid_count & 0xFFFFFFFFFFFF:012x}"

    def generate(self, n: int, out: list[bytes]) -> None:
        clock = self.clock
        now_ms = clock.batch(n) // 1_000_000  # book and ticker updates: the batch's time
        stalled = self.server.instrument_stalled if self.server.instrument_stalls else None
        n_ticker = n_trade = n_book = 0
        ap = out.append
        if self.tickers:
            mono = time.monotonic()
            for st in self.tickers:
                if mono >= st.next_ticker and not (
                    stalled and (stalled(st.product.symbol) or stalled("channel:ticker"))
                ):
                    st.next_ticker = mono + self.ticker_interval
                    ap(self._ticker(st, now_ms).encode())
                    n_ticker += 1
        streams = self.streams
        count = len(streams)
        rnd = self.rnd
        attempts = 0
        while count and n_ticker + n_trade + n_book < n and attempts < 2 * n + 8:
            attempts += 1
            st, ch = streams[int(rnd() * count)]
            p = st.product
            if stalled and (stalled(p.symbol) or stalled(_CHANNEL_KEYS[ch])):
                continue
            if ch == 1:  # trades: spread over it
                ms = clock.at(n_ticker + n_trade + n_book) // 1_000_000
                ap(self._trade(st, ms).encode())
                n_trade += 1
            elif ch == 0:
                bid, price, q = st.book.step()
                st.book_seq += 1
                ap(
                    (
                        _DELTA
                        % (
                            p.symbol,
                            "buy" if bid else "sell",
                            st.book_seq,
                            trim(price, p.pp),
                            trim(q, p.qp),
                            now_ms,
                        )
                    ).encode()
                )
                n_book += 1
            else:
                ap(self._ticker(st, now_ms).encode())
                n_ticker += 1
        sent = self.sent
        sent["ticker"] += n_ticker
        sent["trade"] += n_trade
        sent["book"] += n_book


class KrakenFuturesVenue(KrakenFuturesRest):
    """The simulated venue: its REST listings and a :class:`KrakenFuturesSession` per connection."""

    def session(self, conn: Link) -> Session:
        return KrakenFuturesSession(self, conn)
