//! Generators of hostile input: arbitrary bytes, venue-keyed JSON, mutated
//! and structurally edited fixture frames.

use std::sync::OnceLock;

use proptest::prelude::*;
use proptest::sample::Index;
use ssmd_core::model::Venue;

use super::checks::*;

// ---------------------------------------------------------------------------
// Strategies

pub fn venue() -> impl Strategy<Value = Venue> {
    prop::sample::select(Venue::ALL.to_vec())
}

/// Keys the venue parsers route on, so that generated JSON reaches past the
/// first `match`.
pub const KEYS: &[&str] = &[
    "type",
    "sid",
    "seq",
    "msg",
    "market_ticker",
    "event_ticker",
    "trade_id",
    "ts",
    "ts_ms",
    "channel",
    "data",
    "symbol",
    "bids",
    "asks",
    "price",
    "qty",
    "checksum",
    "timestamp",
    "method",
    "success",
    "error",
    "feed",
    "event",
    "product_id",
    "time",
    "uid",
    "trades",
    "event_type",
    "market",
    "asset_id",
    "hash",
    "size",
    "side",
];

/// String values the parsers dispatch on.
pub const WORDS: &[&str] = &[
    "trade",
    "ticker",
    "book",
    "book_snapshot",
    "trade_snapshot",
    "orderbook_snapshot",
    "orderbook_delta",
    "market_lifecycle_v2",
    "subscribed",
    "error",
    "snapshot",
    "update",
    "heartbeat",
    "status",
    "price_change",
    "last_trade_price",
    "best_bid_ask",
    "BTC/USD",
    "KXBTCD-26FEB14-T100000",
    "",
    "a.b*c>d",
    " ",
    "\\u0000",
    "\\ud800",
    "\\\"",
    "1.5",
    "-0",
    "2023-09-25T09:04:31.742648Z",
];

pub fn huge_number() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("1e99999".to_owned()),
        Just("-1E-99999".to_owned()),
        Just("18446744073709551616".to_owned()),
        Just("-9223372036854775809".to_owned()),
        Just("0.0000000000000000000000001".to_owned()),
        (1usize..450).prop_map(|n| "9".repeat(n)),
        (1usize..450).prop_map(|n| format!("-1{}", "0".repeat(n))),
    ]
}

/// Valid JSON built from the venues' keys and values, with odd types.
pub fn venue_json() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("false".to_owned()),
        (0u64..5000).prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        huge_number(),
        prop::sample::select(WORDS).prop_map(|w| format!("\"{w}\"")),
    ];
    leaf.prop_recursive(6, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..8).prop_map(|kv| {
                let fields: Vec<String> = kv.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                format!("{{{}}}", fields.join(","))
            }),
        ]
    })
}

/// Fragments that JSON-looking junk is made of.
pub const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "\"",
    ":",
    ",",
    " ",
    "\n",
    "\\",
    "\\u12",
    "\\ud800",
    "-",
    "0",
    "1e",
    "1e99999",
    "null",
    "tru",
    "\"type\"",
    "\"trade\"",
    "\"channel\"",
    "\"feed\"",
    "\"book\"",
    "\"event_type\"",
    "\"msg\"",
    "\"data\"",
    "PONG",
    "\u{feff}",
    "\u{0}",
    "\u{7f}",
    "é",
];

pub fn frame() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => prop::collection::vec(any::<u8>(), 0..300),
        2 => prop::collection::vec(prop::sample::select(TOKENS), 0..60)
            .prop_map(|t| t.concat().into_bytes()),
        3 => venue_json().prop_map(String::into_bytes),
        1 => (1usize..3000, prop::sample::select(&["[", "{\"a\":", "[{\"data\":"][..]))
            .prop_map(|(n, open)| open.repeat(n).into_bytes()),
        1 => (1usize..80).prop_map(|n| format!("{}{}", "[".repeat(n), "]".repeat(n)).into_bytes()),
        1 => huge_number().prop_map(String::into_bytes),
        1 => (huge_number(), prop::sample::select(KEYS))
            .prop_map(|(n, k)| format!("{{\"type\":\"trade\",\"sid\":1,\"{k}\":{n},\"msg\":{{\"{k}\":{n}}}}}").into_bytes()),
    ]
}

