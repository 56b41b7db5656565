//! Normalization to the neutral model (`crate::records`): each venue's
//! parser turns its messages into typed records (`VenueParser::normalize`,
//! in `venues/<venue>.rs`); this module writes them as JSON lines, the one
//! JSONL encoding of the records.

use crate::json::Tape;
use crate::model::Venue;
use crate::records::Record;
use crate::venues::{self, VenueParser};

/// Normalizes the frames of one venue, reusing its buffers between frames.
#[derive(Debug)]
pub struct Normalizer {
    parser: Box<dyn VenueParser>,
    /// Records containers down to the venue's depth: a Kalshi message and
    /// its `msg`, a Kraken message, its `data` and each element's fields.
    tape: Tape,
}

impl Normalizer {
    pub fn new(venue: Venue) -> Self {
        let parser = venues::parser(venue);
        let tape = Tape::with_depth(parser.tape_depth().max(2));
        Normalizer { parser, tape }
    }

    /// The records of one raw frame (or archived `msg`). Every venue's
    /// normalizer validates the frame first, and validation refuses
    /// invalid UTF-8 (`rust/tests/json_differential.rs` holds it to
    /// serde_json's decision on arbitrary bytes), so a frame that is not
    /// UTF-8 gives no records without a separate check.
    pub fn records<'a>(&mut self, frame: &'a [u8], out: &mut Vec<Record<'a>>) {
        self.parser.normalize_with(frame, &mut self.tape, out);
    }

    /// Append one JSON line per record of `frame` to `out`; returns the
    /// number of records.
    pub fn write(&mut self, frame: &[u8], out: &mut Vec<u8>) -> usize {
        self.write_all([frame], out)
    }

    /// [`Self::write`] for many frames, with one record buffer for all.
    pub fn write_all<'a>(
        &mut self,
        frames: impl IntoIterator<Item = &'a [u8]>,
        out: &mut Vec<u8>,
    ) -> usize {
        let mut records = Vec::new();
        let mut n = 0;
        for frame in frames {
            self.records(frame, &mut records);
            n += records.len();
            for r in records.drain(..) {
                r.write_json(out);
            }
        }
        n
    }
}

/// Normalize one raw frame (or archived `msg`) of `venue`, appending one
/// JSON line per record to `out`. Returns the number of records; control
/// frames, unknown types and unparsable input give none.
pub fn normalize(venue: Venue, frame: &[u8], out: &mut Vec<u8>) -> usize {
    Normalizer::new(venue).write(frame, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;

    #[test]
    fn frames_that_are_not_utf8_give_no_records() {
        let frames: [(Venue, &[u8]); 4] = [
            (Venue::Kraken, b"{\"channel\":\"trade\",\"type\":\"update\",\"data\":[{\"symbol\":\"BTC/USD\",\"side\":\"buy\",\"price\":1,\"qty\":1,\"trade_id\":1,\"timestamp\":\"\xff\"}]}"),
            (Venue::Kalshi, b"{\"type\":\"trade\",\"sid\":1,\"seq\":1,\"msg\":{\"market_ticker\":\"K\xc0\xaf\",\"yes_price_dollars\":\"0.5\",\"count_fp\":\"1\",\"taker_side\":\"yes\",\"ts\":1}}"),
            (Venue::Polymarket, b"{\"event_type\":\"last_trade_price\",\"asset_id\":\"\xed\xa0\x80\",\"price\":\"0.5\",\"size\":\"1\",\"side\":\"BUY\",\"timestamp\":\"1\"}"),
            (Venue::KrakenFutures, b"{\"feed\":\"trade\",\"product_id\":\"PI_\x80\",\"price\":1,\"qty\":1,\"side\":\"buy\",\"time\":1,\"seq\":1}"),
        ];
        for (venue, frame) in frames {
            let mut n = Normalizer::new(venue);
            let mut out = Vec::new();
            n.records(frame, &mut out);
            assert!(out.is_empty(), "{venue:?}");
            // the same frame made valid gives a record: the test is not vacuous
            let fixed = String::from_utf8_lossy(frame).replace('\u{fffd}', "x");
            let mut out = Vec::new();
            n.records(fixed.as_bytes(), &mut out);
            assert_eq!(out.len(), 1, "{venue:?}: {fixed}");
        }
    }

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
    fn kalshi_seconds_too_large_for_ms_give_no_time() {
        for ts in [i64::MAX, i64::MIN, i64::MAX / 1000 + 1] {
            let r = norm(
                Venue::Kalshi,
                &format!(
                    r#"{{"type":"trade","sid":1,"seq":1,"msg":{{"trade_id":"t","market_ticker":"KX-1","yes_price":55,"count":1,"taker_side":"yes","ts":{ts}}}}}"#
                ),
            );
            assert_eq!(r.len(), 1, "{ts}");
            assert!(r[0].contains(r#""ts":null,"#), "{}", r[0]);
        }
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
