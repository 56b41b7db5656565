//! Polymarket CLOB market channel: a frame is one event object or an array
//! of them; the server answers the client's text `PING` with a bare `PONG`.
//!
//! Subjects use the condition id (`market`). There are no sequence numbers;
//! a book "epoch" counts full `book` snapshots per token so that a
//! `price_change` arriving before any book for its token is visible.

use rustc_hash::FxHashMap as HashMap;

use super::{text, Out, VenueParser};
use crate::json::{self, Tape, Ty, Val};
use crate::model::{Class, Item, Venue};
use crate::records::{
    object_levels, sort_levels, BookDelta, BookSide, BookSnapshot, Change, DeltaMode, Lifecycle,
    Quote, Raw, Record, Side, Text, Trade,
};

/// Keys routing reads from every event.
const KEYS: [&str; 8] = [
    "event_type",
    "market",
    "asset_id",
    "timestamp",
    "hash",
    "transaction_hash",
    "bids",
    "asks",
];

/// Tokens whose book epoch is remembered.
const MAX_TRACKED_TOKENS: usize = 200_000;

#[derive(Debug, Default)]
pub struct Polymarket {
    /// Full books seen per token id.
    epochs: HashMap<String, u64>,
}

impl VenueParser for Polymarket {
    fn venue(&self) -> Venue {
        Venue::Polymarket
    }

    fn parse<'a>(&mut self, frame: &'a [u8], tape: &mut Tape, out: &mut Out<'_, 'a>) {
        self.route(frame, tape, out);
    }

    fn normalize<'a>(&self, frame: &'a [u8], out: &mut Vec<Record<'a>>) {
        let Ok(v) = json::parse(frame) else {
            return;
        };
        match v.ty {
            Ty::Array => v.items().for_each(|e| normalize(e, &json::Walk, out)),
            Ty::Object => normalize(v, &json::Walk, out),
            _ => {}
        }
    }

    /// Validates the frame and records its events' fields in the same pass,
    /// so no event is walked again (a frame too large for the tape's offsets
    /// is walked).
    fn normalize_with<'a>(&self, frame: &'a [u8], tape: &mut Tape, out: &mut Vec<Record<'a>>) {
        if u32::try_from(frame.len()).is_err() {
            return self.normalize(frame, out);
        }
        let Ok(doc) = json::parse_doc(frame, tape) else {
            return;
        };
        let v = doc.root;
        match v.ty {
            Ty::Array => doc.items(&v).for_each(|e| normalize(e, &doc, out)),
            Ty::Object => normalize(v, &doc, out),
            _ => {}
        }
    }

    fn forget(&mut self, token: &str) {
        self.epochs.remove(token);
    }

    fn reset(&mut self) {
        self.epochs.clear();
    }
}

impl Polymarket {
    fn route<'a>(&mut self, frame: &'a [u8], tape: &mut Tape, out: &mut Out<'_, 'a>) {
        let trimmed = frame.trim_ascii();
        if trimmed == b"PONG" || trimmed == b"PING" {
            out.control(if trimmed == b"PONG" { "pong" } else { "ping" }, frame);
            return;
        }
        let doc = match json::parse_doc(frame, tape) {
            Ok(d) => d,
            Err(e) => {
                out.malformed(e.reason, frame);
                return;
            }
        };
        let v = doc.root;
        match v.ty {
            Ty::Object => self.event(v.raw, doc.get_many(KEYS), 0, out),
            // an empty array carries no message: counted as a control frame
            Ty::Array if doc.first(&v).is_none() => out.control("empty", frame),
            Ty::Array => {
                for (i, e) in doc.items(&v).enumerate() {
                    let i = u32::try_from(i).unwrap_or(u32::MAX);
                    if e.ty == Ty::Object {
                        self.event(e.raw, doc.get_many_in(&e, KEYS), i, out);
                    } else {
                        let mut it = Item::malformed("array element is not an object", e.raw);
                        it.elem = i;
                        out.push(it);
                    }
                }
            }
            _ => out.malformed("not a JSON object or array", frame),
        }
    }

    fn event<'a>(
        &mut self,
        raw: &'a [u8],
        fields: [Option<Val<'a>>; 8],
        elem: u32,
        out: &mut Out<'_, 'a>,
    ) {
        let [ty, market, asset, ts, hash, txh, bids, asks] = fields;
        let ty = text(ty);
        let kind: &'static str = match ty.as_deref() {
            Some("book") => "book",
            None if bids.is_some() || asks.is_some() => "book",
            Some("price_change") => "price_change",
            Some("last_trade_price") => "trade",
            Some("best_bid_ask") => "best_bid_ask",
            Some("tick_size_change") => "tick_size_change",
            Some("new_market") => "new_market",
            Some("market_resolved") => "market_resolved",
            _ => "",
        };
        let market = text(market);
        if kind.is_empty() {
            let mut it = Item::new(
                Class::Unknown,
                ty.unwrap_or("unknown".into()),
                market.unwrap_or_default(),
                raw,
            );
            it.elem = elem;
            out.push(it);
            return;
        }
        let Some(market) = market else {
            let mut it = Item::malformed("missing market", raw);
            it.elem = elem;
            out.push(it);
            return;
        };
        let mut it = Item::new(Class::Data, kind, market, raw);
        it.elem = elem;
        it.ts_ms = ts.and_then(|t| t.as_i64());
        it.dedupe = match kind {
            "book" => text(hash),
            "trade" => text(txh),
            _ => None,
        };
        if kind == "book" {
            if let Some(asset) = text(asset) {
                let n = self.epochs.len();
                if let Some(c) = self.epochs.get_mut(asset.as_ref()) {
                    *c += 1;
                } else if n < MAX_TRACKED_TOKENS {
                    self.epochs.insert(asset.into_owned(), 1);
                }
            }
        }
        out.push(it);
    }
}

