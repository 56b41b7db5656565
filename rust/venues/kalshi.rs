//! Kalshi Trade API v2 WebSocket: `{"type":…,"sid":…,"seq":…,"msg":{…}}`.
//!
//! Integrity: `seq` per `sid` (sids and seqs restart on every connection).
//! A gap on an orderbook sid asks the connector to resync every market seen
//! on that sid; duplicates are dropped and recorded; late arrivals are kept.

use std::borrow::Cow;
use std::collections::BTreeSet;

use rustc_hash::FxHashMap as HashMap;

use super::{parse_object, text, Out, Setting, StatusVal, VenueParser};
use crate::error::Error;
use crate::integrity::{SeqCheck, SeqTracker};
use crate::json::{self, Tape, Ty, Val};
use crate::model::{Class, Item, Venue};
use crate::records::{
    sort_levels, BookDelta, BookSide, BookSnapshot, Change, DeltaMode, Level, Lifecycle, Quote,
    Raw, Record, Side, Text, Trade,
};
use crate::subject::category_token;

/// Markets remembered per orderbook sid for resync requests.
const MAX_BOOK_MARKETS_PER_SID: usize = 10_000;

#[derive(Debug, Default)]
pub struct Kalshi {
    seqs: HashMap<u64, SeqTracker>,
    book_markets: HashMap<u64, BTreeSet<String>>,
    /// Series → subject category token (from the secmaster).
    categories: HashMap<String, String>,
}

fn secs_to_ms(v: Option<Val<'_>>) -> Option<i64> {
    v.and_then(|v| v.as_i64()).and_then(|s| s.checked_mul(1000)) // none past i64 ms
}

/// Exchange time of a message: `ts_ms`, else `ts` in seconds.
fn exchange_ms(ts_ms: Option<Val<'_>>, ts: Option<Val<'_>>) -> Option<i64> {
    ts_ms.and_then(|v| v.as_i64()).or_else(|| secs_to_ms(ts))
}

/// Lifecycle time: when the market was determined, else settled.
fn lifecycle_ms(determined: Option<Val<'_>>, settled: Option<Val<'_>>) -> Option<i64> {
    secs_to_ms(determined.or(settled))
}

/// The series of a market or event ticker: `SERIES` of `SERIES-EVENT-MARKET`.
fn series_of(ticker: &str) -> &str {
    ticker.split('-').next().unwrap_or("")
}

impl VenueParser for Kalshi {
    fn venue(&self) -> Venue {
        Venue::Kalshi
    }

    fn parse<'a>(&mut self, frame: &'a [u8], tape: &mut Tape, out: &mut Out<'_, 'a>) {
        self.route(frame, tape, out);
    }

    /// Kalshi subjects carry the series category (`unknown` until the
    /// secmaster says); lines about the whole connection have none.
    fn category(&self, item: &Item<'_>) -> Option<&str> {
        if item.instrument.is_empty() {
            return None;
        }
        let series = series_of(&item.instrument);
        Some(
            self.categories
                .get(series)
                .map_or("unknown", String::as_str),
        )
    }

    fn normalize<'a>(&self, frame: &'a [u8], out: &mut Vec<Record<'a>>) {
        self.normalize_with(frame, &mut Tape::with_depth(2), out);
    }

    /// Validates the message and records its fields and those of its `msg`
    /// in the same pass, so neither is walked again (a frame too large for
    /// the tape's offsets is walked).
    fn normalize_with<'a>(&self, frame: &'a [u8], tape: &mut Tape, out: &mut Vec<Record<'a>>) {
        const TOP: [&str; 3] = ["type", "seq", "msg"];
        if u32::try_from(frame.len()).is_err() {
            if let Some(v) = json::parse(frame).ok().filter(|v| v.ty == Ty::Object) {
                let [ty, seq, msg] = v.get_many(TOP);
                normalize(ty, seq, msg, &json::Walk, out);
            }
        } else if let Some(doc) = json::parse_doc(frame, tape)
            .ok()
            .filter(|d| d.root.ty == Ty::Object)
        {
            let [ty, seq, msg] = doc.get_many(TOP);
            normalize(ty, seq, msg, &doc, out);
        }
    }

    fn configure(&mut self, setting: Setting<'_>) -> Result<(), Error> {
        match setting {
            Setting::Category { series, category } => {
                self.categories
                    .insert(series.to_owned(), category_token(category));
                Ok(())
            }
            s => Err(super::not_for(Venue::Kalshi, s)),
        }
    }

    /// Stop remembering `market` for book resyncs (sequence state per `sid`
    /// is shared by many markets and stays).
    fn forget(&mut self, market: &str) {
        for set in self.book_markets.values_mut() {
            set.remove(market);
        }
    }

    fn reset(&mut self) {
        self.seqs.clear();
        self.book_markets.clear();
    }
}

