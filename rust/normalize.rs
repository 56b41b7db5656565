//! Normalization of venue messages to the neutral model, one JSON line per
//! record (the single JSONL encoding of `Trade`, `Quote`, `BookSnapshot`,
//! `BookDelta`, `Lifecycle`, `Status`). Prices and sizes keep their exact
//! decimal text; numbers on the wire become strings of the same digits.
//!
//! Field order per record type:
//! - trade: type, venue, instrument, ts, seq, price, size, side, trade_id
//! - quote: type, venue, instrument, ts, bid, bid_size, ask, ask_size, last
//! - book_snapshot: type, venue, instrument, ts, seq, bids, asks, checksum
//! - book_delta: type, venue, instrument, ts, seq, mode, changes, checksum
//! - lifecycle: type, venue, instrument, ts, event, detail
//! - status: type, venue, instrument, ts, status, detail

use std::cmp::Ordering;

use rustc_hash::FxHashMap;

use crate::decimal;
use crate::json::{self, Ty, Val};
use crate::model::Venue;

/// A text value for a record field.
#[derive(Debug, Clone)]
enum T<'a> {
    /// A JSON string literal copied from the wire (quotes included).
    Lit(&'a [u8]),
    /// Number text (written inside quotes).
    Num(&'a [u8]),
    Owned(String),
    Null,
}

impl<'a> T<'a> {
    fn of(v: Option<Val<'a>>) -> T<'a> {
        match v {
            Some(v) if v.ty == Ty::String && v.raw.len() > 2 => T::Lit(v.raw),
            Some(v) if v.ty == Ty::Number => T::Num(v.raw),
            _ => T::Null,
        }
    }

    fn is_null(&self) -> bool {
        matches!(self, T::Null)
    }

    /// Digits of the value, for arithmetic and sorting.
    fn digits(&self) -> Option<&[u8]> {
        match self {
            T::Lit(l) => Some(&l[1..l.len() - 1]),
            T::Num(n) => Some(n),
            T::Owned(s) => Some(s.as_bytes()),
            T::Null => None,
        }
    }

    /// The value's text borrowed from the input (`None` for owned or null).
    fn key(&self) -> Option<&'a [u8]> {
        match *self {
            T::Lit(l) => Some(&l[1..l.len() - 1]),
            T::Num(n) => Some(n),
            T::Owned(_) | T::Null => None,
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            T::Lit(l) => out.extend_from_slice(l),
            T::Num(n) => {
                out.push(b'"');
                out.extend_from_slice(n);
                out.push(b'"');
            }
            T::Owned(s) => json::write_str(out, s.as_bytes()),
            T::Null => out.extend_from_slice(b"null"),
        }
    }
}

/// One book change: side (`bid`/`ask`), price, size.
type Change<'a> = (&'static str, T<'a>, T<'a>);

/// Cents (legacy Kalshi integer) as a dollar text field.
fn cents(v: Option<Val<'_>>) -> T<'static> {
    v.and_then(|v| v.as_i64())
        .map_or(T::Null, |c| T::Owned(decimal::cents_to_dollars(c)))
}

fn or<'a>(a: T<'a>, b: impl FnOnce() -> T<'a>) -> T<'a> {
    if a.is_null() {
        b()
    } else {
        a
    }
}

struct Rec<'o> {
    out: &'o mut Vec<u8>,
    n: usize,
}

