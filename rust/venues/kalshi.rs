//! Kalshi Trade API v2 WebSocket: `{"type":…,"sid":…,"seq":…,"msg":{…}}`.
//!
//! Integrity: `seq` per `sid` (sids and seqs restart on every connection).
//! A gap on an orderbook sid asks the connector to resync every market seen
//! on that sid; duplicates are dropped and recorded; late arrivals are kept.

use std::borrow::Cow;
use std::collections::BTreeSet;

use rustc_hash::FxHashMap as HashMap;

use super::{parse_object, series_of, text, Out, StatusVal};
use crate::integrity::{SeqCheck, SeqTracker};
use crate::json::{Tape, Val};
use crate::model::{Class, Item};

/// Markets remembered per orderbook sid for resync requests.
const MAX_BOOK_MARKETS_PER_SID: usize = 10_000;

#[derive(Debug, Default)]
pub struct Kalshi {
    seqs: HashMap<u64, SeqTracker>,
    book_markets: HashMap<u64, BTreeSet<String>>,
}

fn secs_to_ms(v: Option<Val<'_>>) -> Option<i64> {
    v.and_then(|v| v.as_i64()).map(|s| s * 1000)
}

impl Kalshi {
    /// Stop remembering `market` for book resyncs.
    pub fn forget(&mut self, market: &str) {
        for set in self.book_markets.values_mut() {
            set.remove(market);
        }
    }

    pub fn parse<'a>(&mut self, frame: &'a [u8], tape: &mut Tape, out: &mut Out<'_, 'a>) {
        let Some(v) = parse_object(frame, tape, out) else {
            return;
        };
        let [ty, sid, seq, msg] = v.get_many(["type", "sid", "seq", "msg"]);
        let Some(ty) = text(ty) else {
            out.malformed("missing type", frame);
            return;
        };
        let sid = sid.and_then(|v| v.as_u64());
        let seq = seq.and_then(|v| v.as_u64());
        let (kind, is_book): (&'static str, bool) = match ty.as_ref() {
            "subscribed" | "ok" | "unsubscribed" | "error" => {
                // control replies on a subscription carry its sequence too
                if let (Some(sid), Some(seq)) = (sid, seq) {
                    self.seqs.entry(sid).or_default().check(seq);
                }
                out.control(ty, frame);
                return;
            }
            "ticker" => ("ticker", false),
            "trade" => ("trade", false),
            "orderbook_snapshot" | "orderbook_delta" => ("book", true),
            "market_lifecycle_v2" | "event_lifecycle" | "event_fee_update" => ("lifecycle", false),
            _ => ("", false),
        };
        let msg = msg.filter(|m| m.ty == crate::json::Ty::Object);
        // one walk over msg for everything routing needs
        let [market, event, trade_id, ts_ms, ts, determined, settled] = match msg {
            Some(m) => v.get_many_in(
                &m,
                [
                    "market_ticker",
                    "event_ticker",
                    "trade_id",
                    "ts_ms",
                    "ts",
                    "determination_ts",
                    "settled_ts",
                ],
            ),
            None => [None; 7],
        };
        let instrument = text(market).or_else(|| text(event));
        let mut item = if kind.is_empty() {
            let mut it = Item::new(
                Class::Unknown,
                ty,
                instrument.clone().unwrap_or_default(),
                frame,
            );
            it.series = instrument.as_ref().map(series_of);
            it
        } else {
            if msg.is_none() {
                out.malformed("missing msg", frame);
                return;
            }
            let Some(instrument) = instrument else {
                out.malformed("missing market_ticker", frame);
                return;
            };
            let mut it = Item::new(Class::Data, kind, instrument.clone(), frame);
            it.series = Some(series_of(&instrument));
            it.ts_ms = match kind {
                "lifecycle" => secs_to_ms(determined.or(settled)),
                _ => ts_ms.and_then(|v| v.as_i64()).or_else(|| secs_to_ms(ts)),
            };
            it.dedupe = text(trade_id);
            it
        };
        item.seq = seq;
        if let (Some(sid), Some(seq)) = (sid, seq) {
            if is_book {
                let set = self.book_markets.entry(sid).or_default();
                if set.len() < MAX_BOOK_MARKETS_PER_SID && !set.contains(item.instrument.as_ref()) {
                    set.insert(item.instrument.to_string());
                }
            }
            if !self.check_seq(sid, seq, is_book, &item.instrument, out) {
                return; // duplicate: recorded, not re-emitted
            }
            if item.dedupe.is_none() {
                item.dedupe = Some(Cow::Owned(format!("{sid}:{seq}")));
            }
        }
        out.push(item);
    }

    /// Check one sequence number; false when the message is a duplicate.
    fn check_seq(
        &mut self,
        sid: u64,
        seq: u64,
        is_book: bool,
        instrument: &str,
        out: &mut Out<'_, '_>,
    ) -> bool {
        match self
            .seqs
            .entry(sid)
            .or_default()
            .check_mode(seq, out.replay)
        {
            SeqCheck::First | SeqCheck::InOrder => true,
            SeqCheck::Gap { expected, got } => {
                out.counters.gaps += 1;
                let sid_s = sid.to_string();
                out.status(
                    "",
                    "gap",
                    &[
                        ("sid", StatusVal::U(sid)),
                        ("expected", StatusVal::U(expected)),
                        ("got", StatusVal::U(got)),
                        ("missing", StatusVal::U(got - expected)),
                        ("instrument", StatusVal::S(instrument)),
                    ],
                );
                if is_book {
                    let markets: Vec<String> = self
                        .book_markets
                        .get(&sid)
                        .map(|s| s.iter().cloned().collect())
                        .unwrap_or_default();
                    for m in &markets {
                        out.resync(m, "seq_gap");
                        out.status(
                            m.clone(),
                            "resync",
                            &[
                                ("reason", StatusVal::S("seq_gap")),
                                ("sid", StatusVal::S(&sid_s)),
                            ],
                        );
                    }
                }
                true
            }
            SeqCheck::Late => {
                out.counters.late += 1;
                out.status(
                    "",
                    "late",
                    &[("sid", StatusVal::U(sid)), ("seq", StatusVal::U(seq))],
                );
                true
            }
            SeqCheck::Duplicate => {
                out.counters.duplicates += 1;
                out.status(
                    "",
                    "duplicate",
                    &[
                        ("sid", StatusVal::U(sid)),
                        ("seq", StatusVal::U(seq)),
                        ("instrument", StatusVal::S(instrument)),
                    ],
                );
                false
            }
            SeqCheck::Restart { last } => {
                out.counters.restarts += 1;
                out.status(
                    "",
                    "restart",
                    &[
                        ("sid", StatusVal::U(sid)),
                        ("last", StatusVal::U(last)),
                        ("seq", StatusVal::U(seq)),
                    ],
                );
                true
            }
        }
    }
}