impl Kalshi {
    fn route<'a>(&mut self, frame: &'a [u8], tape: &mut Tape, out: &mut Out<'_, 'a>) {
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
        let msg = msg.filter(|m| m.ty == Ty::Object);
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
            Item::new(Class::Unknown, ty, instrument.unwrap_or_default(), frame)
        } else {
            if msg.is_none() {
                out.malformed("missing msg", frame);
                return;
            }
            let Some(instrument) = instrument else {
                out.malformed("missing market_ticker", frame);
                return;
            };
            let mut it = Item::new(Class::Data, kind, instrument, frame);
            it.ts_ms = match kind {
                "lifecycle" => lifecycle_ms(determined, settled),
                _ => exchange_ms(ts_ms, ts),
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
            if !self.check_seq(sid, seq, kind, &item.instrument, out) {
                return; // duplicate: recorded, not re-emitted
            }
            if item.dedupe.is_none() {
                item.dedupe = Some(Cow::Owned(format!("{sid}:{seq}")));
            }
        }
        out.push(item);
    }

    /// Check one sequence number; false when the message is a duplicate. A
    /// gap names the `feed` (the message kind) of the subscription it was
    /// found on, one channel a `sid`: what was lost was of that kind, for any
    /// of its markets.
    fn check_seq(
        &mut self,
        sid: u64,
        seq: u64,
        kind: &str,
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
                        ("feed", StatusVal::S(kind)),
                    ],
                );
                if kind == "book" {
                    let markets = self.book_markets.get(&sid).cloned().unwrap_or_default();
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

/// A size field, else the legacy integer count as fixed-point text.
fn size_of<'a>(fp: Option<Val<'a>>, count: Option<Val<'a>>) -> Text<'a> {
    Text::of(fp).or(|| Text::count(count))
}

/// A dollar price field, else the legacy integer cents.
fn price_of<'a>(dollars: Option<Val<'a>>, cents: Option<Val<'a>>) -> Text<'a> {
    Text::of(dollars).or(|| Text::cents(cents))
}

/// One side of an orderbook snapshot: `[[price, size], …]` in fixed-point
/// dollars, or legacy `[[cents, size], …]`.
fn snapshot_side<'a>(m: Val<'a>, keys: [&str; 3]) -> Vec<Level<'a>> {
    let [fp, dollars, cents] = m.get_many(keys);
    let pair = |p: Val<'a>| {
        let mut it = p.items();
        (it.next(), it.next())
    };
    if let Some(l) = fp.or(dollars) {
        l.items()
            .map(|p| {
                let (price, size) = pair(p);
                Level {
                    price: Text::of(price),
                    size: Text::of(size),
                }
            })
            .collect()
    } else {
        cents
            .iter()
            .flat_map(|l| l.items())
            .map(|p| {
                let (price, size) = pair(p);
                Level {
                    price: Text::cents(price),
                    size: Text::of(size),
                }
            })
            .collect()
    }
}

/// The fields of a `ticker` message's `msg`, in [`ticker`]'s order.
const TICKER_KEYS: [&str; 11] = [
    "market_ticker",
    "ts_ms",
    "ts",
    "yes_bid_dollars",
    "yes_ask_dollars",
    "yes_bid_size_fp",
    "yes_ask_size_fp",
    "price_dollars",
    "yes_bid",
    "yes_ask",
    "price",
];

/// The fields of a `trade` message's `msg`, in [`trade`]'s order.
const TRADE_KEYS: [&str; 10] = [
    "market_ticker",
    "ts_ms",
    "ts",
    "yes_price_dollars",
    "count_fp",
    "taker_outcome_side",
    "taker_side",
    "trade_id",
    "yes_price",
    "count",
];

/// A `ticker` message's quote.
fn ticker<'a>(fields: [Option<Val<'a>>; 11], out: &mut Vec<Record<'a>>) {
    let [tk, ts_ms, ts, yb, ya, ybs, yas, pd, yb_c, ya_c, p_c] = fields;
    out.push(Record::Quote(Quote {
        venue: Venue::Kalshi,
        instrument: Text::of(tk),
        ts: exchange_ms(ts_ms, ts),
        bid: price_of(yb, yb_c),
        bid_size: Text::of(ybs),
        ask: price_of(ya, ya_c),
        ask_size: Text::of(yas),
        last: if pd.is_some() {
            Text::of(pd)
        } else {
            Text::cents(p_c)
        },
    }));
}

