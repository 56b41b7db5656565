//! Reading one archive file whatever state it is in: member by member,
//! skipping damage to the next member boundary.
//!
//! A file is a sequence of gzip members (zstd frames). [`MemberReader`]
//! decodes them one at a time and hands out the data of each member whose
//! checksum passed. A member that fails (bad header, corrupt deflate data,
//! checksum mismatch) and any bytes that are not a member are skipped: the
//! reader searches the following bytes for the next member header (gzip
//! `1f 8b 08`, zstd `28 b5 2f fd`) and accepts it only once a member decodes
//! there. What was skipped is recorded in a [`Damage`], and the output
//! carries a *break* at that point so the line layer ([`Lines`]) drops the
//! partial lines on either side instead of gluing them together.
//!
//! Rules (`docs/archive.md`, "Damaged files"):
//! - a member of up to [`VERIFY_MEMBER_BYTES`] decompressed bytes is
//!   checked (checksum, complete) before any of it is handed out, so a
//!   flipped bit never yields a changed line; a larger one is handed out as
//!   it decodes (bounded memory), and if it then fails, what was already
//!   handed out stays and the rest is dropped. A file that ends inside a
//!   member loses that member (its checksum cannot be checked);
//! - the original-ssmd reader sets the limit to 0 (every member handed out
//!   as it decodes): a truncated or corrupt file keeps the complete lines
//!   decoded before the damage, as that reader always did;
//! - a `.part` file ending inside a member is a *torn tail* (the member being
//!   written, or the one a crash interrupted, which repair truncates): it is
//!   dropped without a warning and counted in [`Damage::torn_tail`];
//! - an empty finalized file is a warning (a writer never leaves one);
//! - a read error (EIO) ends the file with a warning.
use super::Codec;
use memchr::{memchr, memmem};
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::mem;
use std::path::{Path, PathBuf};

/// Largest member (decompressed) whose checksum is checked before any of
/// its lines are handed out. The writer's members hold at most its buffer
/// bound (4 MiB by default) plus one `write` call.
pub const VERIFY_MEMBER_BYTES: usize = 16 << 20;
/// Longest line kept; a longer one is dropped (and counted) without ever
/// being held whole.
pub const MAX_LINE_BYTES: usize = 64 << 20;
/// Reasons kept per file; later ones are only counted.
const MAX_REASONS: usize = 3;
const CHUNK: usize = 256 << 10;
const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b, 0x08];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// How a file's bytes are encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileCodec {
    Gzip,
    Zstd,
    /// Uncompressed lines (original-ssmd `.jsonl`).
    Plain,
}

impl From<Codec> for FileCodec {
    fn from(c: Codec) -> FileCodec {
        match c {
            Codec::Gzip => FileCodec::Gzip,
            Codec::Zstd => FileCodec::Zstd,
        }
    }
}

impl FileCodec {
    fn unit(self) -> &'static str {
        match self {
            FileCodec::Gzip => "gzip member",
            FileCodec::Zstd => "zstd frame",
            FileCodec::Plain => "block",
        }
    }

    fn magic(self) -> &'static [u8] {
        match self {
            FileCodec::Gzip => GZIP_MAGIC,
            FileCodec::Zstd => ZSTD_MAGIC,
            FileCodec::Plain => &[],
        }
    }
}

/// What reading one file could not read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Damage {
    /// Members (frames) that failed to decode.
    pub members: u64,
    /// Compressed bytes skipped (failed members and bytes between members).
    pub bytes: u64,
    /// Lines dropped: partial lines at a break, over-long lines, and (set
    /// by the caller) lines that are not envelope lines.
    pub lines: u64,
    /// Problems found (damaged regions, bad lines, …).
    pub problems: u64,
    /// The first problems, in file order.
    pub reasons: Vec<String>,
    /// Bytes of a `.part` file's torn last member (not a problem).
    pub torn_tail: u64,
}

impl Damage {
    /// True when nothing was lost (a torn `.part` tail does not count).
    pub fn is_clean(&self) -> bool {
        self.problems == 0 && self.members == 0 && self.bytes == 0 && self.lines == 0
    }

    /// Record one problem.
    pub fn note(&mut self, reason: String) {
        self.problems += 1;
        if self.reasons.len() < MAX_REASONS {
            self.reasons.push(reason);
        }
    }

    /// The reasons as one line.
    pub fn reason(&self) -> String {
        let mut s = self.reasons.join("; ");
        let more = self.problems.saturating_sub(self.reasons.len() as u64);
        if more > 0 {
            s.push_str(&format!("; and {more} more problem{}", plural(more)));
        }
        s
    }
}

