//! A small validating JSON scanner that borrows from the input.
//!
//! The hot path never builds a DOM: [`parse`] validates a whole frame in one
//! pass (RFC 8259 grammar, bounded nesting) and returns a [`Val`] span; field
//! access then re-walks the already validated bytes with a fast skipper that
//! only looks for quotes and brackets. Strings are returned in their raw,
//! still-escaped form, so text copied into an envelope stays byte for byte.

use std::borrow::Cow;

/// Deepest nesting accepted before a frame is called malformed.
pub const MAX_DEPTH: usize = 64;

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

/// A validated JSON value: its type and its exact bytes.
#[derive(Debug, Clone, Copy)]
pub struct Val<'a> {
    pub ty: Ty,
    pub raw: &'a [u8],
}

// Bytes that end the fast part of a string scan: quote, backslash, controls.
static STR_STOP: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

#[inline]
fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t')
}

/// Validate `input` as exactly one JSON document (surrounding whitespace
/// allowed) and return it.
pub fn parse(input: &[u8]) -> Result<Val<'_>, Error> {
    parse_doc(input).map(|d| d.root)
}

/// Top-level fields remembered by [`parse_doc`].
const TOP: usize = 32;

/// A validated document with an index of the root object's fields, so that
/// routing never walks the document a second time for top-level keys.
#[derive(Debug, Clone, Copy)]
pub struct Doc<'a> {
    pub root: Val<'a>,
    top: [(&'a [u8], Val<'a>); TOP],
    n: usize,
    indexed: bool,
}

impl<'a> Doc<'a> {
    /// Look up root-object keys (first occurrence), from the index when it is complete.
    pub fn get_many<const N: usize>(&self, keys: [&str; N]) -> [Option<Val<'a>>; N] {
        if !self.indexed {
            return self.root.get_many(keys);
        }
        let mut out = [None; N];
        for (slot, want) in out.iter_mut().zip(keys.iter()) {
            *slot = self.top[..self.n]
                .iter()
                .find(|(k, _)| *k == want.as_bytes())
                .map(|(_, v)| *v);
        }
        out
    }

    pub fn get(&self, key: &str) -> Option<Val<'a>> {
        let [v] = self.get_many([key]);
        v
    }
}

/// Like [`parse`], also indexing the root object's fields.
pub fn parse_doc(input: &[u8]) -> Result<Doc<'_>, Error> {
    const EMPTY: Val<'static> = Val {
        ty: Ty::Null,
        raw: b"",
    };
    let mut v = Validator {
        s: input,
        i: 0,
        top: [(&b""[..], EMPTY); TOP],
        n: 0,
        overflow: false,
    };
    v.ws();
    let start = v.i;
    let ty = v.value(0)?;
    let end = v.i;
    v.ws();
    if v.i != input.len() {
        return Err(Error {
            reason: "trailing characters",
            pos: v.i,
        });
    }
    Ok(Doc {
        root: Val {
            ty,
            raw: &input[start..end],
        },
        top: v.top,
        n: v.n,
        indexed: ty == Ty::Object && !v.overflow,
    })
}

struct Validator<'a> {
    s: &'a [u8],
    i: usize,
    top: [(&'a [u8], Val<'a>); TOP],
    n: usize,
    overflow: bool,
}

impl<'a> Validator<'a> {
    #[inline]
    fn ws(&mut self) {
        while self.i < self.s.len() && is_ws(self.s[self.i]) {
            self.i += 1;
        }
    }

    #[inline]
    fn err<T>(&self, reason: &'static str) -> Result<T, Error> {
        Err(Error {
            reason,
            pos: self.i,
        })
    }

    fn value(&mut self, depth: usize) -> Result<Ty, Error> {
        let Some(&b) = self.s.get(self.i) else {
            return self.err("unexpected end");
        };
        match b {
            b'{' => self.object(depth + 1).map(|()| Ty::Object),
            b'[' => self.array(depth + 1).map(|()| Ty::Array),
            b'"' => self.string().map(|()| Ty::String),
            b't' => self.literal(b"true").map(|()| Ty::Bool),
            b'f' => self.literal(b"false").map(|()| Ty::Bool),
            b'n' => self.literal(b"null").map(|()| Ty::Null),
            b'-' | b'0'..=b'9' => self.number().map(|()| Ty::Number),
            _ => self.err("unexpected character"),
        }
    }

    fn literal(&mut self, lit: &[u8]) -> Result<(), Error> {
        if self.s[self.i..].starts_with(lit) {
            self.i += lit.len();
            Ok(())
        } else {
            self.err("invalid literal")
        }
    }