/// Normalize one Polymarket event. Records are per token (`asset_id`);
/// subjects use the condition id (`market`).
fn normalize<'a>(e: Val<'a>, look: &impl json::Lookup<'a>, out: &mut Vec<Record<'a>>) {
    const V: Venue = Venue::Polymarket;
    if e.ty != Ty::Object {
        return;
    }
    // a trade's and a quote's own fields come in the same lookup (each read once)
    let [ty, market, asset, ts, bids, asks, p, s, side, txh, b, a] = look.get_many_in(
        &e,
        [
            "event_type",
            "market",
            "asset_id",
            "timestamp",
            "bids",
            "asks",
            "price",
            "size",
            "side",
            "transaction_hash",
            "best_bid",
            "best_ask",
        ],
    );
    let ts = ts.and_then(|t| t.as_i64());
    let token = Text::of(asset);
    match ty.and_then(|t| t.str_raw()) {
        Some(b"book") | None if bids.is_some() || asks.is_some() => {
            let mut bids = object_levels(bids, "size");
            let mut asks = object_levels(asks, "size");
            sort_levels(&mut bids, BookSide::Bid);
            sort_levels(&mut asks, BookSide::Ask);
            out.push(Record::BookSnapshot(BookSnapshot {
                venue: V,
                instrument: token,
                ts,
                seq: None,
                bids,
                asks,
                checksum: None,
            }));
        }
        Some(b"price_change") => price_change(e, token, ts, out),
        Some(b"last_trade_price") => {
            out.push(Record::Trade(Trade {
                venue: V,
                instrument: token,
                ts,
                seq: None,
                price: Text::of(p),
                size: Text::of(s),
                side: Side::of(Text::of(side)),
                trade_id: Text::of(txh),
            }));
        }
        Some(b"best_bid_ask") => {
            out.push(Record::Quote(Quote {
                venue: V,
                instrument: token,
                ts,
                bid: Text::of(b),
                bid_size: Text::Null,
                ask: Text::of(a),
                ask_size: Text::Null,
                last: Text::Null,
            }));
        }
        Some(b"tick_size_change") => out.push(Record::Lifecycle(Lifecycle {
            venue: V,
            instrument: token,
            ts,
            event: Text::Word("tick_size_change"),
            detail: Raw(Some(e.raw)),
        })),
        Some(t @ (b"new_market" | b"market_resolved")) => {
            let event = if t == b"new_market" {
                "new_market"
            } else {
                "market_resolved"
            };
            out.push(Record::Lifecycle(Lifecycle {
                venue: V,
                instrument: Text::of(market),
                ts,
                event: Text::Word(event),
                detail: Raw(Some(e.raw)),
            }));
        }
        _ => {}
    }
}

/// `price_change`: one delta per token, in order of first appearance.
/// Current schema: `price_changes[]` with a token per change; legacy (before
/// 2025-09-15): the event's `asset_id` and `changes[]`.
fn price_change<'a>(e: Val<'a>, token: Text<'a>, ts: Option<i64>, out: &mut Vec<Record<'a>>) {
    let (items, legacy) = match e.get("price_changes") {
        Some(pc) => (pc, false),
        None => match e.get("changes") {
            Some(c) => (c, true),
            None => return,
        },
    };
    let mut groups: Vec<(Text<'a>, Vec<Change<'a>>)> = Vec::new();
    // one hash lookup per change: many tokens in one message stay linear
    let mut index: HashMap<Option<&'a [u8]>, usize> = HashMap::default();
    for c in items.items() {
        let [a, p, s, side] = c.get_many(["asset_id", "price", "size", "side"]);
        let a = if legacy { token } else { Text::of(a) };
        let side = match Side::of(Text::of(side)) {
            Some(Side::Sell) => BookSide::Ask,
            _ => BookSide::Bid,
        };
        let g = *index.entry(a.wire()).or_insert_with(|| {
            groups.push((a, Vec::new()));
            groups.len() - 1
        });
        groups[g].1.push(Change {
            side,
            price: Text::of(p),
            size: Text::of(s),
        });
    }
    for (instrument, changes) in groups {
        out.push(Record::BookDelta(BookDelta {
            venue: Venue::Polymarket,
            instrument,
            ts,
            seq: None,
            mode: DeltaMode::Set,
            changes,
            checksum: None,
        }));
    }
}
