//! Kraken spot WebSocket v2: `{"channel":…,"type":…,"data":[…]}`; requests
//! and acks carry `method`.
//!
//! Integrity: the L2 book is maintained per symbol and its CRC32 checked on
//! every snapshot and update, with levels formatted to the pair's price and
//! quantity precisions (set by the connector; inferred from the widest wire
//! text until then, and counted as such). A mismatch records a `resync`
//! status line and asks the connector to resubscribe that symbol only.

use rustc_hash::FxHashMap as HashMap;

use super::{parse_object, text, Out, StatusVal};
use crate::decimal;
use crate::integrity::{KrakenBook, Side};
use crate::json::{Tape, Val};
use crate::model::{Class, Item};

/// Depth the connector subscribes to unless told otherwise.
pub const DEFAULT_DEPTH: usize = 10;

#[derive(Debug)]
pub struct Kraken {
    books: HashMap<String, KrakenBook>,
    precisions: HashMap<String, (u32, u32)>,
    pub depth: usize,
}

impl Default for Kraken {
    fn default() -> Self {
        Kraken {
            books: HashMap::default(),
            precisions: HashMap::default(),
            depth: DEFAULT_DEPTH,
        }
    }
}

impl Kraken {
    /// Forget books; keep precisions and depth (they describe the pairs).
    pub fn reset(&mut self) {
        self.books.clear();
    }

    /// Drop the book kept for `symbol` (its precision stays: it describes the pair).
    pub fn forget(&mut self, symbol: &str) -> bool {
        self.books.remove(symbol).is_some()
    }

    pub fn set_precision(&mut self, symbol: &str, price: u32, qty: u32) {
        self.precisions.insert(symbol.to_owned(), (price, qty));
    }

    pub fn parse<'a>(&mut self, frame: &'a [u8], tape: &mut Tape, out: &mut Out<'_, 'a>) {
        let Some(v) = parse_object(frame, tape, out) else {
            return;
        };
        let [channel, ty, data, method] = v.get_many(["channel", "type", "data", "method"]);
        if let Some(method) = text(method) {
            let kind = match v.get("success").and_then(|s| s.as_bool()) {
                Some(false) => "error".into(),
                _ => method,
            };
            out.control(kind, frame);
            return;
        }
        let Some(channel) = text(channel) else {
            if v.get("error").is_some() {
                out.control("error", frame);
            } else {
                out.push(Item::new(Class::Unknown, "unknown", "", frame));
            }
            return;
        };
        let kind: &'static str = match channel.as_ref() {
            "heartbeat" => {
                out.control("heartbeat", frame);
                return;
            }
            "status" => {
                out.push(Item::new(Class::Data, "status", "", frame));
                return;
            }
            "ticker" => "ticker",
            "trade" => "trade",
            "book" => "book",
            _ => {
                out.push(Item::new(Class::Unknown, channel, "", frame));
                return;
            }
        };
        let Some(first) = data.and_then(|d| v.first(&d)) else {
            out.malformed("missing data", frame);
            return;
        };
        let [symbol, ts, trade_id] = v.get_many_in(&first, ["symbol", "timestamp", "trade_id"]);
        let Some(symbol) = text(symbol) else {
            out.malformed("missing symbol", frame);
            return;
        };
        let mut item = Item::new(Class::Data, kind, symbol.clone(), frame);
        item.ts_ms = ts.and_then(|t| t.str_raw()).and_then(decimal::rfc3339_ms);
        if kind == "trade" {
            if let Some(id) = text(trade_id) {
                item.seq = id.parse().ok();
                item.dedupe = Some(format!("{symbol}:{id}").into());
            }
        }
        let snapshot = text(ty).as_deref() == Some("snapshot");
        out.push(item);
        if kind == "book" {
            let fields = v.get_many_in(&first, ["bids", "asks", "checksum"]);
            self.check_book(&symbol, snapshot, fields, out);
        }
    }

    fn check_book(
        &mut self,
        symbol: &str,
        snapshot: bool,
        fields: [Option<Val<'_>>; 3],
        out: &mut Out<'_, '_>,
    ) {
        let [bids, asks, checksum] = fields;
        if !self.books.contains_key(symbol) {
            self.books.insert(symbol.to_owned(), KrakenBook::default());
        }
        let Some(book) = self.books.get_mut(symbol) else {
            return;
        };
        if snapshot {
            book.clear();
            book.synced = true;
        }
        let mut parsed = true;
        for (side, levels) in [(Side::Bid, bids), (Side::Ask, asks)] {
            for l in levels.iter().flat_map(Val::items) {
                let [p, q] = l.get_many(["price", "qty"]);
                match (p.and_then(|p| p.num_text()), q.and_then(|q| q.num_text())) {
                    (Some(p), Some(q)) => parsed &= book.apply(side, p, q),
                    _ => parsed = false,
                }
            }
        }
        book.truncate(self.depth);
        let Some(expected) = checksum.and_then(|c| c.as_u64()) else {
            return;
        };
        if !book.synced {
            out.counters.checksum_unverified += 1;
            return;
        }
        let (pp, qp) = match self.precisions.get(symbol) {
            Some(&p) => p,
            None => {
                out.counters.checksum_inferred += 1;
                (book.seen_price_scale, book.seen_qty_scale)
            }
        };
        let computed = u64::from(book.checksum(pp, qp));
        if parsed && computed == expected {
            out.counters.checksum_ok += 1;
            return;
        }
        out.counters.checksum_mismatch += 1;
        book.synced = false;
        let reason = if parsed { "checksum" } else { "bad_level" };
        out.status(
            symbol.to_owned(),
            "resync",
            &[
                ("reason", StatusVal::S(reason)),
                ("expected", StatusVal::U(expected)),
                ("computed", StatusVal::U(computed)),
            ],
        );
        out.resync(symbol, reason);
    }
}
