//! Kraken Futures WebSocket v1: data messages carry `feed` and
//! `product_id`, control messages carry `event`.
//!
//! Integrity: trade `seq` per product (snapshots are newest first and set
//! the baseline) and book `seq` per product; a book gap asks for a resync.

use rustc_hash::FxHashMap as HashMap;

use super::{parse_object, text, Out, StatusVal, VenueParser};
use crate::integrity::{SeqCheck, SeqTracker};
use crate::json::{self, Tape, Ty, Val};
use crate::model::{Class, Item, Venue};
use crate::records::{
    object_levels, sort_levels, BookDelta, BookSide, BookSnapshot, Change, DeltaMode, Quote,
    Record, Side, Text, Trade,
};

#[derive(Debug, Default)]
pub struct KrakenFutures {
    trades: HashMap<String, SeqTracker>,
    books: HashMap<String, SeqTracker>,
}

impl VenueParser for KrakenFutures {
    fn venue(&self) -> Venue {
        Venue::KrakenFutures
    }

    fn parse<'a>(&mut self, frame: &'a [u8], tape: &mut Tape, out: &mut Out<'_, 'a>) {
        self.route(frame, tape, out);
    }

    fn normalize<'a>(&self, frame: &'a [u8], out: &mut Vec<Record<'a>>) {
        if let Ok(v) = json::parse(frame) {
            if v.ty == Ty::Object {
                normalize(v, out);
            }
        }
    }

    /// Drop the trade and book sequence state of `product`.
    fn forget(&mut self, product: &str) {
        self.trades.remove(product);
        self.books.remove(product);
    }

    fn reset(&mut self) {
        self.trades.clear();
        self.books.clear();
    }
}

impl KrakenFutures {
    fn route<'a>(&mut self, frame: &'a [u8], tape: &mut Tape, out: &mut Out<'_, 'a>) {
        let Some(v) = parse_object(frame, tape, out) else {
            return;
        };
        let [feed, event, product, seq, time, uid] =
            v.get_many(["feed", "event", "product_id", "seq", "time", "uid"]);
        if let Some(event) = text(event) {
            out.control(event, frame);
            return;
        }
        let Some(feed) = text(feed) else {
            out.push(Item::new(Class::Unknown, "unknown", "", frame));
            return;
        };
        let kind: &'static str = match feed.as_ref() {
            "heartbeat" => {
                out.control("heartbeat", frame);
                return;
            }
            "ticker" => "ticker",
            "trade" | "trade_snapshot" => "trade",
            "book" | "book_snapshot" => "book",
            _ => "",
        };
        let instrument = text(product);
        if kind.is_empty() {
            out.push(Item::new(
                Class::Unknown,
                feed,
                instrument.unwrap_or_default(),
                frame,
            ));
            return;
        }
        let Some(instrument) = instrument else {
            out.malformed("missing product_id", frame);
            return;
        };
        let mut item = Item::new(Class::Data, kind, instrument.clone(), frame);
        item.ts_ms = time.or_else(|| v.get("timestamp")).and_then(|t| t.as_i64());
        item.seq = seq.and_then(|s| s.as_u64());
        item.dedupe = text(uid);
        match feed.as_ref() {
            "trade_snapshot" => {
                // newest first: the baseline is the highest seq in the snapshot
                let top = v
                    .get("trades")
                    .iter()
                    .flat_map(|t| t.items())
                    .filter_map(|t| t.get("seq").and_then(|s| s.as_u64()))
                    .max();
                if let Some(top) = top {
                    self.trades
                        .entry(instrument.to_string())
                        .or_default()
                        .reset_to(top);
                    item.seq = Some(top);
                }
                if let Some(ts) = v
                    .get("trades")
                    .and_then(|t| t.first())
                    .and_then(|t| t.get("time"))
                {
                    item.ts_ms = ts.as_i64();
                }
            }
            "book_snapshot" => {
                if let Some(s) = item.seq {
                    self.books
                        .entry(instrument.to_string())
                        .or_default()
                        .reset_to(s);
                }
            }
            "trade" | "book" => {
                if let Some(s) = item.seq {
                    let book = feed == "book";
                    let tracker = if book {
                        &mut self.books
                    } else {
                        &mut self.trades
                    };
                    let verdict = tracker
                        .entry(instrument.to_string())
                        .or_default()
                        .check_mode(s, out.replay);
                    if !record(verdict, &instrument, s, book, out) {
                        return;
                    }
                }
            }
            _ => {}
        }
        out.push(item);
    }
}

