//! The hand-written JSON scanner (`ssmd_core::json`) against `serde_json`:
//! the same accept/reject decision and the same values (strings unescaped,
//! keys, structure; numbers as serde_json reads the text we cut out) on
//! arbitrary bytes, on generated and mutated JSON, on the golden fixture
//! frames, and on the parsing cases of JSONTestSuite (`rust/tests/data/`).
//!
//! Where the two differ on purpose, the difference is one of these, and
//! nothing else:
//! - nesting deeper than [`json::MAX_DEPTH`] (64) is rejected (serde_json
//!   allows 128): a market-data frame is never that deep;
//! - a `\u` escape of a lone UTF-16 surrogate is accepted (RFC 8259's
//!   grammar allows it; unescaping gives U+FFFD), serde_json rejects it;
//! - a number too large for an `f64` (`1e400`) is accepted as text (prices
//!   stay text in ssmd), serde_json rejects it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use proptest::prelude::*;
use serde_json::{Map, Value};
use ssmd_core::json::{self, Ty, Val};

/// Our reading of `input`: `Ok(value)` when accepted, `Err(reason)` when not.
fn ours(input: &[u8]) -> Result<Value, &'static str> {
    let v = json::parse(input).map_err(|e| e.reason)?;
    Ok(to_value(v))
}

/// A validated value as a serde_json value (duplicate keys: the last wins,
/// as in serde_json's map). A number serde_json cannot hold becomes a
/// string marker, so it shows up in a comparison.
fn to_value(v: Val<'_>) -> Value {
    match v.ty {
        Ty::Null => Value::Null,
        Ty::Bool => Value::Bool(v.as_bool().unwrap_or_default()),
        Ty::Number => serde_json::from_slice(v.raw)
            .unwrap_or_else(|_| Value::String(format!("<number {}>", lossy(v.raw)))),
        Ty::String => Value::String(v.str().map(|s| s.into_owned()).unwrap_or_default()),
        Ty::Array => Value::Array(v.items().map(to_value).collect()),
        Ty::Object => {
            let mut m = Map::new();
            for (k, val) in v.fields() {
                m.insert(json::unescape(k).unwrap_or_default(), to_value(val));
            }
            Value::Object(m)
        }
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// True when serde_json rejected `input` (which we accept) for one of the
/// documented reasons: a lone surrogate escape, or a number out of f64 range.
fn accepted_on_purpose(input: &[u8], err: &serde_json::Error) -> bool {
    let msg = err.to_string();
    let surrogate_escape = input.windows(4).any(|w| {
        w[0] == b'\\'
            && w[1] == b'u'
            && w[2].eq_ignore_ascii_case(&b'd')
            && matches!(w[3].to_ascii_lowercase(), b'8'..=b'9' | b'a'..=b'f')
    });
    (surrogate_escape && (msg.contains("surrogate") || msg.contains("hex escape")))
        || msg.contains("number out of range")
}

/// Compare the two parsers on one input.
fn compare(input: &[u8]) -> Result<(), String> {
    let theirs = serde_json::from_slice::<Value>(input);
    match (ours(input), theirs) {
        (Ok(a), Ok(b)) if a == b => Ok(()),
        (Ok(a), Ok(b)) => Err(format!("values differ: ours {a} theirs {b}")),
        (Err(_), Err(_)) => Ok(()),
        (Ok(_), Err(e)) if accepted_on_purpose(input, &e) => Ok(()),
        (Ok(a), Err(e)) => Err(format!("we accept ({a}), serde_json rejects: {e}")),
        (Err("nesting too deep"), Ok(_)) => Ok(()),
        (Err(r), Ok(b)) => Err(format!("we reject ({r}), serde_json accepts {b}")),
    }
}

fn check(input: &[u8]) -> Result<(), TestCaseError> {
    compare(input).map_err(|e| TestCaseError::fail(format!("{e}\ninput: {:?}", lossy(input))))
}

// ---------------------------------------------------------------------------
// JSONTestSuite

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("rust/tests/data/json_test_suite/test_parsing")
}

fn suite() -> &'static [(String, Vec<u8>)] {
    static CASES: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    CASES.get_or_init(load_suite)
}

