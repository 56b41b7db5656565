//! The validating pass: RFC 8259 grammar with bounded nesting, UTF-8
//! checked inside strings, and (for [`super::parse_doc`]) the tape recorded
//! on the way.

use super::tape::{Child, Children, Tape};
use super::{Error, Ty, MAX_DEPTH, NO_ID, RECORD_DEPTH};

/// Bytes that end the fast part of a string scan: quote, backslash, controls.
static STR_STOP: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    let mut i = 0x80;
    while i < 0x100 {
        t[i] = true; // non-ASCII: checked as UTF-8
        i += 1;
    }
    t
};

/// True when any byte of `w` is `"`, `\\`, below 0x20 or non-ASCII (SWAR).
#[inline]
fn has_stop(w: u64) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let zero = |x: u64| x.wrapping_sub(LO) & !x & HI;
    let below_20 = w.wrapping_sub(LO * 0x20) & !w & HI;
    (zero(w ^ (LO * u64::from(b'"'))) | zero(w ^ (LO * u64::from(b'\\'))) | below_20 | (w & HI))
        != 0
}

/// Advance past string bytes that need no attention (not `"`, `\\`, a
/// control character or non-ASCII), 16 bytes at a time with SSE2 where available.
#[inline]
fn skip_plain(s: &[u8], mut i: usize) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_cmplt_epi8, _mm_loadu_si128, _mm_movemask_epi8,
            _mm_or_si128, _mm_set1_epi8, _mm_xor_si128,
        };
        // SAFETY: SSE2 is part of the x86_64 baseline; every load reads 16
        // bytes inside `s` (checked by the loop condition) without alignment.
        unsafe {
            let quote = _mm_set1_epi8(b'"' as i8);
            let slash = _mm_set1_epi8(b'\\' as i8);
            let flip = _mm_set1_epi8(i8::MIN);
            let limit = _mm_set1_epi8((0x20u8 ^ 0x80) as i8);
            while i + 16 <= s.len() {
                let v = _mm_loadu_si128(s.as_ptr().add(i).cast::<__m128i>());
                // unsigned v < 0x20 via signed compare after flipping the top bit
                let ctrl = _mm_cmplt_epi8(_mm_xor_si128(v, flip), limit);
                let hit = _mm_or_si128(
                    _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, slash)),
                    ctrl,
                );
                // high bit set: non-ASCII, checked as UTF-8 by the caller
                let mask = _mm_movemask_epi8(hit) | _mm_movemask_epi8(v);
                if mask != 0 {
                    return i + mask.trailing_zeros() as usize;
                }
                i += 16;
            }
        }
    }
    while let Some(chunk) = s.get(i..i + 8) {
        let w = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
        if has_stop(w) {
            break;
        }
        i += 8;
    }
    i
}

#[inline]
pub(super) fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t')
}

pub(super) struct Validator<'a, 't, const REC: bool> {
    pub(super) s: &'a [u8],
    pub(super) i: usize,
    pub(super) tape: Option<&'t mut Tape>,
}

impl<const REC: bool> Validator<'_, '_, REC> {
    pub(super) fn document(&mut self) -> Result<(Ty, usize, usize), Error> {
        self.ws();
        let start = self.i;
        let ty = self.value(0)?;
        let end = self.i;
        self.ws();
        if self.i != self.s.len() {
            return Err(Error {
                reason: "trailing characters",
                pos: self.i,
            });
        }
        Ok((ty, start, end))
    }

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

    /// A container id for a container at `depth` whose children are recorded.
    #[inline]
    fn new_id(&mut self, depth: usize) -> u32 {
        match &mut self.tape {
            Some(t) if REC && depth <= if t.depth == 0 { RECORD_DEPTH } else { t.depth } => {
                let id = t.containers.len() as u32;
                let first = t.children.len() as u32;
                t.containers.push(Children { first, end: first });
                id
            }
            _ => NO_ID,
        }
    }

    /// Record a child of container `parent` (placeholder; completed by [`Self::close_child`]).
    #[inline]
    fn open_child(&mut self, parent: u32, key: (usize, usize)) -> usize {
        match &mut self.tape {
            Some(t) if REC && parent != NO_ID => {
                t.children.push(Child {
                    key: (key.0 as u32, key.1 as u32),
                    val: (0, 0),
                    ty: Ty::Null,
                    id: NO_ID,
                });
                t.children.len() - 1
            }
            _ => usize::MAX,
        }
    }

    /// Container `id` is complete: its records end here.
    #[inline]
    fn end_container(&mut self, id: u32) {
        if let Some(t) = &mut self.tape {
            let end = t.children.len() as u32;
            if let Some(c) = t.containers.get_mut(id as usize) {
                c.end = end;
            }
        }
    }

