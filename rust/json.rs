//! A small validating JSON scanner that borrows from the input.
//!
//! The hot path never builds a DOM: [`parse_doc`] validates a whole frame in
//! one pass (RFC 8259 grammar, bounded nesting) and, in the same pass,
//! records the fields of the first few nesting levels into a reusable
//! [`Tape`] (offsets only, no allocation once warm). Routing then looks keys
//! up in the tape instead of walking the bytes again; deeper values are
//! walked with a fast skipper. Strings are returned in their raw,
//! still-escaped form, so text copied into an envelope stays byte for byte.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};

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

/// One recorded child: an object field (with its key) or an array element.
/// Children of one container are linked through `next`, so looking a key up
/// visits that container's children only (never the whole tape).
#[derive(Debug, Clone, Copy)]
struct Child {
    key: (u32, u32),
    val: (u32, u32),
    ty: Ty,
    id: u32,
    /// Next child of the same container ([`NO_ID`] for the last).
    next: u32,
}

/// First and last child of one recorded container ([`NO_ID`] when empty).
#[derive(Debug, Clone, Copy)]
struct Children {
    first: u32,
    last: u32,
}

/// Reusable record of one document's shallow structure.
#[derive(Debug, Default)]
pub struct Tape {
    children: Vec<Child>,
    /// Indexed by container id.
    containers: Vec<Children>,
    /// Deepest container (root = 1) whose children are recorded; 0 = [`RECORD_DEPTH`].
    depth: usize,
    /// Tape entries visited by lookups since the tape was made (a measure of
    /// work, for tests that check lookups stay linear in the frame).
    /// (Atomic only to keep `Tape: Sync`; updated with plain relaxed loads and stores.)
    visits: AtomicU64,
}

/// Children kept allocated between documents; a bigger tape (one huge frame)
/// is shrunk back so one hostile frame does not pin its memory.
const TAPE_KEEP: usize = 1 << 16;

impl Tape {
    /// A tape recording children of containers down to `depth` (root = 1):
    /// routing that only reads the root and one level below needs 2.
    pub fn with_depth(depth: usize) -> Self {
        Tape {
            depth: depth.clamp(1, RECORD_DEPTH),
            ..Tape::default()
        }
    }

    /// Tape entries visited by lookups so far (see [`Doc::get_many_in`]).
    pub fn visits(&self) -> u64 {
        self.visits.load(Ordering::Relaxed)
    }

    /// Make ready for a document of `len` bytes: a tape grown by an earlier
    /// huge document is released unless this one may need it as well.
    fn clear(&mut self, len: usize) {
        if self.children.capacity() > TAPE_KEEP.max(len) {
            self.children = Vec::new();
            self.containers = Vec::new();
        }
        self.children.clear();
        self.containers.clear();
    }

    /// Children of container `id`, in document order.
    fn children_of(&self, id: u32) -> ChildIter<'_> {
        let next = self.containers.get(id as usize).map_or(NO_ID, |c| c.first);
        ChildIter { tape: self, next }
    }
}

/// Walks the linked children of one container, counting visits.
struct ChildIter<'t> {
    tape: &'t Tape,
    next: u32,
}

impl<'t> Iterator for ChildIter<'t> {
    type Item = &'t Child;

    #[inline]
    fn next(&mut self) -> Option<&'t Child> {
        let c = self.tape.children.get(self.next as usize)?;
        let v = &self.tape.visits;
        v.store(v.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        self.next = c.next;
        Some(c)
    }
}

/// A validated document and its tape.
#[derive(Debug, Clone, Copy)]
pub struct Doc<'a, 't> {
    pub root: Val<'a>,
    input: &'a [u8],
    tape: &'t Tape,
}

