//! Decoding a file member by member, and finding the next member after
//! damage (see the module comment of `recover`).
use super::whole::{first_room, Inflated, Inflater, Window, FHCRC};
use super::{Damage, FileCodec, GZIP_MAGIC, VERIFY_MEMBER_BYTES, ZSTD_MAGIC};
use memchr::memmem;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::mem;

const CHUNK: usize = 256 << 10;

/// A reusable buffer of decoded bytes. Its storage stays initialized
/// between fills, so refilling it neither zeroes nor regrows it (as
/// `read_to_end` into a cleared `Vec` does on every call).
#[derive(Debug, Default)]
pub struct Fill {
    buf: Vec<u8>,
    len: usize,
}

impl Fill {
    pub fn clear(&mut self) {
        self.len = 0;
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// The bytes of storage held.
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// The bytes filled.
    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Room for `n` bytes from the start (storage grown, zeroed once, as needed).
    fn room(&mut self, n: usize) -> &mut [u8] {
        if self.buf.len() < n {
            self.buf.resize(n, 0);
        }
        &mut self.buf[..n]
    }

    /// Append what `r` gives until it ends or `limit` bytes were appended;
    /// the bytes read before an error stay. Returns the bytes appended.
    fn read_from(&mut self, r: &mut impl Read, limit: usize) -> (usize, io::Result<()>) {
        let start = self.len;
        let end = start.saturating_add(limit);
        while self.len < end {
            if self.len == self.buf.len() {
                let grow = self.buf.len().max(64 << 10);
                self.buf
                    .resize(self.buf.len().saturating_add(grow).min(end), 0);
            }
            let stop = self.buf.len().min(end);
            match r.read(&mut self.buf[self.len..stop]) {
                Ok(0) => break,
                Ok(n) => self.len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return (self.len - start, Err(e)),
            }
        }
        (self.len - start, Ok(()))
    }
}

/// One piece of a file's decompressed content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Piece {
    /// Bytes were put into the output buffer; `after_break` when content
    /// was skipped between them and the previous piece.
    Data { after_break: bool },
    /// The end of the file; `after_break` when content was skipped after
    /// the last piece.
    End { after_break: bool },
}

/// A decoder of one member over the file.
enum Dec {
    Gz(Box<flate2::bufread::GzDecoder<BufReader<File>>>),
    Zst(zstd::stream::read::Decoder<'static, BufReader<File>>),
}

impl Dec {
    fn new(codec: FileCodec, r: BufReader<File>) -> io::Result<Dec> {
        Ok(match codec {
            FileCodec::Zstd => {
                Dec::Zst(zstd::stream::read::Decoder::with_buffer(r)?.single_frame())
            }
            _ => Dec::Gz(Box::new(flate2::bufread::GzDecoder::new(r))),
        })
    }

    fn into_inner(self) -> BufReader<File> {
        match self {
            Dec::Gz(d) => d.into_inner(),
            Dec::Zst(d) => d.finish(),
        }
    }
}

impl Read for Dec {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Dec::Gz(d) => d.read(buf),
            Dec::Zst(d) => d.read(buf),
        }
    }
}

enum State {
    /// At a member boundary (or in plain data).
    Idle(BufReader<File>),
    /// Handing out a member larger than [`VERIFY_MEMBER_BYTES`] as it decodes.
    Streaming { dec: Dec, start: u64, handed: u64 },
    /// Nothing more to read.
    Done,
}

/// Bytes skipped from `start`, not closed yet.
struct Region {
    start: u64,
    members: u64,
    reason: String,
}

/// Decodes a file member by member (see the module comment).
pub struct MemberReader {
    codec: FileCodec,
    part: bool,
    file_len: u64,
    state: State,
    region: Option<Region>,
    break_due: bool,
    end_after_break: bool,
    /// The end break is a `.part` file's torn tail.
    pub(super) end_torn: bool,
    /// End of the last member that decoded.
    good_end: u64,
    /// Where the damage that runs to the end of the file starts.
    tail_start: Option<u64>,
    /// Decompressed bytes of a member checked before it is handed out.
    verify_limit: usize,
    /// Compressed bytes ahead, for whole-member decoding (gzip).
    window: Window,
    inflater: Option<Inflater>,
    whole_members: bool,
    /// Members that decoded with a valid checksum.
    pub members: u64,
    /// What could not be read.
    pub damage: Damage,
}