    fn object(&mut self, depth: usize) -> Result<(), Error> {
        if depth > MAX_DEPTH {
            return self.err("nesting too deep");
        }
        self.i += 1;
        self.ws();
        if self.s.get(self.i) == Some(&b'}') {
            self.i += 1;
            return Ok(());
        }
        loop {
            if self.s.get(self.i) != Some(&b'"') {
                return self.err("expected object key");
            }
            let kstart = self.i;
            self.string()?;
            let kend = self.i;
            self.ws();
            if self.s.get(self.i) != Some(&b':') {
                return self.err("expected ':'");
            }
            self.i += 1;
            self.ws();
            let vstart = self.i;
            let ty = self.value(depth)?;
            if depth == 1 {
                if self.n < TOP {
                    let s: &'a [u8] = self.s;
                    self.top[self.n] = (
                        &s[kstart + 1..kend - 1],
                        Val {
                            ty,
                            raw: &s[vstart..self.i],
                        },
                    );
                    self.n += 1;
                } else {
                    self.overflow = true;
                }
            }
            self.ws();
            match self.s.get(self.i) {
                Some(b',') => {
                    self.i += 1;
                    self.ws();
                }
                Some(b'}') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return self.err("expected ',' or '}'"),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<(), Error> {
        if depth > MAX_DEPTH {
            return self.err("nesting too deep");
        }
        self.i += 1;
        self.ws();
        if self.s.get(self.i) == Some(&b']') {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.value(depth)?;
            self.ws();
            match self.s.get(self.i) {
                Some(b',') => {
                    self.i += 1;
                    self.ws();
                }
                Some(b']') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return self.err("expected ',' or ']'"),
            }
        }
    }

    fn string(&mut self) -> Result<(), Error> {
        self.i += 1; // opening quote
        loop {
            while self.i < self.s.len() && !STR_STOP[self.s[self.i] as usize] {
                self.i += 1;
            }
            let Some(&b) = self.s.get(self.i) else {
                return self.err("unterminated string");
            };
            match b {
                b'"' => {
                    self.i += 1;
                    return Ok(());
                }
                b'\\' => {
                    self.i += 1;
                    match self.s.get(self.i) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.i += 1,
                        Some(b'u') => {
                            let hex = self.s.get(self.i + 1..self.i + 5);
                            if hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                                self.i += 5;
                            } else {
                                return self.err("invalid \\u escape");
                            }
                        }
                        _ => return self.err("invalid escape"),
                    }
                }
                _ => return self.err("control character in string"),
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
            self.i += 1;
        }
        self.i - start
    }

    fn number(&mut self) -> Result<(), Error> {
        if self.s[self.i] == b'-' {
            self.i += 1;
        }
        match self.s.get(self.i) {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return self.err("invalid number"),
        }
        if self.s.get(self.i) == Some(&b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return self.err("invalid number fraction");
            }
        }
        if matches!(self.s.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.s.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return self.err("invalid number exponent");
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Fast walking of already validated values.

/// End (exclusive) of the value starting at `i` in validated `s`.
fn skip(s: &[u8], mut i: usize) -> usize {
    match s[i] {
        b'"' => skip_string(s, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            loop {
                match s[i] {
                    b'"' => {
                        i = skip_string(s, i);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return i + 1;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        _ => {
            while i < s.len() && !matches!(s[i], b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t')
            {
                i += 1;
            }
            i
        }
    }
}

/// End (exclusive, after the closing quote) of the string starting at `i`.
/// Strings in market data are short: a plain loop beats a SIMD search here.
#[inline]
fn skip_string(s: &[u8], i: usize) -> usize {
    let mut j = i + 1;
    while j < s.len() {
        match s[j] {
            b'"' => return j + 1,
            b'\\' => j += 2,
            _ => j += 1,
        }
    }
    s.len()
}

#[inline]
fn skip_ws(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && is_ws(s[i]) {
        i += 1;
    }
    i
}

fn ty_of(b: u8) -> Ty {
    match b {
        b'{' => Ty::Object,
        b'[' => Ty::Array,
        b'"' => Ty::String,
        b't' | b'f' => Ty::Bool,
        b'n' => Ty::Null,
        _ => Ty::Number,
    }
}

/// Iterator over `(raw key, value)` of a validated object.
pub struct Fields<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Iterator for Fields<'a> {
    type Item = (&'a [u8], Val<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        let s = self.s;
        let mut i = skip_ws(s, self.i);
        if i >= s.len() || s[i] == b'}' {
            self.i = s.len();
            return None;
        }
        if s[i] == b',' {
            i = skip_ws(s, i + 1);
        }
        let kend = skip_string(s, i);
        let key = &s[i + 1..kend - 1];
        i = skip_ws(s, kend);
        i = skip_ws(s, i + 1); // ':'
        let vend = skip(s, i);
        let val = Val {
            ty: ty_of(s[i]),
            raw: &s[i..vend],
        };
        self.i = vend;
        Some((key, val))
    }
}

/// Iterator over the elements of a validated array.
pub struct Items<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Iterator for Items<'a> {
    type Item = Val<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        let s = self.s;
        let mut i = skip_ws(s, self.i);
        if i >= s.len() || s[i] == b']' {
            self.i = s.len();
            return None;
        }
        if s[i] == b',' {
            i = skip_ws(s, i + 1);
        }
        let vend = skip(s, i);
        self.i = vend;
        Some(Val {
            ty: ty_of(s[i]),
            raw: &s[i..vend],
        })
    }
}

impl<'a> Val<'a> {
    /// Fields of an object (empty for other types).
    pub fn fields(&self) -> Fields<'a> {
        if self.ty == Ty::Object {
            Fields { s: self.raw, i: 1 }
        } else {
            Fields {
                s: self.raw,
                i: self.raw.len(),
            }
        }
    }

    /// Elements of an array (empty for other types).
    pub fn items(&self) -> Items<'a> {
        if self.ty == Ty::Array {
            Items { s: self.raw, i: 1 }
        } else {
            Items {
                s: self.raw,
                i: self.raw.len(),
            }
        }
    }

    /// The value of `key` in an object (first occurrence).
    pub fn get(&self, key: &str) -> Option<Val<'a>> {
        self.fields()
            .find(|(k, _)| *k == key.as_bytes())
            .map(|(_, v)| v)
    }

    /// Look up several keys in one walk over the object.
    pub fn get_many<const N: usize>(&self, keys: [&str; N]) -> [Option<Val<'a>>; N] {
        let mut out = [None; N];
        let mut found = 0;
        for (k, v) in self.fields() {
            for (slot, want) in out.iter_mut().zip(keys.iter()) {
                if slot.is_none() && k == want.as_bytes() {
                    *slot = Some(v);
                    found += 1;
                    break;
                }
            }
            if found == N {
                break;
            }
        }
        out
    }

    /// First element of an array.
    pub fn first(&self) -> Option<Val<'a>> {
        self.items().next()
    }

    pub fn is_null(&self) -> bool {
        self.ty == Ty::Null
    }

    /// Raw (still escaped) contents of a string, without the quotes.
    pub fn str_raw(&self) -> Option<&'a [u8]> {
        (self.ty == Ty::String).then(|| &self.raw[1..self.raw.len() - 1])
    }

    /// Unescaped string contents (borrowed when there are no escapes).
    pub fn str(&self) -> Option<Cow<'a, str>> {
        let raw = self.str_raw()?;
        if !raw.contains(&b'\\') {
            return std::str::from_utf8(raw).ok().map(Cow::Borrowed);
        }
        unescape(raw).map(Cow::Owned)
    }