impl<'a> Doc<'a, '_> {
    fn val(&self, c: &Child) -> Val<'a> {
        Val {
            ty: c.ty,
            raw: &self.input[c.val.0 as usize..c.val.1 as usize],
            id: c.id,
        }
    }

    /// Look up keys of object `obj` (first occurrence of each): from the
    /// tape when its fields were recorded, else by walking it.
    pub fn get_many_in<const N: usize>(
        &self,
        obj: &Val<'a>,
        keys: [&str; N],
    ) -> [Option<Val<'a>>; N] {
        if obj.id == NO_ID || obj.ty != Ty::Object {
            return obj.get_many(keys);
        }
        let mut out = [None; N];
        let mut found = 0;
        for c in self.tape.children_of(obj.id) {
            let key = &self.input[c.key.0 as usize..c.key.1 as usize];
            for (slot, want) in out.iter_mut().zip(keys.iter()) {
                if slot.is_none() && key == want.as_bytes() {
                    *slot = Some(self.val(c));
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

    /// Root-object keys.
    pub fn get_many<const N: usize>(&self, keys: [&str; N]) -> [Option<Val<'a>>; N] {
        self.get_many_in(&self.root, keys)
    }

    pub fn get(&self, key: &str) -> Option<Val<'a>> {
        let [v] = self.get_many([key]);
        v
    }

    pub fn get_in(&self, obj: &Val<'a>, key: &str) -> Option<Val<'a>> {
        let [v] = self.get_many_in(obj, [key]);
        v
    }

    /// Elements of array `arr`, from the tape when recorded.
    pub fn items(&self, arr: &Val<'a>) -> DocItems<'a, '_> {
        if arr.id == NO_ID || arr.ty != Ty::Array {
            return DocItems(ItemSource::Walk(arr.items()));
        }
        DocItems(ItemSource::Tape(self.input, self.tape.children_of(arr.id)))
    }

    /// First element of array `arr`.
    pub fn first(&self, arr: &Val<'a>) -> Option<Val<'a>> {
        if arr.id == NO_ID || arr.ty != Ty::Array {
            return arr.first();
        }
        self.tape.children_of(arr.id).next().map(|c| self.val(c))
    }
}

/// Elements of an array ([`Doc::items`]): from the tape, or by walking the bytes.
pub struct DocItems<'a, 't>(ItemSource<'a, 't>);

enum ItemSource<'a, 't> {
    Tape(&'a [u8], ChildIter<'t>),
    Walk(Items<'a>),
}

impl<'a> Iterator for DocItems<'a, '_> {
    type Item = Val<'a>;

    #[inline]
    fn next(&mut self) -> Option<Val<'a>> {
        match &mut self.0 {
            ItemSource::Tape(input, it) => it.next().map(|c| Val {
                ty: c.ty,
                raw: &input[c.val.0 as usize..c.val.1 as usize],
                id: c.id,
            }),
            ItemSource::Walk(it) => it.next(),
        }
    }
}

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
fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t')
}

/// Validate `input` as exactly one JSON document (surrounding whitespace
/// allowed) and return it. A document that validates is valid UTF-8:
/// non-ASCII bytes are only accepted inside strings, as UTF-8 sequences.
pub fn parse(input: &[u8]) -> Result<Val<'_>, Error> {
    let mut v = Validator::<false> {
        s: input,
        i: 0,
        tape: None,
    };
    v.document().map(|(ty, s, e)| Val::new(ty, &input[s..e]))
}

/// Validate `input` and record its shallow structure into `tape` (cleared first).
/// Offsets on the tape are `u32`: a longer input is refused (a caller that
/// bounds frame sizes never gets here).
pub fn parse_doc<'a, 't>(input: &'a [u8], tape: &'t mut Tape) -> Result<Doc<'a, 't>, Error> {
    tape.clear(input.len());
    if u32::try_from(input.len()).is_err() {
        return Err(Error {
            reason: "document too large",
            pos: 0,
        });
    }
    let (ty, s, e) = {
        let mut v = Validator::<true> {
            s: input,
            i: 0,
            tape: Some(tape),
        };
        v.document()?
    };
    let id = if matches!(ty, Ty::Object | Ty::Array) {
        0
    } else {
        NO_ID
    };
    Ok(Doc {
        root: Val {
            ty,
            raw: &input[s..e],
            id,
        },
        input,
        tape,
    })
}

struct Validator<'a, 't, const REC: bool> {
    s: &'a [u8],
    i: usize,
    tape: Option<&'t mut Tape>,
}

impl<const REC: bool> Validator<'_, '_, REC> {
    fn document(&mut self) -> Result<(Ty, usize, usize), Error> {
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
                t.containers.push(Children {
                    first: NO_ID,
                    last: NO_ID,
                });
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
                let slot = t.children.len();
                t.children.push(Child {
                    key: (key.0 as u32, key.1 as u32),
                    val: (0, 0),
                    ty: Ty::Null,
                    id: NO_ID,
                    next: NO_ID,
                });
                // link it after the container's last child
                if let Some(c) = t.containers.get_mut(parent as usize) {
                    match t.children.get_mut(c.last as usize) {
                        Some(prev) => prev.next = slot as u32,
                        None => c.first = slot as u32,
                    }
                    c.last = slot as u32;
                }
                slot
            }
            _ => usize::MAX,
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
                self.object(depth + 1, *id).map(|()| Ty::Object)
            }
            b'[' => {
                *id = self.new_id(depth + 1);
                self.array(depth + 1, *id).map(|()| Ty::Array)
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

    #[test]
    fn escapes_strings() {
        let mut out = Vec::new();
        write_str(&mut out, b"a\"b\\c\nd\x01");
        assert_eq!(out, br#""a\"b\\c\nd\u0001""#);
        assert!(parse(&out).is_ok());
    }
}
