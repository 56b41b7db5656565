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
//!
//! Files: [`members`] decodes members and finds the next one after damage,
//! [`whole`] decodes a gzip member held whole (the fast path), [`lines`]
//! cuts complete lines, [`open`] opens a file (or says why not)
//! and turns its [`Damage`] into a [`ReadWarning`].
use super::Codec;

mod lines;
mod members;
mod open;
mod whole;

pub use lines::Lines;
pub use members::{Fill, MemberReader, Piece};
pub use open::{open_lines, open_lines_with, ReadWarning};

/// Largest member (decompressed) whose checksum is checked before any of
/// its lines are handed out. The writer's members hold at most its buffer
/// bound (4 MiB by default) plus one `write` call.
pub const VERIFY_MEMBER_BYTES: usize = 16 << 20;
/// Longest line kept; a longer one is dropped (and counted) without ever
/// being held whole.
pub const MAX_LINE_BYTES: usize = 64 << 20;
/// Reasons kept per file; later ones are only counted.
const MAX_REASONS: usize = 3;
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