impl Rec<'_> {
    fn begin(&mut self, ty: &str, venue: Venue, instrument: &T<'_>, ts: Option<i64>) {
        self.out.extend_from_slice(b"{\"type\":\"");
        self.out.extend_from_slice(ty.as_bytes());
        self.out.extend_from_slice(b"\",\"venue\":\"");
        self.out.extend_from_slice(venue.as_str().as_bytes());
        self.out.extend_from_slice(b"\",\"instrument\":");
        instrument.write(self.out);
        self.out.extend_from_slice(b",\"ts\":");
        match ts {
            Some(t) => self
                .out
                .extend_from_slice(itoa::Buffer::new().format(t).as_bytes()),
            None => self.out.extend_from_slice(b"null"),
        }
    }

    fn key(&mut self, k: &str) {
        self.out.extend_from_slice(b",\"");
        self.out.extend_from_slice(k.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    fn text(&mut self, k: &str, v: &T<'_>) {
        self.key(k);
        v.write(self.out);
    }

    fn int(&mut self, k: &str, v: Option<u64>) {
        self.key(k);
        match v {
            Some(n) => self
                .out
                .extend_from_slice(itoa::Buffer::new().format(n).as_bytes()),
            None => self.out.extend_from_slice(b"null"),
        }
    }

    fn raw(&mut self, k: &str, v: Option<Val<'_>>) {
        self.key(k);
        crate::envelope::push_one_line(self.out, v.map_or(&b"null"[..], |v| v.raw));
    }

    fn levels(&mut self, k: &str, levels: &[(T<'_>, T<'_>)]) {
        self.key(k);
        self.out.push(b'[');
        for (i, (p, q)) in levels.iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            self.out.push(b'[');
            p.write(self.out);
            self.out.push(b',');
            q.write(self.out);
            self.out.push(b']');
        }
        self.out.push(b']');
    }

    fn changes(&mut self, changes: &[Change<'_>]) {
        self.key("changes");
        self.out.push(b'[');
        for (i, (side, p, q)) in changes.iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            self.out.extend_from_slice(b"[\"");
            self.out.extend_from_slice(side.as_bytes());
            self.out.extend_from_slice(b"\",");
            p.write(self.out);
            self.out.push(b',');
            q.write(self.out);
            self.out.push(b']');
        }
        self.out.push(b']');
    }

    fn end(&mut self) {
        self.out.extend_from_slice(b"}\n");
        self.n += 1;
    }

    #[allow(clippy::too_many_arguments)]
    fn trade(
        &mut self,
        venue: Venue,
        inst: &T<'_>,
        ts: Option<i64>,
        seq: Option<u64>,
        price: &T<'_>,
        size: &T<'_>,
        side: &T<'_>,
        id: &T<'_>,
    ) {
        self.begin("trade", venue, inst, ts);
        self.int("seq", seq);
        self.text("price", price);
        self.text("size", size);
        self.text("side", side);
        self.text("trade_id", id);
        self.end();
    }

    #[allow(clippy::too_many_arguments)]
    fn quote(
        &mut self,
        venue: Venue,
        inst: &T<'_>,
        ts: Option<i64>,
        bid: &T<'_>,
        bid_size: &T<'_>,
        ask: &T<'_>,
        ask_size: &T<'_>,
        last: &T<'_>,
    ) {
        self.begin("quote", venue, inst, ts);
        self.text("bid", bid);
        self.text("bid_size", bid_size);
        self.text("ask", ask);
        self.text("ask_size", ask_size);
        self.text("last", last);
        self.end();
    }

    fn lifecycle(
        &mut self,
        venue: Venue,
        inst: &T<'_>,
        ts: Option<i64>,
        event: &T<'_>,
        detail: Option<Val<'_>>,
    ) {
        self.begin("lifecycle", venue, inst, ts);
        self.text("event", event);
        self.raw("detail", detail);
        self.end();
    }
}

fn sort_levels(levels: &mut [(T<'_>, T<'_>)], descending: bool) {
    levels.sort_by(|a, b| {
        let o = match (a.0.digits(), b.0.digits()) {
            (Some(x), Some(y)) => decimal::cmp(x, y),
            _ => Ordering::Equal,
        };
        if descending {
            o.reverse()
        } else {
            o
        }
    });
}

/// `[{"price":…,"qty"|"size":…}, …]` levels.
fn object_levels<'a>(v: Option<Val<'a>>, qty_key: &str) -> Vec<(T<'a>, T<'a>)> {
    v.iter()
        .flat_map(|v| v.items())
        .map(|l| {
            let [p, q] = l.get_many(["price", qty_key]);
            (T::of(p), T::of(q))
        })
        .collect()
}