#[derive(Debug, Clone)]
pub enum Mutation {
    Flip(Index, u8),
    Cut(Index),
    Dup(Index, usize),
    Insert(Index, Vec<u8>),
}

pub const INSERTS: &[&[u8]] = &[
    b"\"",
    b"{",
    b"]",
    b"\\u12",
    b"-",
    b"1e99999",
    b"99999999999999999999999999999999999999999",
    b"\x00",
    b"\xc3",
    b"\xff",
    b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
];

pub fn mutation() -> impl Strategy<Value = Mutation> {
    let big = (300usize..450).prop_map(|n| vec![b'7'; n]);
    prop_oneof![
        3 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        1 => any::<Index>().prop_map(Mutation::Cut),
        2 => (any::<Index>(), 1usize..40).prop_map(|(i, n)| Mutation::Dup(i, n)),
        3 => (any::<Index>(), prop::sample::select(INSERTS))
            .prop_map(|(i, s)| Mutation::Insert(i, s.to_vec())),
        1 => (any::<Index>(), big).prop_map(|(i, s)| Mutation::Insert(i, s)),
    ]
}

pub fn mutate(frame: &mut Vec<u8>, m: &Mutation) {
    let at = |i: &Index, len: usize| if len == 0 { 0 } else { i.index(len) };
    match m {
        Mutation::Flip(i, b) => {
            if !frame.is_empty() {
                let k = at(i, frame.len());
                frame[k] = *b;
            }
        }
        Mutation::Cut(i) => frame.truncate(at(i, frame.len())),
        Mutation::Dup(i, n) => {
            let k = at(i, frame.len());
            let slice = frame[k..(k + n).min(frame.len())].to_vec();
            frame.splice(k..k, slice);
        }
        Mutation::Insert(i, s) => {
            let k = at(i, frame.len() + 1);
            frame.splice(k..k, s.iter().copied());
        }
    }
}

/// A venue and a batch of its fixture frames, each mutated 0–5 times.
pub fn mutated_batch() -> impl Strategy<Value = (Venue, Vec<Frame>)> {
    venue().prop_flat_map(|v| {
        let one = (
            prop::sample::select(fixtures(v)),
            prop::collection::vec(mutation(), 0..6),
        )
            .prop_map(|(mut f, ms)| {
                for m in &ms {
                    mutate(&mut f, m);
                }
                Frame(f)
            });
        (Just(v), prop::collection::vec(one, 1..8))
    })
}

/// A JSON tree for structural edits of fixture frames; leaves keep their
/// exact text, so huge numbers survive.
#[derive(Debug, Clone)]
pub enum J {
    Leaf(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

impl J {
    fn from_serde(v: &serde_json::Value) -> J {
        match v {
            serde_json::Value::Array(a) => J::Arr(a.iter().map(J::from_serde).collect()),
            serde_json::Value::Object(o) => J::Obj(
                o.iter()
                    .map(|(k, v)| (serde_json::to_string(k).expect("key"), J::from_serde(v)))
                    .collect(),
            ),
            leaf => J::Leaf(leaf.to_string()),
        }
    }

    fn count(&self) -> usize {
        1 + match self {
            J::Leaf(_) => 0,
            J::Arr(a) => a.iter().map(J::count).sum(),
            J::Obj(o) => o.iter().map(|(_, v)| v.count()).sum(),
        }
    }

    /// The `n`-th node in pre-order.
    fn nth(&mut self, n: usize) -> Option<&mut J> {
        if n == 0 {
            return Some(self);
        }
        let mut n = n - 1;
        let kids: Vec<&mut J> = match self {
            J::Leaf(_) => return None,
            J::Arr(a) => a.iter_mut().collect(),
            J::Obj(o) => o.iter_mut().map(|(_, v)| v).collect(),
        };
        for k in kids {
            let c = k.count();
            if n < c {
                return k.nth(n);
            }
            n -= c;
        }
        None
    }

    fn write(&self, ws: &[u8], out: &mut Vec<u8>) {
        match self {
            J::Leaf(t) => out.extend_from_slice(t.as_bytes()),
            J::Arr(a) => {
                out.push(b'[');
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(ws);
                    v.write(ws, out);
                }
                out.extend_from_slice(ws);
                out.push(b']');
            }
            J::Obj(o) => {
                out.push(b'{');
                for (i, (k, v)) in o.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(ws);
                    out.extend_from_slice(k.as_bytes());
                    out.push(b':');
                    out.extend_from_slice(ws);
                    v.write(ws, out);
                }
                out.extend_from_slice(ws);
                out.push(b'}');
            }
        }
    }
}