impl MemberReader {
    /// Read `file` (of `file_len` bytes) as `codec`; `part` for an open
    /// (`.part`) file, whose torn tail is expected.
    pub fn new(file: File, file_len: u64, codec: FileCodec, part: bool) -> MemberReader {
        let mut damage = Damage::default();
        if file_len == 0 && !part && codec != FileCodec::Plain {
            damage.note("empty file".into());
        }
        MemberReader {
            codec,
            part,
            file_len,
            state: State::Idle(BufReader::with_capacity(128 << 10, file)),
            region: None,
            break_due: false,
            end_after_break: false,
            end_torn: false,
            good_end: 0,
            tail_start: None,
            verify_limit: VERIFY_MEMBER_BYTES,
            window: Window::default(),
            inflater: None,
            whole_members: true,
            members: 0,
            damage,
        }
    }

    /// Check members of up to `limit` bytes before handing them out
    /// (default [`VERIFY_MEMBER_BYTES`]).
    #[must_use]
    pub fn with_verify_limit(mut self, limit: usize) -> MemberReader {
        self.verify_limit = limit;
        self
    }

    /// Decode every member with the streaming decoder only (no whole-member
    /// fast path): the reference the fast path is tested against.
    #[cfg(test)]
    pub(crate) fn streaming_only(mut self) -> MemberReader {
        self.whole_members = false;
        self
    }

    /// Where the damage that runs to the end of the file starts (a `.part`
    /// file's torn tail included), once the end was reached.
    pub fn tail_start(&self) -> Option<u64> {
        self.tail_start
    }

    /// The next piece: data into `out` (cleared first), or the end.
    pub fn next_piece(&mut self, out: &mut Fill) -> Piece {
        out.clear();
        loop {
            match mem::replace(&mut self.state, State::Done) {
                State::Done => {
                    return Piece::End {
                        after_break: mem::take(&mut self.end_after_break),
                    }
                }
                State::Idle(r) if self.codec == FileCodec::Plain => {
                    if let Some(p) = self.plain(r, out) {
                        return p;
                    }
                }
                State::Idle(r) => {
                    if let Some(p) = self.member(r, out) {
                        return p;
                    }
                }
                State::Streaming {
                    mut dec,
                    start,
                    handed,
                } => match out.read_from(&mut dec, CHUNK) {
                    (n, Ok(())) if n == CHUNK => {
                        self.state = State::Streaming {
                            dec,
                            start,
                            handed: handed + n as u64,
                        };
                        return self.data();
                    }
                    (n, Ok(())) => {
                        self.members += 1;
                        let mut r = dec.into_inner();
                        self.good_end = r.stream_position().unwrap_or(self.good_end);
                        self.state = State::Idle(r);
                        if n > 0 {
                            return self.data();
                        }
                    }
                    (_, Err(e)) => {
                        // What decoded before the error is handed out like
                        // the rest of this member; the break follows it.
                        let mut r = dec.into_inner();
                        let unit = self.codec.unit();
                        let handed = handed + out.len() as u64;
                        let reason = if r.fill_buf().map_or(true, <[u8]>::is_empty) {
                            format!("the file ends inside the {unit} at offset {start} after {handed} bytes of it were read ({e})")
                        } else {
                            format!("bad {unit} at offset {start}: {e} (after {handed} bytes of it were read)")
                        };
                        self.fail(r, start, reason);
                        if !out.is_empty() {
                            return self.data();
                        }
                    }
                },
            }
        }
    }

    fn data(&mut self) -> Piece {
        Piece::Data {
            after_break: mem::take(&mut self.break_due),
        }
    }

    fn plain(&mut self, mut r: BufReader<File>, out: &mut Fill) -> Option<Piece> {
        match out.read_from(&mut r, CHUNK) {
            (0, Ok(())) => None,
            (_, Ok(())) => {
                self.state = State::Idle(r);
                Some(self.data())
            }
            (_, Err(e)) => {
                out.clear();
                self.good_end = r.stream_position().unwrap_or(self.good_end);
                self.read_error(&e);
                None
            }
        }
    }

