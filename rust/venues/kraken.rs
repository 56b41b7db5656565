//! Kraken spot WebSocket v2: `{"channel":…,"type":…,"data":[…]}`; requests
//! and acks carry `method`.
//!
//! Integrity: the L2 book is maintained per symbol and its CRC32 checked on
//! every snapshot and update, with levels formatted to the pair's price and
//! quantity precisions (set by the connector; inferred from the widest wire
//! text until then, and counted as such). A mismatch records a `resync`
//! status line and asks the connector to resubscribe that symbol only.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap as HashMap;

use super::{parse_object, text, Out, Setting, StatusVal, VenueParser};
use crate::decimal;
use crate::error::Error;
use crate::json::{self, Tape, Ty, Val};
use crate::model::{Class, Item, Venue};
use crate::records::{
    object_levels, sort_levels, BookDelta, BookSide, BookSnapshot, Change, DeltaMode, Quote, Raw,
    Record, Side, Status, Text, Trade,
};

/// Depth the connector subscribes to unless told otherwise.
pub const DEFAULT_DEPTH: usize = 10;

#[derive(Debug)]
pub struct Kraken {
    books: HashMap<String, KrakenBook>,
    precisions: HashMap<String, (u32, u32)>,
    depth: usize,
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

/// Smallest book depth the venue offers.
pub const MIN_DEPTH: usize = 10;

impl VenueParser for Kraken {
    fn venue(&self) -> Venue {
        Venue::Kraken
    }

    /// Routing reads `data[0]`.
    fn tape_depth(&self) -> usize {
        3
    }

    fn parse<'a>(&mut self, frame: &'a [u8], tape: &mut Tape, out: &mut Out<'_, 'a>) {
        self.route(frame, tape, out);
    }

    fn normalize<'a>(&self, frame: &'a [u8], out: &mut Vec<Record<'a>>) {
        self.normalize_with(frame, &mut Tape::with_depth(3), out);
    }

    /// Validates the message and records the fields of the root and of each
    /// `data` element in the same pass, so they are looked up on the tape
    /// (given a tape of depth 3) instead of walked again; a frame too large
    /// for the tape's offsets is walked.
    fn normalize_with<'a>(&self, frame: &'a [u8], tape: &mut Tape, out: &mut Vec<Record<'a>>) {
        if u32::try_from(frame.len()).is_err() {
            if let Some(v) = json::parse(frame).ok().filter(|v| v.ty == Ty::Object) {
                normalize(&json::Walk, v, out);
            }
        } else if let Some(doc) = json::parse_doc(frame, tape)
            .ok()
            .filter(|d| d.root.ty == Ty::Object)
        {
            normalize(&doc, doc.root, out);
        }
    }

    fn configure(&mut self, setting: Setting<'_>) -> Result<(), Error> {
        match setting {
            Setting::Precision { symbol, price, qty } => {
                self.precisions.insert(symbol.to_owned(), (price, qty));
                Ok(())
            }
            Setting::BookDepth(depth) if depth >= MIN_DEPTH => {
                self.depth = depth;
                Ok(())
            }
            Setting::BookDepth(_) => Err(Error::Config(format!(
                "book depth must be at least {MIN_DEPTH}"
            ))),
            s => Err(super::not_for(Venue::Kraken, s)),
        }
    }

    /// Drop the book kept for `symbol` (its precision stays: it describes the pair).
    fn forget(&mut self, symbol: &str) {
        self.books.remove(symbol);
    }

    /// Forget books; keep precisions and depth (they describe the pairs).
    fn reset(&mut self) {
        self.books.clear();
    }
}