/// Fixture frames that are JSON, as trees.
pub fn fixture_trees(venue: Venue) -> &'static [J] {
    static ALL: OnceLock<Vec<Vec<J>>> = OnceLock::new();
    &ALL.get_or_init(|| {
        Venue::ALL
            .iter()
            .map(|&v| {
                fixtures(v)
                    .iter()
                    .filter_map(|f| serde_json::from_slice::<serde_json::Value>(f).ok())
                    .map(|x| J::from_serde(&x))
                    .collect()
            })
            .collect()
    })[slot(venue)]
}

#[derive(Debug, Clone)]
pub enum Edit {
    /// Replace a node by a value of another shape.
    Replace(Index, String),
    /// Drop one field of an object (or element of an array).
    Remove(Index, Index),
}

pub fn edit() -> impl Strategy<Value = Edit> {
    let value = prop_oneof![
        3 => prop::sample::select(WORDS).prop_map(|w| format!("\"{w}\"")),
        2 => huge_number(),
        1 => prop::sample::select(&["null", "true", "[]", "{}", "[{}]", "0", "-1", "1.5"][..])
            .prop_map(str::to_owned),
        1 => venue_json(),
    ];
    prop_oneof![
        4 => (any::<Index>(), value).prop_map(|(i, v)| Edit::Replace(i, v)),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(i, k)| Edit::Remove(i, k)),
    ]
}

pub fn apply(tree: &mut J, e: &Edit) {
    match e {
        Edit::Replace(i, v) => {
            let n = i.index(tree.count());
            if let Some(node) = tree.nth(n) {
                *node = J::Leaf(v.clone());
            }
        }
        Edit::Remove(i, k) => {
            let n = i.index(tree.count());
            match tree.nth(n) {
                Some(J::Arr(a)) if !a.is_empty() => {
                    a.remove(k.index(a.len()));
                }
                Some(J::Obj(o)) if !o.is_empty() => {
                    o.remove(k.index(o.len()));
                }
                _ => {}
            }
        }
    }
}

/// Whitespace between tokens: valid JSON either way, and venues may send
/// pretty-printed frames.
pub const WS: &[&[u8]] = &[b"", b"", b"", b" ", b"\t", b"\n", b"\r\n", b"\n  "];

/// A venue and a batch of its fixture frames, still valid JSON but with
/// values replaced by odd ones, fields dropped, and whitespace re-laid.
pub fn edited_batch() -> impl Strategy<Value = (Venue, Vec<Frame>)> {
    venue().prop_flat_map(|v| {
        let one = (
            prop::sample::select(fixture_trees(v)),
            prop::collection::vec(edit(), 0..4),
            prop::sample::select(WS),
        )
            .prop_map(|(mut t, es, ws)| {
                for e in &es {
                    apply(&mut t, e);
                }
                let mut out = Vec::new();
                t.write(ws, &mut out);
                Frame(out)
            });
        (Just(v), prop::collection::vec(one, 1..6))
    })
}
