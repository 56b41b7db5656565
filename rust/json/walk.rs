//! Fast walking of already validated values (no checks: the bytes were
//! validated once), and the accessors of [`Val`].

use std::borrow::Cow;

use super::validate::is_ws;
use super::{parse_u64, unescape, utf8, Ty, Val};

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
        let val = Val::new(ty_of(s[i]), &s[i..vend]);
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
        Some(Val::new(ty_of(s[i]), &s[i..vend]))
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
            return utf8(raw).map(Cow::Borrowed);
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

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::*;

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
}