    /// At a member boundary: decode the member there, or start or extend
    /// a damaged region. `Some` when there is something to return.
    fn member(&mut self, mut r: BufReader<File>, out: &mut Fill) -> Option<Piece> {
        let whole = self.whole_members && self.codec == FileCodec::Gzip && self.verify_limit > 0;
        if whole && self.whole(&mut r, out) {
            self.state = State::Idle(r);
            return (!out.is_empty()).then(|| self.data());
        }
        let head = match r.stream_position().and_then(|p| Ok((p, peek(&mut r)?))) {
            Ok(h) => h,
            Err(e) => {
                self.read_error(&e);
                return None;
            }
        };
        let (pos, head) = head;
        if head.is_empty() {
            self.close_at_eof();
        } else if !self.is_header(&head) {
            self.open_region(pos, 0, || {
                format!("bytes that are not a member at offset {pos}")
            });
            self.resync(r, pos + 1);
        } else {
            self.decode(r, pos, out);
        }
        (!out.is_empty()).then(|| self.data())
    }

    /// The fast path: decode the member at `r`'s position whole, from the
    /// window, and move `r` past it. False (with `out` and `r` as they were)
    /// when it cannot, for whatever reason: the streaming path then decodes
    /// from the same offset and says what is wrong, if anything.
    fn whole(&mut self, r: &mut BufReader<File>, out: &mut Fill) -> bool {
        let Ok(pos) = r.stream_position() else {
            return false;
        };
        let Ok(input) = self.window.from(r.get_ref(), pos) else {
            return false;
        };
        // libdeflate skips a header CRC (FHCRC) without checking it: such a member
        // (never written by ssmd) is left to the streaming decoder, which checks it
        if !input.starts_with(GZIP_MAGIC) || input.get(3).is_some_and(|f| f & FHCRC != 0) {
            return false;
        }
        let inflater = self.inflater.get_or_insert_with(Inflater::new);
        let mut room = first_room(out.capacity(), input.len()).min(self.verify_limit);
        let used = loop {
            match inflater.gzip(input, out.room(room)) {
                // a member that fills the limit is streamed, as `decode` does
                Inflated::Member {
                    input: read,
                    output,
                } if output < self.verify_limit => {
                    out.len = output;
                    break read as u64;
                }
                Inflated::Short if room < self.verify_limit => {
                    room = room.saturating_mul(2).min(self.verify_limit);
                }
                _ => return false,
            }
        };
        if r.seek(SeekFrom::Start(pos + used)).is_err() {
            out.clear();
            return false;
        }
        self.members += 1;
        self.close_region(pos);
        self.good_end = pos + used;
        true
    }

    fn decode(&mut self, r: BufReader<File>, pos: u64, out: &mut Fill) {
        let mut dec = match Dec::new(self.codec, r) {
            Ok(d) => d,
            Err(e) => {
                // Only zstd allocates here (a context); nothing can be read.
                self.read_error(&e);
                return;
            }
        };
        match out.read_from(&mut dec, self.verify_limit) {
            (n, Ok(())) if n == self.verify_limit => {
                // Too large to hold: hand it out as it decodes.
                self.close_region(pos);
                self.state = State::Streaming {
                    dec,
                    start: pos,
                    handed: n as u64,
                };
            }
            (_, Ok(())) => {
                self.members += 1;
                self.close_region(pos);
                let mut r = dec.into_inner();
                self.good_end = r.stream_position().unwrap_or(pos);
                self.state = State::Idle(r);
            }
            (_, Err(e)) => {
                // Nothing of a member whose checksum did not pass is handed
                // out: the bytes decoded before the error may hold a flip.
                out.clear();
                let mut r = dec.into_inner();
                let reason = if r.fill_buf().map_or(true, <[u8]>::is_empty) {
                    format!(
                        "the file ends inside the {} at offset {pos} ({e})",
                        self.codec.unit()
                    )
                } else {
                    format!("bad {} at offset {pos}: {e}", self.codec.unit())
                };
                self.fail(r, pos, reason);
            }
        }
    }