/// A `trade` message's trade.
fn trade<'a>(fields: [Option<Val<'a>>; 10], seq: Option<u64>, out: &mut Vec<Record<'a>>) {
    let [tk, ts_ms, ts, yp, cfp, outcome, taker, id, yp_c, count] = fields;
    out.push(Record::Trade(Trade {
        venue: Venue::Kalshi,
        instrument: Text::of(tk),
        ts: exchange_ms(ts_ms, ts),
        seq,
        price: price_of(yp, yp_c),
        size: size_of(cfp, count),
        side: Side::of(Text::of(outcome).or(|| Text::of(taker))),
        trade_id: Text::of(id),
    }));
}

/// Normalize one Kalshi message (its `type`, `seq` and `msg`). Books are
/// YES bids plus NO bids; a NO bid at `p` is a YES ask at `1 − p`.
fn normalize<'a>(
    ty: Option<Val<'a>>,
    seq: Option<Val<'a>>,
    msg: Option<Val<'a>>,
    look: &impl json::Lookup<'a>,
    out: &mut Vec<Record<'a>>,
) {
    const V: Venue = Venue::Kalshi;
    let (Some(ty), Some(m)) = (ty.and_then(|t| t.str_raw()), msg) else {
        return;
    };
    let seq = seq.and_then(|s| s.as_u64());
    // the busiest types read every field they need in one lookup in `msg`
    match ty {
        b"trade" => return trade(look.get_many_in(&m, TRADE_KEYS), seq, out),
        b"ticker" => return ticker(look.get_many_in(&m, TICKER_KEYS), out),
        _ => {}
    }
    let [ticker, ts_ms, ts] = m.get_many(["market_ticker", "ts_ms", "ts"]);
    let instrument = Text::of(ticker);
    let ts = exchange_ms(ts_ms, ts);
    match ty {
        b"orderbook_snapshot" => {
            let mut bids = snapshot_side(m, ["yes_dollars_fp", "yes_dollars", "yes"]);
            let mut asks: Vec<Level<'a>> = snapshot_side(m, ["no_dollars_fp", "no_dollars", "no"])
                .into_iter()
                .map(|l| Level {
                    price: l.price.one_minus(),
                    size: l.size,
                })
                .collect();
            sort_levels(&mut bids, BookSide::Bid);
            sort_levels(&mut asks, BookSide::Ask);
            out.push(Record::BookSnapshot(BookSnapshot {
                venue: V,
                instrument,
                ts,
                seq,
                bids,
                asks,
                checksum: None,
            }));
        }
        b"orderbook_delta" => {
            let [pd, p_c, dfp, d, side] =
                m.get_many(["price_dollars", "price", "delta_fp", "delta", "side"]);
            let price = price_of(pd, p_c);
            let size = Text::of(dfp).or(|| Text::of(d));
            let change = match side.and_then(|s| s.str_raw()) {
                Some(b"no") => Change {
                    side: BookSide::Ask,
                    price: price.one_minus(),
                    size,
                },
                _ => Change {
                    side: BookSide::Bid,
                    price,
                    size,
                },
            };
            out.push(Record::BookDelta(BookDelta {
                venue: V,
                instrument,
                ts,
                seq,
                mode: DeltaMode::Add,
                changes: vec![change],
                checksum: None,
            }));
        }
        b"market_lifecycle_v2" => {
            let [event, determined, settled] =
                m.get_many(["event_type", "determination_ts", "settled_ts"]);
            out.push(Record::Lifecycle(Lifecycle {
                venue: V,
                instrument,
                ts: lifecycle_ms(determined, settled),
                event: Text::of(event),
                detail: Raw(Some(m.raw)),
            }));
        }
        b"event_lifecycle" | b"event_fee_update" => {
            let event = if ty == b"event_lifecycle" {
                "event_lifecycle"
            } else {
                "event_fee_update"
            };
            out.push(Record::Lifecycle(Lifecycle {
                venue: V,
                instrument: Text::of(m.get("event_ticker")),
                ts: None,
                event: Text::Word(event),
                detail: Raw(Some(m.raw)),
            }));
        }
        _ => {}
    }
}
