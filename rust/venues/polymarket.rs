//! Polymarket CLOB market channel: a frame is one event object or an array
//! of them; the server answers the client's text `PING` with a bare `PONG`.
//!
//! Subjects use the condition id (`market`). There are no sequence numbers;
//! a book "epoch" counts full `book` snapshots per token so that a
//! `price_change` arriving before any book for its token is visible.

use rustc_hash::FxHashMap as HashMap;

use super::{text, Out};
use crate::json::{self, Tape, Ty, Val};
use crate::model::{Class, Item};

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
    pub epochs: HashMap<String, u64>,
}

impl Polymarket {
    pub fn parse<'a>(&mut self, frame: &'a [u8], tape: &mut Tape, out: &mut Out<'_, 'a>) {
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