    /// A member starting at `start` failed: skip to the next candidate.
    fn fail(&mut self, r: BufReader<File>, start: u64, reason: String) {
        match self.region.as_mut() {
            Some(reg) => reg.members += 1,
            None => {
                self.region = Some(Region {
                    start,
                    members: 1,
                    reason,
                });
            }
        }
        self.resync(r, start + 1);
    }

    fn open_region(&mut self, start: u64, members: u64, reason: impl FnOnce() -> String) {
        if self.region.is_none() {
            self.region = Some(Region {
                start,
                members,
                reason: reason(),
            });
        }
    }

    /// A member decoded at `at`: the open region (if any) ends there.
    fn close_region(&mut self, at: u64) {
        if let Some(reg) = self.region.take() {
            let bytes = at - reg.start;
            self.damage.members += reg.members;
            self.damage.bytes += bytes;
            self.damage.note(format!(
                "{}; resumed at the next member, offset {at}",
                reg.reason
            ));
            self.break_due = true;
        }
    }

    /// The file ended: close the open region at the end.
    fn close_at_eof(&mut self) {
        self.state = State::Done;
        let Some(reg) = self.region.take() else {
            return;
        };
        let bytes = self.file_len.saturating_sub(reg.start);
        self.end_after_break = true;
        self.tail_start = Some(reg.start);
        if self.part {
            // The member being written, or the one a crash cut short.
            self.damage.torn_tail += bytes;
            self.end_torn = true;
            return;
        }
        self.damage.members += reg.members;
        self.damage.bytes += bytes;
        self.damage.note(reg.reason);
    }

    /// Search from `from` for the next member header and continue there.
    fn resync(&mut self, mut r: BufReader<File>, from: u64) {
        match find(&mut r, from, self.codec.magic()) {
            Ok(Some(_)) => self.state = State::Idle(r),
            Ok(None) => self.close_at_eof(),
            Err(e) => self.read_error(&e),
        }
    }

    /// A read error: the rest of the file (from the open region, or from
    /// the last good member) is skipped.
    fn read_error(&mut self, e: &io::Error) {
        let start = self.region.take().map_or(self.good_end, |r| r.start);
        self.tail_start = Some(start);
        self.damage.bytes += self.file_len.saturating_sub(start);
        self.damage.note(format!(
            "read error after offset {start}: {e}; the rest of the file is skipped"
        ));
        self.end_after_break = true;
        self.state = State::Done;
    }

    fn is_header(&self, head: &[u8]) -> bool {
        match self.codec {
            // FLG bits 5-7 are reserved (RFC 1952): zero in any real member.
            FileCodec::Gzip => {
                head.starts_with(GZIP_MAGIC) && head.get(3).map_or(true, |f| f & 0xe0 == 0)
            }
            FileCodec::Zstd => head.starts_with(ZSTD_MAGIC),
            FileCodec::Plain => true,
        }
    }
}

/// Up to 4 bytes at the current position, without consuming them.
fn peek(r: &mut BufReader<File>) -> io::Result<Vec<u8>> {
    let buf = r.fill_buf()?;
    if buf.len() >= 4 {
        return Ok(buf[..4].to_vec());
    }
    // The buffer ends here: read across it and go back.
    let pos = r.stream_position()?;
    let mut head = Vec::with_capacity(4);
    (&mut *r).take(4).read_to_end(&mut head)?;
    r.seek(SeekFrom::Start(pos))?;
    Ok(head)
}

/// Position `r` at the first occurrence of `magic` at or after `from`;
/// `None` (and `r` at the end) when there is none.
fn find(r: &mut BufReader<File>, from: u64, magic: &[u8]) -> io::Result<Option<u64>> {
    r.seek(SeekFrom::Start(from))?;
    let finder = memmem::Finder::new(magic);
    let keep = magic.len() - 1;
    let mut block: Vec<u8> = Vec::with_capacity(CHUNK + keep);
    let mut block_at = from;
    loop {
        let n = (&mut *r).take(CHUNK as u64).read_to_end(&mut block)?;
        if let Some(i) = finder.find(&block) {
            let at = block_at + i as u64;
            r.seek(SeekFrom::Start(at))?;
            return Ok(Some(at));
        }
        if n == 0 {
            return Ok(None);
        }
        let cut = block.len().saturating_sub(keep);
        block.drain(..cut);
        block_at += cut as u64;
    }
}
