//! A small validating JSON scanner that borrows from the input.
//!
//! The hot path never builds a DOM: [`parse_doc`] validates a whole frame in
//! one pass (RFC 8259 grammar, bounded nesting) and, in the same pass,
//! records the fields of the first few nesting levels into a reusable
//! [`Tape`] (offsets only, no allocation once warm). Routing then looks keys
//! up in the tape instead of walking the bytes again; deeper values are
//! walked with a fast skipper. Strings are returned in their raw,
//! still-escaped form, so text copied into an envelope stays byte for byte.

mod doc;
mod tape;
mod validate;
mod walk;

pub use doc::{parse_doc, Doc, DocItems, Lookup, Walk};
pub use tape::Tape;
pub use walk::{Fields, Items};

/// Deepest nesting accepted before a frame is called malformed.
pub const MAX_DEPTH: usize = 64;

/// Containers up to this depth (root = 1) have their children recorded,
/// unless the caller asks for less (see [`Tape::with_depth`]).
pub const RECORD_DEPTH: usize = 3;

/// Why a document is not valid JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Error {
    pub reason: &'static str,
    pub pos: usize,
}

/// The JSON type of a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    Object,
    Array,
    String,
    Number,
    Bool,
    Null,
}

/// No container id: the value's children are not on the tape.
pub const NO_ID: u32 = u32::MAX;

/// A validated JSON value: its type, its exact bytes, and (for containers
/// whose children are on the tape) its container id.
#[derive(Debug, Clone, Copy)]
pub struct Val<'a> {
    pub ty: Ty,
    pub raw: &'a [u8],
    pub id: u32,
}

impl<'a> Val<'a> {
    /// A value whose children are not recorded.
    pub fn new(ty: Ty, raw: &'a [u8]) -> Self {
        Val { ty, raw, id: NO_ID }
    }
}

/// Validate `input` as exactly one JSON document (surrounding whitespace
/// allowed) and return it. A document that validates is valid UTF-8:
/// non-ASCII bytes are only accepted inside strings, as UTF-8 sequences.
pub fn parse(input: &[u8]) -> Result<Val<'_>, Error> {
    let mut v = validate::Validator::<false> {
        s: input,
        i: 0,
        tape: None,
    };
    v.document().map(|(ty, s, e)| Val::new(ty, &input[s..e]))
}

/// `s` as `&str` when it is valid UTF-8, checking pure ASCII (the usual
/// case in market data) word by word first.
#[inline]
pub fn utf8(s: &[u8]) -> Option<&str> {
    if s.is_ascii() {
        // SAFETY: every ASCII byte sequence is valid UTF-8.
        Some(unsafe { std::str::from_utf8_unchecked(s) })
    } else {
        std::str::from_utf8(s).ok()
    }
}

/// True when `s` is valid UTF-8 (fast path for ASCII).
#[inline]
pub fn is_utf8(s: &[u8]) -> bool {
    s.is_ascii() || std::str::from_utf8(s).is_ok()
}

/// Parse ASCII digits into a u64 (no sign, no fraction), `None` on overflow.
pub fn parse_u64(t: &[u8]) -> Option<u64> {
    if t.is_empty() || t.len() > 20 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in t {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(v)
}

/// Unescape the raw contents of a validated string (without its quotes);
/// a lone surrogate escape becomes U+FFFD.
pub fn unescape(raw: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        let e = *raw.get(i + 1)?;
        i += 2;
        match e {
            b'"' => out.push(b'"'),
            b'\\' => out.push(b'\\'),
            b'/' => out.push(b'/'),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'u' => {
                let mut cp = hex4(raw.get(i..i + 4)?)?;
                i += 4;
                if (0xD800..0xDC00).contains(&cp) && raw.get(i..i + 2) == Some(b"\\u") {
                    let lo = hex4(raw.get(i + 2..i + 6)?)?;
                    if (0xDC00..0xE000).contains(&lo) {
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                        i += 6;
                    }
                }
                let c = char::from_u32(cp).unwrap_or('\u{FFFD}');
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
            _ => return None,
        }
    }
    String::from_utf8(out).ok()
}

fn hex4(h: &[u8]) -> Option<u32> {
    let s = std::str::from_utf8(h).ok()?;
    u32::from_str_radix(s, 16).ok()
}

/// Append `s` to `out` as a JSON string literal (with quotes).
pub fn write_str(out: &mut Vec<u8>, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let mut start = 0;
    for (i, &b) in s.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&s[start..i]);
        if esc.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 15) as usize]);
        } else {
            out.extend_from_slice(esc);
        }
        start = i + 1;
    }
    out.extend_from_slice(&s[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_documents() {
        for doc in [
            &br#"{"a":1,"b":[true,false,null],"c":{"d":"x\"y\u00e9"},"e":-0.5e+3}"#[..],
            b" [ ] ",
            b"\"s\"",
            b"0",
            b"18125794168470749634",
        ] {
            assert!(parse(doc).is_ok(), "{}", String::from_utf8_lossy(doc));
        }
    }

    #[test]
    fn rejects_invalid_documents() {
        for doc in [
            &b"{"[..],
            b"{\"a\":}",
            b"{\"a\":1,}",
            b"[1,]",
            b"01",
            b"1.",
            b"-",
            b"\"\x01\"",
            b"\"\\x\"",
            b"{\"a\" 1}",
            b"tru",
            b"{} {}",
            b"PONG",
            b"",
        ] {
            assert!(parse(doc).is_err(), "{}", String::from_utf8_lossy(doc));
        }
    }

    #[test]
    fn rejects_deep_nesting_without_overflow() {
        let doc = "[".repeat(100_000);
        assert_eq!(
            parse(doc.as_bytes()).unwrap_err().reason,
            "nesting too deep"
        );
    }

    #[test]
    fn escapes_strings() {
        let mut out = Vec::new();
        write_str(&mut out, b"a\"b\\c\nd\x01");
        assert_eq!(out, br#""a\"b\\c\nd\u0001""#);
        assert!(parse(&out).is_ok());
    }
}