fn load_suite() -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(suite_dir())
        .expect("rust/tests/data/json_test_suite/test_parsing")
        .map(|e| {
            let p = e.expect("dir entry").path();
            let name = p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            (name, std::fs::read(&p).expect("read case"))
        })
        .collect();
    out.sort();
    out
}

/// The implementation-defined (`i_`) cases the scanner accepts; it rejects
/// every other `i_` case. Pinned so a change of decision is seen.
const I_ACCEPTED: &[&str] = &[
    "i_number_double_huge_neg_exp.json",
    "i_number_huge_exp.json",
    "i_number_neg_int_huge_exp.json",
    "i_number_pos_double_huge_exp.json",
    "i_number_real_neg_overflow.json",
    "i_number_real_pos_overflow.json",
    "i_number_real_underflow.json",
    "i_number_too_big_neg_int.json",
    "i_number_too_big_pos_int.json",
    "i_number_very_big_negative_int.json",
    "i_object_key_lone_2nd_surrogate.json",
    "i_string_1st_surrogate_but_2nd_missing.json",
    "i_string_1st_valid_surrogate_2nd_invalid.json",
    "i_string_incomplete_surrogate_and_escape_valid.json",
    "i_string_incomplete_surrogate_pair.json",
    "i_string_incomplete_surrogates_escape_valid.json",
    "i_string_invalid_lonely_surrogate.json",
    "i_string_invalid_surrogate.json",
    "i_string_inverted_surrogates_U+1D11E.json",
    "i_string_lone_second_surrogate.json",
];