    /// Text of a number, or the contents of a string (numbers as strings).
    pub fn num_text(&self) -> Option<&'a [u8]> {
        match self.ty {
            Ty::Number => Some(self.raw),
            Ty::String => self.str_raw(),
            _ => None,
        }
    }

    /// A non-negative integer that fits in u64 (numbers or numeric strings).
    pub fn as_u64(&self) -> Option<u64> {
        parse_u64(self.num_text()?)
    }

    /// A signed integer that fits in i64 (numbers or numeric strings).
    pub fn as_i64(&self) -> Option<i64> {
        let t = self.num_text()?;
        if let Some(rest) = t.strip_prefix(b"-") {
            parse_u64(rest)
                .and_then(|v| i64::try_from(v).ok())
                .map(|v| -v)
        } else {
            parse_u64(t).and_then(|v| i64::try_from(v).ok())
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self.raw {
            b"true" => Some(true),
            b"false" => Some(false),
            _ => None,
        }
    }
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

fn unescape(raw: &[u8]) -> Option<String> {
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
    fn walks_fields_and_items() {
        let v = parse(br#"{"type":"x","msg":{"k":"v\"w","n":[1,{"z":2}]},"seq":18}"#).unwrap();
        let [t, m, s] = v.get_many(["type", "msg", "seq"]);
        assert_eq!(t.unwrap().str().unwrap(), "x");
        assert_eq!(s.unwrap().as_u64(), Some(18));
        let m = m.unwrap();
        assert_eq!(m.get("k").unwrap().str().unwrap(), "v\"w");
        let items: Vec<_> = m.get("n").unwrap().items().map(|v| v.ty).collect();
        assert_eq!(items, vec![Ty::Number, Ty::Object]);
        assert!(v.get("missing").is_none());
    }

    #[test]
    fn big_integers_do_not_fit_u64_but_parse() {
        let v = parse(b"{\"id\":118125794168470749634}").unwrap();
        assert_eq!(v.get("id").unwrap().as_u64(), None);
    }

    #[test]
    fn escapes_strings() {
        let mut out = Vec::new();
        write_str(&mut out, b"a\"b\\c\nd\x01");
        assert_eq!(out, br#""a\"b\\c\nd\u0001""#);
        assert!(parse(&out).is_ok());
    }
}
