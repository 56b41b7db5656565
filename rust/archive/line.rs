//! Cheap parsing of the fixed envelope prefix (docs/bus.md):
//! `{"rx":N[,"seq":M|[M,i]],"conn":"…","subj":"…","msg":…}`.
//!
//! ssmd writes these lines itself, so the key order is fixed and no general
//! JSON parser is needed to find `rx`, `seq` and the subject.
use memchr::{memchr, memmem};
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A JetStream sequence: `M` for a single-line message, `[M, i]` for line
/// `i` of a micro-batch message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Seq {
    pub stream: u64,
    pub index: Option<u64>,
}

impl Serialize for Seq {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.index {
            None => s.serialize_u64(self.stream),
            Some(i) => {
                let mut t = s.serialize_seq(Some(2))?;
                t.serialize_element(&self.stream)?;
                t.serialize_element(&i)?;
                t.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Seq {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Seq, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Seq;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer or [integer, integer]")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Seq, E> {
                Ok(Seq {
                    stream: v,
                    index: None,
                })
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Seq, A::Error> {
                let stream = a
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let index = a
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(1, &self))?;
                Ok(Seq {
                    stream,
                    index: Some(index),
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// `rx` and `seq` of a line, and the offset just past them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RxSeq {
    pub rx: u64,
    pub seq: Option<Seq>,
    /// Offset of the byte after the `rx`/`seq` values (a `,` or `}`).
    pub rest: usize,
}

/// A parsed envelope line; `conn` and `subj` are the raw string contents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Envelope<'a> {
    pub rx: u64,
    pub seq: Option<Seq>,
    pub conn: &'a [u8],
    pub subj: &'a [u8],
    /// The venue message, byte for byte.
    pub msg: &'a [u8],
}

impl Envelope<'_> {
    /// `(kind, instrument)` of the subject.
    pub fn kind_instrument(&self) -> Option<(&[u8], &[u8])> {
        split_subject(self.subj)
    }

    /// True for a `status` line whose msg is an ssmd gap event.
    pub fn is_gap(&self) -> bool {
        matches!(self.kind_instrument(), Some((b"status", _)))
            && memmem::find(self.msg, br#""ssmd":"gap""#).is_some()
    }
}

fn parse_uint(b: &[u8], mut i: usize) -> Option<(u64, usize)> {
    let start = i;
    let mut v: u64 = 0;
    // eight digits at a time while they last (an rx has 19)
    while let Some(d) = b.get(i..i + 8).and_then(eight_digits) {
        v = v.checked_mul(100_000_000)?.checked_add(d)?;
        i += 8;
    }
    while i < b.len() && b[i].is_ascii_digit() {
        v = v.checked_mul(10)?.checked_add(u64::from(b[i] - b'0'))?;
        i += 1;
    }
    if i == start || (b[start] == b'0' && i - start > 1) {
        return None;
    }
    Some((v, i))
}

/// The value of eight ASCII digits, `None` unless all eight are digits.
#[inline]
fn eight_digits(chunk: &[u8]) -> Option<u64> {
    let w = u64::from_le_bytes(chunk.try_into().ok()?);
    // each byte 0x30..=0x39: high nibble 3, and adding 6 does not carry out of it
    let digits = (w & 0xf0f0_f0f0_f0f0_f0f0) == 0x3030_3030_3030_3030
        && (w.wrapping_add(0x0606_0606_0606_0606) & 0xf0f0_f0f0_f0f0_f0f0) == 0x3030_3030_3030_3030;
    if !digits {
        return None;
    }
    // first byte is the most significant digit: combine pairs, then quads, then halves
    let w = w - 0x3030_3030_3030_3030;
    let w = (w * 10 + (w >> 8)) & 0x00ff_00ff_00ff_00ff;
    let w = (w * 100 + (w >> 16)) & 0x0000_ffff_0000_ffff;
    Some((w * 10_000 + (w >> 32)) & 0xffff_ffff)
}

/// Parse the `{"rx":N` prefix and an optional `,"seq":M` / `,"seq":[M,i]`.
pub fn parse_rx_seq(line: &[u8]) -> Option<RxSeq> {
    const RX: &[u8] = br#"{"rx":"#;
    const SEQ: &[u8] = br#","seq":"#;
    if !line.starts_with(RX) {
        return None;
    }
    let (rx, mut i) = parse_uint(line, RX.len())?;
    let mut seq = None;
    if line[i..].starts_with(SEQ) {
        i += SEQ.len();
        if line.get(i) == Some(&b'[') {
            let (stream, j) = parse_uint(line, i + 1)?;
            if line.get(j) != Some(&b',') {
                return None;
            }
            let (index, k) = parse_uint(line, j + 1)?;
            if line.get(k) != Some(&b']') {
                return None;
            }
            seq = Some(Seq {
                stream,
                index: Some(index),
            });
            i = k + 1;
        } else {
            let (stream, j) = parse_uint(line, i)?;
            seq = Some(Seq {
                stream,
                index: None,
            });
            i = j;
        }
    }
    match line.get(i) {
        Some(b',' | b'}') => Some(RxSeq { rx, seq, rest: i }),
        _ => None,
    }
}

/// Parse a JSON string starting at `b[i] == '"'`; returns its raw contents
/// and the offset after the closing quote.
fn parse_string(b: &[u8], i: usize) -> Option<(&[u8], usize)> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let start = i + 1;
    let mut j = start;
    loop {
        let k = j + memchr::memchr2(b'"', b'\\', &b[j..])?;
        if b[k] == b'"' {
            return Some((&b[start..k], k + 1));
        }
        j = k + 2; // skip the escaped byte
        if j > b.len() {
            return None;
        }
    }
}

/// Parse a whole envelope line (with or without its trailing newline).
pub fn parse_envelope(line: &[u8]) -> Option<Envelope<'_>> {
    const CONN: &[u8] = br#","conn":"#;
    const SUBJ: &[u8] = br#","subj":"#;
    const MSG: &[u8] = br#","msg":"#;
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let head = parse_rx_seq(line)?;
    let mut i = head.rest;
    if !line[i..].starts_with(CONN) {
        return None;
    }
    let (conn, j) = parse_string(line, i + CONN.len())?;
    i = j;
    if !line[i..].starts_with(SUBJ) {
        return None;
    }
    let (subj, j) = parse_string(line, i + SUBJ.len())?;
    i = j;
    if !line[i..].starts_with(MSG) {
        return None;
    }
    let body = &line[i + MSG.len()..];
    let msg = body.strip_suffix(b"}")?;
    if msg.is_empty() {
        return None;
    }
    Some(Envelope {
        rx: head.rx,
        seq: head.seq,
        conn,
        subj,
        msg,
    })
}

/// `(kind, instrument)` of `{env}.{venue}[.{category}].json.{kind}.{instrument}`.
/// The instrument is everything after the kind (empty when absent).
pub fn split_subject(subj: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = memmem::find(subj, b".json.")?;
    let rest = &subj[at + 6..];
    Some(match memchr(b'.', rest) {
        Some(d) => (&rest[..d], &rest[d + 1..]),
        None => (rest, &[][..]),
    })
}

/// The subject of a gap status line, `None` for any other line.
#[inline]
pub(crate) fn gap_subject(line: &[u8]) -> Option<&[u8]> {
    memmem::find(line, br#""ssmd":"gap""#)?;
    parse_envelope(line).filter(|e| e.is_gap()).map(|e| e.subj)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsigned_integers_parse_as_one_digit_at_a_time_would() {
        fn slow(b: &[u8], mut i: usize) -> Option<(u64, usize)> {
            let start = i;
            let mut v: u64 = 0;
            while i < b.len() && b[i].is_ascii_digit() {
                v = v.checked_mul(10)?.checked_add(u64::from(b[i] - b'0'))?;
                i += 1;
            }
            if i == start || (b[start] == b'0' && i - start > 1) {
                return None;
            }
            Some((v, i))
        }
        let mut cases: Vec<Vec<u8>> = [
            "0",
            "7",
            "01",
            "12345678",
            "123456789",
            "1772323200086399999",
            "18446744073709551615",
            "18446744073709551616",
            "99999999999999999999",
            "1234567:",
            "12345678/",
            "1234/678",
            "00000000",
            "10000000,",
            "",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 24) as usize;
            let alphabet = b"0123456789/:,]";
            let s: Vec<u8> = (0..len)
                .map(|k| alphabet[((x >> (k % 60)) as usize + k) % alphabet.len()])
                .collect();
            cases.push(s);
        }
        for c in &cases {
            assert_eq!(
                parse_uint(c, 0),
                slow(c, 0),
                "{}",
                String::from_utf8_lossy(c)
            );
        }
    }

    #[test]
    fn prefix_forms() {
        let l = br#"{"rx":17,"conn":"c1","subj":"prod.kraken.json.book.BTC_USD","msg":{"a":1}}"#;
        let e = parse_envelope(l).unwrap();
        assert_eq!(e.rx, 17);
        assert_eq!(e.seq, None);
        assert_eq!(e.conn, b"c1");
        assert_eq!(e.msg, br#"{"a":1}"#);
        assert_eq!(
            e.kind_instrument().unwrap(),
            (&b"book"[..], &b"BTC_USD"[..])
        );

        let l = br#"{"rx":1,"seq":42,"conn":"c\"x","subj":"s.json.trade.A.B","msg":[1]}"#;
        let e = parse_envelope(l).unwrap();
        assert_eq!(e.seq.unwrap().stream, 42);
        assert_eq!(e.conn, br#"c\"x"#);
        assert_eq!(e.kind_instrument().unwrap(), (&b"trade"[..], &b"A.B"[..]));

        let l = br#"{"rx":1,"seq":[42,3],"conn":"c","subj":"s","msg":1}"#;
        let e = parse_envelope(l).unwrap();
        assert_eq!(
            e.seq,
            Some(Seq {
                stream: 42,
                index: Some(3)
            })
        );
        assert!(e.kind_instrument().is_none());

        for bad in [
            &br#"{"rx":,"conn":"c","subj":"s","msg":1}"#[..],
            br#"{"rx":01,"conn":"c","subj":"s","msg":1}"#,
            br#"{"rx":-1,"conn":"c","subj":"s","msg":1}"#,
            br#"{"rx":99999999999999999999999,"conn":"c"}"#,
            br#"{"rx":1,"seq":[1],"conn":"c","subj":"s","msg":1}"#,
            br#"{"rx":1x"#,
            br#"{"a":1}"#,
            b"",
        ] {
            assert!(
                parse_rx_seq(bad).is_none(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(parse_envelope(br#"{"rx":1,"conn":"c","subj":"s","msg":}"#).is_none());
        assert!(parse_envelope(br#"{"rx":1,"conn":"c,"subj":"s","msg":1}"#).is_none());
    }

    #[test]
    fn gap_lines() {
        let l = br#"{"rx":1,"conn":"c","subj":"prod.kalshi.json.status.c","msg":{"ssmd":"gap","sid":1}}"#;
        assert!(parse_envelope(l).unwrap().is_gap());
        let l =
            br#"{"rx":1,"conn":"c","subj":"prod.kalshi.json.status.c","msg":{"ssmd":"reconnect"}}"#;
        assert!(!parse_envelope(l).unwrap().is_gap());
        let l = br#"{"rx":1,"conn":"c","subj":"prod.kalshi.json.trade.X","msg":{"ssmd":"gap"}}"#;
        assert!(!parse_envelope(l).unwrap().is_gap());
    }

    #[test]
    fn seq_json() {
        let a = Seq {
            stream: 5,
            index: None,
        };
        let b = Seq {
            stream: 5,
            index: Some(2),
        };
        assert_eq!(serde_json::to_string(&a).unwrap(), "5");
        assert_eq!(serde_json::to_string(&b).unwrap(), "[5,2]");
        assert_eq!(serde_json::from_str::<Seq>("[5,2]").unwrap(), b);
        assert_eq!(serde_json::from_str::<Seq>("5").unwrap(), a);
        assert!(a < b);
    }
}