#[test]
fn json_test_suite_decisions() {
    let cases = suite();
    assert_eq!(cases.len(), 318, "JSONTestSuite test_parsing has 318 cases");
    let mut wrong = Vec::new();
    let mut i_accepted = BTreeSet::new();
    for (name, data) in cases {
        let accepted = json::parse(data).is_ok();
        match &name[..2] {
            "y_" if !accepted => wrong.push(format!("{name}: must accept, rejected")),
            "n_" if accepted => wrong.push(format!("{name}: must reject, accepted")),
            "i_" if accepted => {
                i_accepted.insert(name.as_str());
            }
            _ => {}
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    let pinned: BTreeSet<&str> = I_ACCEPTED.iter().copied().collect();
    assert_eq!(
        i_accepted, pinned,
        "implementation-defined decisions changed"
    );
}

#[test]
fn json_test_suite_agrees_with_serde_json() {
    let mut wrong = Vec::new();
    for (name, data) in suite() {
        if let Err(e) = compare(data) {
            wrong.push(format!("{name}: {e}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

// ---------------------------------------------------------------------------
// Generated input

/// JSON values, serialized by serde_json (escapes, unicode, big numbers).
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".*".prop_map(Value::String),
        "[\\u{0}-\\u{7f}]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec(("[a-z\"\\\\é\\u{1F600}]{0,6}", inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// Bytes JSON text is made of, for soups and mutations.
const TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b"\\",
    b":",
    b",",
    b" ",
    b"\n",
    b"\t",
    b"0",
    b"1",
    b"-",
    b"+",
    b".",
    b"e",
    b"E",
    b"true",
    b"false",
    b"null",
    b"nul",
    b"\\u",
    b"d800",
    b"dc00",
    b"\\ud83d\\ude00",
    b"\\ud800",
    b"\\n",
    b"\\x",
    b"\xc3\xa9",
    b"\xc3",
    b"\xed\xa0\x80",
    b"\xff",
    b"\x00",
    b"\x1f",
    b"\x7f",
    b"1e400",
    b"00",
    b"-0",
    b"0.5",
    b"\"k\":",
];

#[derive(Debug, Clone)]
enum Mutation {
    Insert(usize, usize),
    Delete(usize),
    Replace(usize, u8),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(at, t)| Mutation::Insert(at, t)),
        any::<usize>().prop_map(Mutation::Delete),
        (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Mutation::Replace(at, b)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(data: &mut Vec<u8>, m: &Mutation) {
    let at = |i: usize, len: usize| if len == 0 { 0 } else { i % (len + 1) };
    match *m {
        Mutation::Insert(i, t) => {
            let p = at(i, data.len());
            data.splice(p..p, TOKENS[t].iter().copied());
        }
        Mutation::Delete(i) if !data.is_empty() => {
            data.remove(i % data.len());
        }
        Mutation::Replace(i, b) if !data.is_empty() => {
            let p = i % data.len();
            data[p] = b;
        }
        Mutation::Truncate(i) => data.truncate(at(i, data.len())),
        _ => {}
    }
}

/// The golden fixture frames of every venue.
fn fixture_frames() -> &'static [Vec<u8>] {
    static FRAMES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    FRAMES.get_or_init(load_fixture_frames)
}

fn load_fixture_frames() -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut out = Vec::new();
    for dir in ["kalshi", "kraken", "kraken_futures", "polymarket"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(root.join(dir))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                let n = p.file_name().unwrap_or_default().to_string_lossy();
                n.starts_with("ws_") && n.ends_with(".jsonl") && !n.ends_with(".expected.jsonl")
            })
            .collect();
        files.sort();
        for f in files {
            let data = std::fs::read(f).unwrap_or_default();
            out.extend(
                data.split(|&b| b == b'\n')
                    .filter(|l| !l.is_empty())
                    .map(<[u8]>::to_vec),
            );
        }
    }
    assert!(!out.is_empty(), "no fixture frames");
    out
}

#[test]
fn fixture_frames_agree_with_serde_json() {
    for f in fixture_frames() {
        compare(f).unwrap_or_else(|e| panic!("{e}\n{}", lossy(f)));
    }
}

#[test]
fn nesting_limit_is_the_only_depth_difference() {
    let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    assert!(json::parse(deep(json::MAX_DEPTH).as_bytes()).is_ok());
    let too_deep = deep(json::MAX_DEPTH + 1);
    assert_eq!(
        json::parse(too_deep.as_bytes()).unwrap_err().reason,
        "nesting too deep"
    );
    assert!(serde_json::from_str::<Value>(&too_deep).is_ok());
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 2000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..64)) {
        check(&data)?;
    }

    #[test]
    fn token_soup(tokens in prop::collection::vec(0..TOKENS.len(), 0..24)) {
        let data: Vec<u8> = tokens.iter().flat_map(|&t| TOKENS[t].iter().copied()).collect();
        check(&data)?;
    }

    #[test]
    fn generated_json(v in value(), pretty in any::<bool>()) {
        let data = if pretty {
            serde_json::to_vec_pretty(&v)
        } else {
            serde_json::to_vec(&v)
        }.expect("serialize");
        // valid JSON: we accept it, with serde_json's values (strings, keys, structure)
        prop_assert!(json::parse(&data).is_ok(), "rejected: {}", lossy(&data));
        check(&data)?;
    }

    #[test]
    fn mutated_json(v in value(), muts in prop::collection::vec(mutation(), 1..5)) {
        let mut data = serde_json::to_vec(&v).expect("serialize");
        for m in &muts {
            mutate(&mut data, m);
        }
        check(&data)?;
    }

    #[test]
    fn mutated_suite_cases(i in any::<prop::sample::Index>(), muts in prop::collection::vec(mutation(), 1..4)) {
        let cases = suite();
        let mut data = cases[i.index(cases.len())].1.clone();
        for m in &muts {
            mutate(&mut data, m);
        }
        check(&data)?;
    }

    #[test]
    fn mutated_fixture_frames(i in any::<prop::sample::Index>(), muts in prop::collection::vec(mutation(), 1..4)) {
        let frames = fixture_frames();
        let mut data = frames[i.index(frames.len())].clone();
        for m in &muts {
            mutate(&mut data, m);
        }
        check(&data)?;
    }
}