pub(crate) fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
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
    end_torn: bool,
    /// End of the last member that decoded.
    good_end: u64,
    /// Where the damage that runs to the end of the file starts.
    tail_start: Option<u64>,
    /// Decompressed bytes of a member checked before it is handed out.
    verify_limit: usize,
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

    /// Where the damage that runs to the end of the file starts (a `.part`
    /// file's torn tail included), once the end was reached.
    pub fn tail_start(&self) -> Option<u64> {
        self.tail_start
    }

    /// The next piece: data into `out` (cleared first), or the end.
    pub fn next_piece(&mut self, out: &mut Vec<u8>) -> Piece {
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
                } => match (&mut dec).take(CHUNK as u64).read_to_end(out) {
                    Ok(n) if n == CHUNK => {
                        self.state = State::Streaming {
                            dec,
                            start,
                            handed: handed + n as u64,
                        };
                        return self.data();
                    }
                    Ok(n) => {
                        self.members += 1;
                        let mut r = dec.into_inner();
                        self.good_end = r.stream_position().unwrap_or(self.good_end);
                        self.state = State::Idle(r);
                        if n > 0 {
                            return self.data();
                        }
                    }
                    Err(e) => {
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

    fn plain(&mut self, mut r: BufReader<File>, out: &mut Vec<u8>) -> Option<Piece> {
        match (&mut r).take(CHUNK as u64).read_to_end(out) {
            Ok(0) => None,
            Ok(_) => {
                self.state = State::Idle(r);
                Some(self.data())
            }
            Err(e) => {
                out.clear();
                self.good_end = r.stream_position().unwrap_or(self.good_end);
                self.read_error(&e);
                None
            }
        }
    }

    /// At a member boundary: decode the member there, or start or extend
    /// a damaged region. `Some` when there is something to return.
    fn member(&mut self, mut r: BufReader<File>, out: &mut Vec<u8>) -> Option<Piece> {
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

    fn decode(&mut self, r: BufReader<File>, pos: u64, out: &mut Vec<u8>) {
        let mut dec = match Dec::new(self.codec, r) {
            Ok(d) => d,
            Err(e) => {
                // Only zstd allocates here (a context); nothing can be read.
                self.read_error(&e);
                return;
            }
        };
        match (&mut dec).take(self.verify_limit as u64).read_to_end(out) {
            Ok(n) if n == self.verify_limit => {
                // Too large to hold: hand it out as it decodes.
                self.close_region(pos);
                self.state = State::Streaming {
                    dec,
                    start: pos,
                    handed: n as u64,
                };
            }
            Ok(_) => {
                self.members += 1;
                self.close_region(pos);
                let mut r = dec.into_inner();
                self.good_end = r.stream_position().unwrap_or(pos);
                self.state = State::Idle(r);
            }
            Err(e) => {
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

/// Complete lines over a [`MemberReader`]: lines never span a break, and a
/// final line without a newline is completed unless content was skipped
/// after it.
pub struct Lines {
    src: MemberReader,
    cur: Vec<u8>,
    pos: usize,
    carry: Vec<u8>,
    /// Dropping an over-long line up to its newline.
    skipping: bool,
    ended: bool,
    end_after_break: bool,
}

impl Lines {
    pub fn new(src: MemberReader) -> Lines {
        Lines {
            src,
            cur: Vec::new(),
            pos: 0,
            carry: Vec::new(),
            skipping: false,
            ended: false,
            end_after_break: false,
        }
    }

    /// The member reader (for its counts and damage).
    pub fn source(&self) -> &MemberReader {
        &self.src
    }

    /// Mutable access to the damage record (to add line problems).
    pub fn damage_mut(&mut self) -> &mut Damage {
        &mut self.src.damage
    }

    /// Content was skipped: a line begun before it cannot be completed.
    fn drop_partial(&mut self) {
        if self.skipping {
            self.skipping = false; // an over-long line, counted already
        } else if !self.carry.is_empty() {
            self.src.damage.lines += 1;
            self.carry.clear();
        }
    }

    /// The next line, with its newline, into `line` (cleared first);
    /// false at the end of the file.
    pub fn next_line(&mut self, line: &mut Vec<u8>) -> bool {
        line.clear();
        loop {
            let rest = &self.cur[self.pos..];
            if let Some(i) = memchr(b'\n', rest) {
                let end = self.pos + i + 1;
                if self.skipping {
                    self.skipping = false;
                    self.pos = end;
                    continue;
                }
                if !self.carry.is_empty() {
                    line.append(&mut self.carry);
                }
                line.extend_from_slice(&self.cur[self.pos..end]);
                self.pos = end;
                return true;
            }
            if !self.skipping {
                if self.carry.len() + rest.len() > MAX_LINE_BYTES {
                    let n = self.carry.len() + rest.len();
                    self.src.damage.lines += 1;
                    self.src.damage.note(format!(
                        "dropped a line longer than {MAX_LINE_BYTES} bytes ({n}+ bytes)"
                    ));
                    self.carry.clear();
                    self.skipping = true;
                } else {
                    self.carry.extend_from_slice(rest);
                }
            }
            self.pos = 0;
            self.cur.clear();
            if self.ended {
                if self.end_after_break {
                    if self.src.end_torn {
                        self.carry.clear(); // the line being written
                    }
                    self.drop_partial();
                    return false;
                }
                if self.skipping || self.carry.is_empty() {
                    self.skipping = false;
                    return false;
                }
                line.append(&mut self.carry);
                line.push(b'\n');
                return true;
            }
            match self.src.next_piece(&mut self.cur) {
                Piece::Data { after_break } => {
                    if after_break {
                        self.drop_partial();
                    }
                }
                Piece::End { after_break } => {
                    self.ended = true;
                    self.end_after_break = after_break;
                }
            }
        }
    }
}

/// Content of one file that a reader could not read, or a file it skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadWarning {
    pub path: PathBuf,
    /// Members (frames) dropped.
    pub members: u64,
    /// Compressed bytes skipped.
    pub bytes: u64,
    /// Lines dropped.
    pub lines: u64,
    /// What happened, one line.
    pub reason: String,
}

impl ReadWarning {
    /// A whole file skipped without reading it.
    pub fn skipped(path: &Path, reason: String) -> ReadWarning {
        ReadWarning {
            path: path.to_path_buf(),
            members: 0,
            bytes: 0,
            lines: 0,
            reason,
        }
    }

    /// The warning for what reading `path` lost, `None` when nothing was.
    pub fn from_damage(path: &Path, d: &Damage) -> Option<ReadWarning> {
        (!d.is_clean()).then(|| ReadWarning {
            path: path.to_path_buf(),
            members: d.members,
            bytes: d.bytes,
            lines: d.lines,
            reason: d.reason(),
        })
    }

    /// `{path}: {reason} (dropped …)`.
    pub fn message(&self) -> String {
        let mut parts = Vec::new();
        if self.members > 0 {
            parts.push(format!("{} member{}", self.members, plural(self.members)));
        }
        if self.bytes > 0 {
            parts.push(format!("{} byte{}", self.bytes, plural(self.bytes)));
        }
        if self.lines > 0 {
            parts.push(format!("{} line{}", self.lines, plural(self.lines)));
        }
        let dropped = if parts.is_empty() {
            String::new()
        } else {
            format!(" (dropped {})", parts.join(", "))
        };
        format!("{}: {}{dropped}", self.path.display(), self.reason)
    }
}

fn kind_of(ft: fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return "a FIFO";
        }
        if ft.is_socket() {
            return "a socket";
        }
        if ft.is_block_device() || ft.is_char_device() {
            return "a device";
        }
    }
    if ft.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

/// Open `path` for reading without blocking on a FIFO that appeared after
/// the type check.
fn open_nonblocking(path: &Path) -> io::Result<File> {
    let mut o = fs::OpenOptions::new();
    o.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.custom_flags(libc::O_NONBLOCK);
    }
    o.open(path)
}

/// Open an archive file's lines. `codec` `None` takes it from the name
/// (`.jsonl.gz`, `.jsonl.zst`, with `.part`). A file that is not a regular
/// file (a FIFO, a directory, a dangling symlink) or cannot be opened is a
/// warning and is never read; `Ok(None)` for a `.part` file that is gone
/// (finalized or removed by its writer since it was listed) when its final
/// name is gone too or was listed itself (`listed`).
pub fn open_lines(
    path: &Path,
    codec: Option<FileCodec>,
    listed: &dyn Fn(&Path) -> bool,
) -> std::result::Result<Option<Lines>, ReadWarning> {
    open_lines_with(path, codec, listed, VERIFY_MEMBER_BYTES)
}

/// [`open_lines`] with members of up to `verify_limit` bytes checked
/// before they are handed out (0: every member handed out as it decodes).
pub fn open_lines_with(
    path: &Path,
    codec: Option<FileCodec>,
    listed: &dyn Fn(&Path) -> bool,
    verify_limit: usize,
) -> std::result::Result<Option<Lines>, ReadWarning> {
    let (codec, part) = match codec {
        Some(c) => (c, false),
        None => {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            match Codec::of_file_name(name) {
                Some((c, _, part)) => (c.into(), part),
                None => {
                    return Err(ReadWarning::skipped(
                        path,
                        "not an archive file name".into(),
                    ))
                }
            }
        }
    };
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if fs::symlink_metadata(path).is_ok() {
                return Err(ReadWarning::skipped(
                    path,
                    "skipped: a symbolic link to nothing".into(),
                ));
            }
            if part {
                // Finalized by its writer since it was listed: read it under
                // its final name, unless that was listed (and is read) too.
                let fin = path.with_extension("");
                if listed(&fin) || !fin.is_file() {
                    return Ok(None);
                }
                return open_lines_with(&fin, Some(codec), &|_| false, verify_limit);
            }
            return Err(ReadWarning::skipped(
                path,
                "skipped: it no longer exists".into(),
            ));
        }
        Err(e) => return Err(ReadWarning::skipped(path, format!("skipped: {e}"))),
    };
    if !meta.is_file() {
        return Err(ReadWarning::skipped(
            path,
            format!("skipped: {}", kind_of(meta.file_type())),
        ));
    }
    let file = open_nonblocking(path)
        .map_err(|e| ReadWarning::skipped(path, format!("skipped: cannot open: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| ReadWarning::skipped(path, format!("skipped: {e}")))?;
    if !meta.is_file() {
        return Err(ReadWarning::skipped(
            path,
            format!("skipped: {}", kind_of(meta.file_type())),
        ));
    }
    let src = MemberReader::new(file, meta.len(), codec, part).with_verify_limit(verify_limit);
    Ok(Some(Lines::new(src)))
}