    #[inline]
    fn close_child(&mut self, slot: usize, start: usize, ty: Ty, id: u32) {
        if let Some(t) = &mut self.tape {
            if let Some(c) = t.children.get_mut(slot) {
                c.val = (start as u32, self.i as u32);
                c.ty = ty;
                c.id = id;
            }
        }
    }

    /// Parse a value at `depth`; returns its type, and its container id via `id`.
    fn value_rec(&mut self, depth: usize, id: &mut u32) -> Result<Ty, Error> {
        let Some(&b) = self.s.get(self.i) else {
            return self.err("unexpected end");
        };
        match b {
            b'{' => {
                *id = self.new_id(depth + 1);
                self.object(depth + 1, *id)?;
                self.end_container(*id);
                Ok(Ty::Object)
            }
            b'[' => {
                *id = self.new_id(depth + 1);
                self.array(depth + 1, *id)?;
                self.end_container(*id);
                Ok(Ty::Array)
            }
            b'"' => self.string().map(|()| Ty::String),
            b't' => self.literal(b"true").map(|()| Ty::Bool),
            b'f' => self.literal(b"false").map(|()| Ty::Bool),
            b'n' => self.literal(b"null").map(|()| Ty::Null),
            b'-' | b'0'..=b'9' => self.number().map(|()| Ty::Number),
            _ => self.err("unexpected character"),
        }
    }

    fn value(&mut self, depth: usize) -> Result<Ty, Error> {
        let mut id = NO_ID;
        self.value_rec(depth, &mut id)
    }

    fn literal(&mut self, lit: &[u8]) -> Result<(), Error> {
        if self.s[self.i..].starts_with(lit) {
            self.i += lit.len();
            Ok(())
        } else {
            self.err("invalid literal")
        }
    }

    fn object(&mut self, depth: usize, id: u32) -> Result<(), Error> {
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
            let kstart = self.i + 1;
            self.string()?;
            let kend = self.i - 1;
            self.ws();
            if self.s.get(self.i) != Some(&b':') {
                return self.err("expected ':'");
            }
            self.i += 1;
            self.ws();
            let slot = self.open_child(id, (kstart, kend));
            let vstart = self.i;
            let mut cid = NO_ID;
            let ty = self.value_rec(depth, &mut cid)?;
            self.close_child(slot, vstart, ty, cid);
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

    fn array(&mut self, depth: usize, id: u32) -> Result<(), Error> {
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
            let slot = self.open_child(id, (0, 0));
            let vstart = self.i;
            let mut cid = NO_ID;
            let ty = self.value_rec(depth, &mut cid)?;
            self.close_child(slot, vstart, ty, cid);
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
            self.i = skip_plain(self.s, self.i);
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
                0x80.. => {
                    let len = match b {
                        0xc2..=0xdf => 2,
                        0xe0..=0xef => 3,
                        0xf0..=0xf4 => 4,
                        _ => return self.err("invalid UTF-8"),
                    };
                    match self.s.get(self.i..self.i + len) {
                        Some(seq) if std::str::from_utf8(seq).is_ok() => self.i += len,
                        _ => return self.err("invalid UTF-8"),
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

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::*;

    #[test]
    fn skip_plain_stops_at_every_stop_byte() {
        for stop in [b'"', b'\\', 0x00, 0x1f, b'\n', 0x80, 0xff] {
            for len in 0..40 {
                for pos in 0..len {
                    let mut s = vec![b'a'; len];
                    s[pos] = stop;
                    s.iter_mut().skip(pos + 1).for_each(|b| *b = b'q');
                    // a fast path: never past the first stop byte, at most one block short of it
                    let r = skip_plain(&s, 0);
                    assert!(
                        r <= pos && pos - r < 16,
                        "stop {stop:#x} at {pos} of {len}: {r}"
                    );
                }
                let plain = vec![0x7f_u8; len];
                assert!(skip_plain(&plain, 0) <= len);
            }
        }
        // 0x20 and 0x7f are plain; non-ASCII stops the fast path
        let s = [
            0x20, 0x7f, b'x', b'y', 0x20, 0x7f, b'x', b'y', 0x20, 0x7f, b'x', b'y', 0x20, 0x7f,
            b'x', b'y', 0xc3,
        ];
        assert_eq!(skip_plain(&s, 0), 16);
        assert!(
            parse("\"caf\u{e9} \u{20ac} \u{1f600} long string with UTF-8 inside\"".as_bytes())
                .is_ok()
        );
        for bad in [
            &b"\"\x80\""[..],
            b"\"\xc3\"",
            b"\"\xed\xa0\x80\"",
            b"\"\xc0\xaf\"",
            b"\"\xf5\x80\x80\x80\"",
            b"\xc3\xa9",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert!(parse(b"\"long string with a control \x01 byte inside it\"").is_err());
    }
}