fn buy_sell(side: &T<'_>) -> T<'static> {
    match side.digits() {
        Some(s) if s.eq_ignore_ascii_case(b"buy") || s == b"yes" || s == b"bid" => {
            T::Owned("buy".into())
        }
        Some(s) if s.eq_ignore_ascii_case(b"sell") || s == b"no" || s == b"ask" => {
            T::Owned("sell".into())
        }
        _ => T::Null,
    }
}

/// Normalize one raw frame (or archived `msg`) of `venue`, appending one
/// JSON line per record to `out`. Returns the number of records; control
/// frames, unknown types and unparsable input give none.
pub fn normalize(venue: Venue, frame: &[u8], out: &mut Vec<u8>) -> usize {
    if !json::is_utf8(frame) {
        return 0;
    }
    let Ok(v) = json::parse(frame) else {
        return 0;
    };
    let mut rec = Rec { out, n: 0 };
    match (venue, v.ty) {
        (Venue::Polymarket, Ty::Array) => {
            for e in v.items() {
                polymarket(&mut rec, e);
            }
        }
        (_, Ty::Object) => match venue {
            Venue::Kalshi => kalshi(&mut rec, v),
            Venue::Kraken => kraken(&mut rec, v),
            Venue::KrakenFutures => kraken_futures(&mut rec, v),
            Venue::Polymarket => polymarket(&mut rec, v),
        },
        _ => {}
    }
    rec.n
}

fn kalshi(rec: &mut Rec<'_>, v: Val<'_>) {
    const V: Venue = Venue::Kalshi;
    let [ty, seq, msg] = v.get_many(["type", "seq", "msg"]);
    let (Some(ty), Some(m)) = (ty.and_then(|t| t.str_raw()), msg) else {
        return;
    };
    let seq = seq.and_then(|s| s.as_u64());
    let [ticker, ts_ms, ts] = m.get_many(["market_ticker", "ts_ms", "ts"]);
    let inst = T::of(ticker);
    let ts = ts_ms
        .and_then(|t| t.as_i64())
        .or_else(|| ts.and_then(|t| t.as_i64()).map(|s| s * 1000));
    match ty {
        b"ticker" => {
            let [yb, ya, ybs, yas, pd, yb_c, ya_c, p_c] = m.get_many([
                "yes_bid_dollars",
                "yes_ask_dollars",
                "yes_bid_size_fp",
                "yes_ask_size_fp",
                "price_dollars",
                "yes_bid",
                "yes_ask",
                "price",
            ]);
            let last = if pd.is_some() { T::of(pd) } else { cents(p_c) };
            rec.quote(
                V,
                &inst,
                ts,
                &or(T::of(yb), || cents(yb_c)),
                &T::of(ybs),
                &or(T::of(ya), || cents(ya_c)),
                &T::of(yas),
                &last,
            );
        }
        b"trade" => {
            let [yp, cfp, outcome, taker, id, yp_c, count] = m.get_many([
                "yes_price_dollars",
                "count_fp",
                "taker_outcome_side",
                "taker_side",
                "trade_id",
                "yes_price",
                "count",
            ]);
            let price = or(T::of(yp), || cents(yp_c));
            let size = or(T::of(cfp), || {
                count
                    .and_then(|c| c.as_i64())
                    .map_or(T::Null, |c| T::Owned(decimal::count_fp(c)))
            });
            let side = buy_sell(&or(T::of(outcome), || T::of(taker)));
            rec.trade(V, &inst, ts, seq, &price, &size, &side, &T::of(id));
        }
        b"orderbook_snapshot" => {
            let side = |fp: &str, dollars: &str, cent: &str| -> Vec<(T<'_>, T<'_>)> {
                let [a, b, c] = m.get_many([fp, dollars, cent]);
                if let Some(l) = a.or(b) {
                    l.items()
                        .map(|p| (T::of(p.items().next()), T::of(p.items().nth(1))))
                        .collect()
                } else {
                    c.iter()
                        .flat_map(|l| l.items())
                        .map(|p| (cents(p.items().next()), T::of(p.items().nth(1))))
                        .collect()
                }
            };
            let mut bids = side("yes_dollars_fp", "yes_dollars", "yes");
            let mut asks: Vec<_> = side("no_dollars_fp", "no_dollars", "no")
                .into_iter()
                .map(|(p, q)| {
                    (
                        p.digits()
                            .and_then(decimal::one_minus)
                            .map_or(T::Null, T::Owned),
                        q,
                    )
                })
                .collect();
            sort_levels(&mut bids, true);
            sort_levels(&mut asks, false);
            rec.begin("book_snapshot", V, &inst, ts);
            rec.int("seq", seq);
            rec.levels("bids", &bids);
            rec.levels("asks", &asks);
            rec.int("checksum", None);
            rec.end();
        }
        b"orderbook_delta" => {
            let [pd, p_c, dfp, d, side] =
                m.get_many(["price_dollars", "price", "delta_fp", "delta", "side"]);
            let price = or(T::of(pd), || cents(p_c));
            let delta = or(T::of(dfp), || T::of(d));
            let change = match side.and_then(|s| s.str_raw()) {
                Some(b"no") => (
                    "ask",
                    price
                        .digits()
                        .and_then(decimal::one_minus)
                        .map_or(T::Null, T::Owned),
                    delta,
                ),
                _ => ("bid", price, delta),
            };
            rec.begin("book_delta", V, &inst, ts);
            rec.int("seq", seq);
            rec.text("mode", &T::Owned("add".into()));
            rec.changes(&[change]);
            rec.int("checksum", None);
            rec.end();
        }
        b"market_lifecycle_v2" => {
            let [event, d, s] = m.get_many(["event_type", "determination_ts", "settled_ts"]);
            let ts = d.or(s).and_then(|t| t.as_i64()).map(|t| t * 1000);
            rec.lifecycle(V, &inst, ts, &T::of(event), Some(m));
        }
        b"event_lifecycle" | b"event_fee_update" => {
            let event = T::Owned(String::from_utf8_lossy(ty).into_owned());
            rec.lifecycle(V, &T::of(m.get("event_ticker")), None, &event, Some(m));
        }
        _ => {}
    }
}

fn kraken(rec: &mut Rec<'_>, v: Val<'_>) {
    const V: Venue = Venue::Kraken;
    let [channel, ty, data] = v.get_many(["channel", "type", "data"]);
    let Some(channel) = channel.and_then(|c| c.str_raw()) else {
        return;
    };
    for d in data.iter().flat_map(|d| d.items()) {
        let [sym, ts] = d.get_many(["symbol", "timestamp"]);
        let inst = T::of(sym);
        let ts = ts.and_then(|t| t.str_raw()).and_then(decimal::rfc3339_ms);
        match channel {
            b"ticker" => {
                let [bid, bq, ask, aq, last] =
                    d.get_many(["bid", "bid_qty", "ask", "ask_qty", "last"]);
                rec.quote(
                    V,
                    &inst,
                    ts,
                    &T::of(bid),
                    &T::of(bq),
                    &T::of(ask),
                    &T::of(aq),
                    &T::of(last),
                );
            }
            b"trade" => {
                let [p, q, side, id] = d.get_many(["price", "qty", "side", "trade_id"]);
                let seq = id.and_then(|i| i.as_u64());
                rec.trade(
                    V,
                    &inst,
                    ts,
                    seq,
                    &T::of(p),
                    &T::of(q),
                    &buy_sell(&T::of(side)),
                    &T::of(id),
                );
            }
            b"book" => {
                let [bids, asks, ck] = d.get_many(["bids", "asks", "checksum"]);
                let ck = ck.and_then(|c| c.as_u64());
                if ty.and_then(|t| t.str_raw()) == Some(b"snapshot") {
                    let mut b = object_levels(bids, "qty");
                    let mut a = object_levels(asks, "qty");
                    sort_levels(&mut b, true);
                    sort_levels(&mut a, false);
                    rec.begin("book_snapshot", V, &inst, ts);
                    rec.int("seq", None);
                    rec.levels("bids", &b);
                    rec.levels("asks", &a);
                } else {
                    let mut ch: Vec<Change<'_>> = object_levels(bids, "qty")
                        .into_iter()
                        .map(|(p, q)| ("bid", p, q))
                        .collect();
                    ch.extend(
                        object_levels(asks, "qty")
                            .into_iter()
                            .map(|(p, q)| ("ask", p, q)),
                    );
                    rec.begin("book_delta", V, &inst, ts);
                    rec.int("seq", None);
                    rec.text("mode", &T::Owned("set".into()));
                    rec.changes(&ch);
                }
                rec.int("checksum", ck);
                rec.end();
            }
            b"status" => {
                rec.begin("status", V, &T::Null, None);
                rec.text("status", &T::of(d.get("system")));
                rec.raw("detail", Some(d));
                rec.end();
            }
            _ => return,
        }
    }
}

fn kraken_futures(rec: &mut Rec<'_>, v: Val<'_>) {
    const V: Venue = Venue::KrakenFutures;
    let [feed, product, time, seq] = v.get_many(["feed", "product_id", "time", "seq"]);
    let Some(feed) = feed.and_then(|f| f.str_raw()) else {
        return;
    };
    let inst = T::of(product);
    let seq = seq.and_then(|s| s.as_u64());
    let trade = |rec: &mut Rec<'_>, t: Val<'_>| {
        let [p, q, side, uid, time, seq] =
            t.get_many(["price", "qty", "side", "uid", "time", "seq"]);
        let seq = seq.and_then(|s| s.as_u64());
        rec.trade(
            V,
            &inst,
            time.and_then(|t| t.as_i64()),
            seq,
            &T::of(p),
            &T::of(q),
            &buy_sell(&T::of(side)),
            &T::of(uid),
        );
    };
    match feed {
        b"ticker" => {
            let [bid, bs, ask, as_, last] =
                v.get_many(["bid", "bid_size", "ask", "ask_size", "last"]);
            rec.quote(
                V,
                &inst,
                time.and_then(|t| t.as_i64()),
                &T::of(bid),
                &T::of(bs),
                &T::of(ask),
                &T::of(as_),
                &T::of(last),
            );
        }
        b"trade" => trade(rec, v),
        b"trade_snapshot" => {
            // newest first on the wire; records go out oldest first
            let trades: Vec<Val<'_>> = v.get("trades").iter().flat_map(|t| t.items()).collect();
            for t in trades.into_iter().rev() {
                trade(rec, t);
            }
        }
        b"book_snapshot" => {
            let [bids, asks, ts] = v.get_many(["bids", "asks", "timestamp"]);
            let mut b = object_levels(bids, "qty");
            let mut a = object_levels(asks, "qty");
            sort_levels(&mut b, true);
            sort_levels(&mut a, false);
            rec.begin("book_snapshot", V, &inst, ts.and_then(|t| t.as_i64()));
            rec.int("seq", seq);
            rec.levels("bids", &b);
            rec.levels("asks", &a);
            rec.int("checksum", None);
            rec.end();
        }
        b"book" => {
            let [side, p, q, ts] = v.get_many(["side", "price", "qty", "timestamp"]);
            let side = if side.and_then(|s| s.str_raw()) == Some(b"sell") {
                "ask"
            } else {
                "bid"
            };
            rec.begin("book_delta", V, &inst, ts.and_then(|t| t.as_i64()));
            rec.int("seq", seq);
            rec.text("mode", &T::Owned("set".into()));
            rec.changes(&[(side, T::of(p), T::of(q))]);
            rec.int("checksum", None);
            rec.end();
        }
        _ => {}
    }
}

fn polymarket(rec: &mut Rec<'_>, e: Val<'_>) {
    const V: Venue = Venue::Polymarket;
    if e.ty != Ty::Object {
        return;
    }
    let [ty, market, asset, ts, bids, asks] = e.get_many([
        "event_type",
        "market",
        "asset_id",
        "timestamp",
        "bids",
        "asks",
    ]);
    let ts = ts.and_then(|t| t.as_i64());
    let asset_t = T::of(asset);
    let ty = ty.and_then(|t| t.str_raw());
    match ty {
        Some(b"book") | None if bids.is_some() || asks.is_some() => {
            let mut b = object_levels(bids, "size");
            let mut a = object_levels(asks, "size");
            sort_levels(&mut b, true);
            sort_levels(&mut a, false);
            rec.begin("book_snapshot", V, &asset_t, ts);
            rec.int("seq", None);
            rec.levels("bids", &b);
            rec.levels("asks", &a);
            rec.int("checksum", None);
            rec.end();
        }
        Some(b"price_change") => {
            // current schema: price_changes[] with per-item asset_id; legacy: asset_id + changes[]
            let mut groups: Vec<(T<'_>, Vec<Change<'_>>)> = Vec::new();
            let mut index: FxHashMap<Option<&[u8]>, usize> = FxHashMap::default();
            let (items, legacy) = match e.get("price_changes") {
                Some(pc) => (pc, false),
                None => match e.get("changes") {
                    Some(c) => (c, true),
                    None => return,
                },
            };
            for c in items.items() {
                let [a, p, s, side] = c.get_many(["asset_id", "price", "size", "side"]);
                let a = if legacy { asset_t.clone() } else { T::of(a) };
                let side = if buy_sell(&T::of(side)).digits() == Some(b"sell") {
                    "ask"
                } else {
                    "bid"
                };
                // one hash lookup per change: many tokens in one message stay linear
                let g = *index.entry(a.key()).or_insert_with(|| {
                    groups.push((a.clone(), Vec::new()));
                    groups.len() - 1
                });
                groups[g].1.push((side, T::of(p), T::of(s)));
            }
            for (a, ch) in groups {
                rec.begin("book_delta", V, &a, ts);
                rec.int("seq", None);
                rec.text("mode", &T::Owned("set".into()));
                rec.changes(&ch);
                rec.int("checksum", None);
                rec.end();
            }
        }
        Some(b"last_trade_price") => {
            let [p, s, side, txh] = e.get_many(["price", "size", "side", "transaction_hash"]);
            rec.trade(
                V,
                &asset_t,
                ts,
                None,
                &T::of(p),
                &T::of(s),
                &buy_sell(&T::of(side)),
                &T::of(txh),
            );
        }
        Some(b"best_bid_ask") => {
            let [b, a] = e.get_many(["best_bid", "best_ask"]);
            rec.quote(
                V,
                &asset_t,
                ts,
                &T::of(b),
                &T::Null,
                &T::of(a),
                &T::Null,
                &T::Null,
            );
        }
        Some(b"tick_size_change") => {
            rec.lifecycle(
                V,
                &asset_t,
                ts,
                &T::Owned("tick_size_change".into()),
                Some(e),
            );
        }
        Some(t @ (b"new_market" | b"market_resolved")) => {
            let event = T::Owned(String::from_utf8_lossy(t).into_owned());
            rec.lifecycle(V, &T::of(market), ts, &event, Some(e));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(venue: Venue, f: &str) -> Vec<String> {
        let mut out = Vec::new();
        normalize(venue, f.as_bytes(), &mut out);
        let s = String::from_utf8(out).unwrap();
        for l in s.lines() {
            assert!(json::parse(l.as_bytes()).is_ok(), "{l}");
        }
        s.lines().map(str::to_owned).collect()
    }

    #[test]
    fn kalshi_legacy_trade_in_dollars() {
        let r = norm(
            Venue::Kalshi,
            r#"{"type":"trade","sid":1,"seq":42,"msg":{"trade_id":"f8","market_ticker":"KX-1","yes_price":55,"count":10,"taker_side":"yes","ts":1707667200}}"#,
        );
        assert_eq!(
            r,
            [
                r#"{"type":"trade","venue":"kalshi","instrument":"KX-1","ts":1707667200000,"seq":42,"price":"0.5500","size":"10.00","side":"buy","trade_id":"f8"}"#
            ]
        );
    }

    #[test]
    fn kalshi_no_bids_become_yes_asks() {
        let r = norm(
            Venue::Kalshi,
            r#"{"type":"orderbook_snapshot","sid":2,"seq":2,"msg":{"market_ticker":"F","yes_dollars_fp":[["0.0800","300.00"],["0.2200","333.00"]],"no_dollars_fp":[["0.5400","20.00"],["0.5600","146.00"]]}}"#,
        );
        assert!(r[0].contains(r#""bids":[["0.2200","333.00"],["0.0800","300.00"]],"asks":[["0.4400","146.00"],["0.4600","20.00"]]"#), "{}", r[0]);
    }

    #[test]
    fn polymarket_levels_sorted_and_trades() {
        let r = norm(
            Venue::Polymarket,
            r#"[{"event_type":"book","asset_id":"7","market":"0x1","bids":[{"price":".48","size":"30"},{"price":".50","size":"15"}],"asks":[{"price":"0.57","size":"3"},{"price":"0.56","size":"7"}],"timestamp":"9"},{"event_type":"last_trade_price","asset_id":"7","market":"0x1","price":"0.55","side":"SELL","size":"1000","timestamp":"10"}]"#,
        );
        assert_eq!(r.len(), 2);
        assert!(
            r[0].contains(
                r#""bids":[[".50","15"],[".48","30"]],"asks":[["0.56","7"],["0.57","3"]]"#
            ),
            "{}",
            r[0]
        );
        assert!(r[1].contains(r#""side":"sell""#));
    }

    #[test]
    fn kraken_numbers_keep_their_text() {
        let r = norm(
            Venue::Kraken,
            r#"{"channel":"ticker","type":"update","data":[{"symbol":"BTC/USD","bid":83744.2,"bid_qty":0.56251979,"ask":83744.3,"ask_qty":0.00044780,"last":83744.3,"timestamp":"2026-09-25T17:48:26.844359Z"}]}"#,
        );
        assert!(r[0].contains(r#""ask_size":"0.00044780""#), "{}", r[0]);
    }

    #[test]
    fn control_and_garbage_give_nothing() {
        assert!(norm(Venue::Kraken, r#"{"channel":"heartbeat"}"#).is_empty());
        assert!(norm(Venue::Polymarket, "PONG").is_empty());
        assert!(norm(Venue::Kalshi, "{").is_empty());
    }
}