/// Record a sequence verdict; false when the message is a duplicate.
fn record(
    verdict: SeqCheck,
    instrument: &str,
    seq: u64,
    book: bool,
    out: &mut Out<'_, '_>,
) -> bool {
    let feed = StatusVal::S(if book { "book" } else { "trade" });
    match verdict {
        SeqCheck::First | SeqCheck::InOrder => true,
        SeqCheck::Gap { expected, got } => {
            out.counters.gaps += 1;
            out.status(
                instrument.to_owned(),
                "gap",
                &[
                    ("feed", feed),
                    ("expected", StatusVal::U(expected)),
                    ("got", StatusVal::U(got)),
                    ("missing", StatusVal::U(got - expected)),
                ],
            );
            if book {
                out.resync(instrument, "seq_gap");
                out.status(
                    instrument.to_owned(),
                    "resync",
                    &[("reason", StatusVal::S("seq_gap"))],
                );
            }
            true
        }
        SeqCheck::Late => {
            out.counters.late += 1;
            out.status(
                instrument.to_owned(),
                "late",
                &[("feed", feed), ("seq", StatusVal::U(seq))],
            );
            true
        }
        SeqCheck::Duplicate => {
            out.counters.duplicates += 1;
            out.status(
                instrument.to_owned(),
                "duplicate",
                &[("feed", feed), ("seq", StatusVal::U(seq))],
            );
            false
        }
        SeqCheck::Restart { last } => {
            out.counters.restarts += 1;
            out.status(
                instrument.to_owned(),
                "restart",
                &[
                    ("feed", feed),
                    ("last", StatusVal::U(last)),
                    ("seq", StatusVal::U(seq)),
                ],
            );
            true
        }
    }
}

/// Normalize one Kraken Futures message.
fn normalize<'a>(v: Val<'a>, out: &mut Vec<Record<'a>>) {
    const V: Venue = Venue::KrakenFutures;
    let [feed, product, time, seq] = v.get_many(["feed", "product_id", "time", "seq"]);
    let Some(feed) = feed.and_then(|f| f.str_raw()) else {
        return;
    };
    let instrument = Text::of(product);
    let seq = seq.and_then(|s| s.as_u64());
    let trade = |t: Val<'a>| {
        let [p, q, side, uid, time, seq] =
            t.get_many(["price", "qty", "side", "uid", "time", "seq"]);
        Record::Trade(Trade {
            venue: V,
            instrument,
            ts: time.and_then(|t| t.as_i64()),
            seq: seq.and_then(|s| s.as_u64()),
            price: Text::of(p),
            size: Text::of(q),
            side: Side::of(Text::of(side)),
            trade_id: Text::of(uid),
        })
    };
    match feed {
        b"ticker" => {
            let [bid, bs, ask, as_, last] =
                v.get_many(["bid", "bid_size", "ask", "ask_size", "last"]);
            out.push(Record::Quote(Quote {
                venue: V,
                instrument,
                ts: time.and_then(|t| t.as_i64()),
                bid: Text::of(bid),
                bid_size: Text::of(bs),
                ask: Text::of(ask),
                ask_size: Text::of(as_),
                last: Text::of(last),
            }));
        }
        b"trade" => out.push(trade(v)),
        b"trade_snapshot" => {
            // newest first on the wire; records go out oldest first
            let trades: Vec<Val<'a>> = v.get("trades").iter().flat_map(|t| t.items()).collect();
            out.extend(trades.into_iter().rev().map(trade));
        }
        b"book_snapshot" => {
            let [bids, asks, ts] = v.get_many(["bids", "asks", "timestamp"]);
            let mut bids = object_levels(bids, "qty");
            let mut asks = object_levels(asks, "qty");
            sort_levels(&mut bids, BookSide::Bid);
            sort_levels(&mut asks, BookSide::Ask);
            out.push(Record::BookSnapshot(BookSnapshot {
                venue: V,
                instrument,
                ts: ts.and_then(|t| t.as_i64()),
                seq,
                bids,
                asks,
                checksum: None,
            }));
        }
        b"book" => {
            let [side, p, q, ts] = v.get_many(["side", "price", "qty", "timestamp"]);
            let side = if side.and_then(|s| s.str_raw()) == Some(b"sell") {
                BookSide::Ask
            } else {
                BookSide::Bid
            };
            out.push(Record::BookDelta(BookDelta {
                venue: V,
                instrument,
                ts: ts.and_then(|t| t.as_i64()),
                seq,
                mode: DeltaMode::Set,
                changes: vec![Change {
                    side,
                    price: Text::of(p),
                    size: Text::of(q),
                }],
                checksum: None,
            }));
        }
        _ => {}
    }
}