impl Kraken {
    fn route<'a>(&mut self, frame: &'a [u8], tape: &mut Tape, out: &mut Out<'_, 'a>) {
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
        for (side, levels) in [(BookSide::Bid, bids), (BookSide::Ask, asks)] {
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

/// Normalize one Kraken spot message: one record per element of `data`.
fn normalize<'a>(look: &impl json::Lookup<'a>, v: Val<'a>, out: &mut Vec<Record<'a>>) {
    const V: Venue = Venue::Kraken;
    let [channel, ty, data] = look.get_many_in(&v, ["channel", "type", "data"]);
    let Some(channel) = channel.and_then(|c| c.str_raw()) else {
        return;
    };
    let Some(data) = data else {
        return;
    };
    for d in look.items_in(&data) {
        let [sym, ts] = look.get_many_in(&d, ["symbol", "timestamp"]);
        let instrument = Text::of(sym);
        let ts = ts.and_then(|t| t.str_raw()).and_then(decimal::rfc3339_ms);
        let record = match channel {
            b"ticker" => {
                let [bid, bq, ask, aq, last] =
                    look.get_many_in(&d, ["bid", "bid_qty", "ask", "ask_qty", "last"]);
                Record::Quote(Quote {
                    venue: V,
                    instrument,
                    ts,
                    bid: Text::of(bid),
                    bid_size: Text::of(bq),
                    ask: Text::of(ask),
                    ask_size: Text::of(aq),
                    last: Text::of(last),
                })
            }
            b"trade" => {
                let [p, q, side, id] = look.get_many_in(&d, ["price", "qty", "side", "trade_id"]);
                Record::Trade(Trade {
                    venue: V,
                    instrument,
                    ts,
                    seq: id.and_then(|i| i.as_u64()),
                    price: Text::of(p),
                    size: Text::of(q),
                    side: Side::of(Text::of(side)),
                    trade_id: Text::of(id),
                })
            }
            b"book" => {
                let [bids, asks, ck] = look.get_many_in(&d, ["bids", "asks", "checksum"]);
                let checksum = ck.and_then(|c| c.as_u64());
                if ty.and_then(|t| t.str_raw()) == Some(b"snapshot") {
                    let mut bids = object_levels(bids, "qty");
                    let mut asks = object_levels(asks, "qty");
                    sort_levels(&mut bids, BookSide::Bid);
                    sort_levels(&mut asks, BookSide::Ask);
                    Record::BookSnapshot(BookSnapshot {
                        venue: V,
                        instrument,
                        ts,
                        seq: None,
                        bids,
                        asks,
                        checksum,
                    })
                } else {
                    let side = |levels, side| {
                        object_levels(levels, "qty")
                            .into_iter()
                            .map(move |l| Change {
                                side,
                                price: l.price,
                                size: l.size,
                            })
                    };
                    let changes = side(bids, BookSide::Bid)
                        .chain(side(asks, BookSide::Ask))
                        .collect();
                    Record::BookDelta(BookDelta {
                        venue: V,
                        instrument,
                        ts,
                        seq: None,
                        mode: DeltaMode::Set,
                        changes,
                        checksum,
                    })
                }
            }
            b"status" => Record::Status(Status {
                venue: V,
                instrument: Text::Null,
                ts: None,
                status: Text::of(look.get_many_in(&d, ["system"])[0]),
                detail: Raw(Some(d.raw)),
            }),
            _ => return,
        };
        out.push(record);
    }
}

#[derive(Debug, Clone)]
struct CheckLevel {
    price: Vec<u8>,
    qty: Vec<u8>,
    /// Checksum text of this level for the precisions it was built with.
    digits: Option<(u32, u32, Vec<u8>)>,
}

/// A Kraken spot v2 L2 book kept only to verify checksums.
#[derive(Debug, Default, Clone)]
pub struct KrakenBook {
    bids: BTreeMap<i128, CheckLevel>,
    asks: BTreeMap<i128, CheckLevel>,
    /// Largest number of price / qty decimals seen on the wire.
    pub seen_price_scale: u32,
    pub seen_qty_scale: u32,
    /// False until a snapshot arrives, and after a mismatch.
    pub synced: bool,
}

impl KrakenBook {
    pub fn clear(&mut self) {
        self.bids.clear();
        self.asks.clear();
    }

    /// Set one level (`qty == 0` deletes it). False when the numbers do not parse.
    pub fn apply(&mut self, side: BookSide, price: &[u8], qty: &[u8]) -> bool {
        let (Some((key, p_scale, _)), Some((_, q_scale, q_zero))) =
            (decimal::level_facts(price), decimal::level_facts(qty))
        else {
            return false;
        };
        self.seen_price_scale = self.seen_price_scale.max(p_scale);
        self.seen_qty_scale = self.seen_qty_scale.max(q_scale);
        let book = match side {
            BookSide::Bid => &mut self.bids,
            BookSide::Ask => &mut self.asks,
        };
        if q_zero {
            book.remove(&key);
        } else {
            book.insert(
                key,
                CheckLevel {
                    price: price.to_vec(),
                    qty: qty.to_vec(),
                    digits: None,
                },
            );
        }
        true
    }

    /// Drop levels beyond `depth` on each side (no deletes are sent for them).
    pub fn truncate(&mut self, depth: usize) {
        while self.bids.len() > depth {
            self.bids.pop_first(); // lowest bid is the worst
        }
        while self.asks.len() > depth {
            self.asks.pop_last(); // highest ask is the worst
        }
    }

    pub fn depth(&self) -> (usize, usize) {
        (self.bids.len(), self.asks.len())
    }

    /// CRC32 over the top 10 asks (ascending) then top 10 bids (descending),
    /// each level as price and qty fixed to the pair's precisions, point and
    /// leading zeros removed.
    pub fn checksum(&mut self, price_prec: u32, qty_prec: u32) -> u32 {
        // one contiguous buffer: crc32fast's fast path needs long inputs
        let mut all = Vec::with_capacity(512);
        for l in self
            .asks
            .values_mut()
            .take(10)
            .chain(self.bids.values_mut().rev().take(10))
        {
            match &l.digits {
                Some((pp, qp, d)) if *pp == price_prec && *qp == qty_prec => {
                    all.extend_from_slice(d)
                }
                _ => {
                    let mut d = Vec::with_capacity(24);
                    decimal::checksum_digits(&l.price, price_prec, &mut d);
                    decimal::checksum_digits(&l.qty, qty_prec, &mut d);
                    all.extend_from_slice(&d);
                    l.digits = Some((price_prec, qty_prec, d));
                }
            }
        }
        crc32fast::hash(&all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn book_truncates_worst_levels() {
        let mut b = KrakenBook::default();
        for p in ["1.0", "2.0", "3.0"] {
            b.apply(BookSide::Bid, p.as_bytes(), b"1");
            b.apply(BookSide::Ask, format!("1{p}").as_bytes(), b"1");
        }
        b.truncate(2);
        assert_eq!(b.depth(), (2, 2));
        assert!(b.bids.contains_key(&decimal::key(b"3.0").unwrap()));
        assert!(b.asks.contains_key(&decimal::key(b"11.0").unwrap()));
        b.apply(BookSide::Bid, b"3.0", b"0");
        assert_eq!(b.depth(), (1, 2));
    }
}
