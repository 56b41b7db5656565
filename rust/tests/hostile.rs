//! Hostile input at the processor (issue 13, "Parsing time is linear"):
//! routing work is linear in the frame for every venue, measured as tape
//! entries visited (never as time), oversized frames are kept unparsed, and
//! an empty Polymarket array is counted.

use ssmd_core::model::{Class, Venue};
use ssmd_core::processor::{Processor, Rx, DEFAULT_MAX_FRAME_BYTES};

/// Tape entries one `process` call of `frame` visits on a fresh processor.
fn visits(venue: Venue, frame: &[u8]) -> (u64, usize) {
    let mut p = Processor::new(venue, "c", "prod");
    let b = p.process(&[frame], Rx::All(1));
    (p.tape_visits(), b.entries.len() + b.controls.len())
}

/// Build a frame of `n` repeated parts: `head`, parts joined by `,`, `tail`.
fn frame(head: &str, part: impl Fn(usize) -> String, n: usize, tail: &str) -> Vec<u8> {
    let mut s = String::from(head);
    for i in 0..n {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&part(i));
    }
    s.push_str(tail);
    s.into_bytes()
}

/// Work per element stays flat as the frame grows 100-fold: the visits of a
/// frame of `n` elements are within `per` per element (plus a constant).
fn assert_linear(venue: Venue, make: impl Fn(usize) -> Vec<u8>, per: u64) -> Vec<u64> {
    let mut seen = Vec::new();
    for n in [100usize, 1_000, 10_000] {
        let (v, _) = visits(venue, &make(n));
        assert!(
            v <= per * n as u64 + 16,
            "{venue:?}: {v} tape visits for {n} elements (more than {per} each)"
        );
        seen.push(v);
    }
    seen
}

#[test]
fn polymarket_array_lookups_are_linear() {
    let el = |i: usize| {
        format!(
            r#"{{"event_type":"last_trade_price","asset_id":"{i}","market":"0xab","price":"0.5","size":"1","side":"BUY","timestamp":"6","fee_rate_bps":"0"}}"#
        )
    };
    let make = |n| frame("[", el, n, "]");
    let seen = assert_linear(Venue::Polymarket, make, 12);
    // every element is looked at: the counter does measure the lookups
    assert!(seen[2] >= 10_000, "visits {seen:?}");
    let (_, out) = visits(Venue::Polymarket, &make(10_000));
    assert_eq!(out, 10_000);
}

#[test]
fn polymarket_object_with_many_fields_is_linear() {
    let make = |n| {
        frame(
            r#"{"event_type":"book","market":"0x1","#,
            |i| format!(r#""k{i}":{i}"#),
            n,
            "}",
        )
    };
    assert_linear(Venue::Polymarket, make, 2);
}

#[test]
fn kalshi_msg_with_many_fields_is_linear() {
    let make = |n| {
        frame(
            r#"{"type":"ticker","sid":1,"seq":1,"msg":{"#,
            |i| format!(r#""f{i}":{i}"#),
            n,
            r#","market_ticker":"A-B"}}"#,
        )
    };
    assert_linear(Venue::Kalshi, make, 3);
}

#[test]
fn kraken_data_with_many_elements_is_linear() {
    let make = |n| {
        frame(
            r#"{"channel":"trade","type":"update","data":["#,
            |i| {
                format!(
                    r#"{{"symbol":"BTC/USD","side":"buy","price":1.5,"qty":2,"ord_type":"limit","trade_id":{i},"timestamp":"2026-01-01T00:00:00.000000Z"}}"#
                )
            },
            n,
            "]}",
        )
    };
    assert_linear(Venue::Kraken, make, 3);
    // a book update whose first element has many levels
    let book = |n| {
        frame(
            r#"{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":["#,
            |i| format!(r#"{{"price":{}.5,"qty":1}}"#, i + 1),
            n,
            r#"],"asks":[],"checksum":1,"timestamp":"2026-01-01T00:00:00.000000Z"}]}"#,
        )
    };
    assert_linear(Venue::Kraken, book, 3);
}

#[test]
fn kraken_futures_root_with_many_fields_is_linear() {
    let make = |n| {
        frame(
            r#"{"feed":"ticker","product_id":"PI_XBTUSD","#,
            |i| format!(r#""f{i}":{i}"#),
            n,
            "}",
        )
    };
    assert_linear(Venue::KrakenFutures, make, 3);
}

#[test]
fn oversized_frames_are_malformed_without_parsing() {
    for venue in Venue::ALL {
        let mut p = Processor::new(venue, "c", "prod");
        p.max_frame_bytes = 64;
        let none = p.process(&[&frame("[", |i| i.to_string(), 100, "]")], Rx::All(1));
        assert_eq!(
            p.tape_visits(),
            0,
            "{venue:?}: an oversized frame was parsed"
        );
        assert_eq!(none.entries.len(), 1);
        let big = frame("[", |i| i.to_string(), 100, "]");
        assert!(big.len() > 64);
        let b = p.process(&[&big, b"[1]"], Rx::All(1));
        let e = &b.entries[0];
        assert_eq!(e.class, Class::Malformed);
        let msg = String::from_utf8(b.msg(e).to_vec()).unwrap();
        assert!(msg.contains(r#""error":"frame too large""#), "{msg}");
        // the frame is kept whole
        assert!(msg.contains(&String::from_utf8(big.clone()).unwrap()));
        // the frame after it is handled as usual (parsed: not an object)
        assert_eq!(b.frames, 2);
        assert_eq!(b.entries.len(), 2);
        assert!(!b.msg(&b.entries[1]).windows(9).any(|w| w == b"too large"));
        assert_eq!(p.counters.malformed, 3);
    }
    assert_eq!(DEFAULT_MAX_FRAME_BYTES, 16 << 20);
}

#[test]
fn empty_polymarket_array_is_a_counted_control_frame() {
    let mut p = Processor::new(Venue::Polymarket, "c", "prod");
    let b = p.process(&[b"[]", b" [ ] "], Rx::All(1));
    assert!(b.entries.is_empty());
    assert_eq!(
        b.controls,
        vec![
            ("empty".to_owned(), b"[]".to_vec()),
            ("empty".to_owned(), b" [ ] ".to_vec())
        ]
    );
    assert_eq!(p.counters.control, 2);
}
