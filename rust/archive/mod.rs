//! gzip/zstd JSONL archive (docs/archive.md): writer (members, fsync, rotation,
//! manifest, repair) and reader (k-way merge by `rx`, filters, counts).
//!
//! Layout: `{root}/{venue}/{YYYY-MM-DD}/{HHMM}-{writer}[-NN].jsonl.gz`, one
//! envelope line (docs/bus.md) per line. A file being written ends in `.part`
//! and is a sequence of complete gzip members (zstd: frames), one per flush.
//!
//! Everything here is plain Rust; the pyo3 bindings are in
//! `rust/python/archive.rs`.

mod line;
mod lock;
mod manifest;
mod reader;
mod recover;
mod repair;
mod scan;
mod seqs;
mod stamp;
mod time;
mod writer;

use std::fmt;
use std::io;
use std::path::Path;

pub use line::{parse_envelope, parse_rx_seq, split_subject, Envelope, RxSeq, Seq};
pub use lock::{set_lock_wait_hook, LockWait, DEFAULT_LOCK_TIMEOUT};
pub use manifest::{read_manifest, read_manifest_value, FileEntry, Gap, Manifest, MANIFEST_NAME};
pub use reader::{count_lines, list_files, Counts, MergeReader, ReadFilter};
pub use recover::{
    open_lines, open_lines_with, Damage, FileCodec, Lines, MemberReader, Piece, ReadWarning,
    MAX_LINE_BYTES, VERIFY_MEMBER_BYTES,
};
pub use scan::{scan_file, ScanResult};
pub use seqs::{Segment, SeqScan};
pub use stamp::{stamp, Stamped};
pub use time::Date;
pub use writer::{ArchiveWriter, WriterConfig, WriterStats};

/// Default rotation window, seconds.
pub const DEFAULT_ROTATION_SECS: u64 = 900;
/// Default auto-flush bound on buffered (uncompressed) bytes.
pub const DEFAULT_MAX_BUFFER_BYTES: usize = 4 << 20;
/// Default gzip level (libdeflate). On the market-data JSONL of
/// `benches/rust/archive.rs`, level 1 is the fastest (about 270-320 MB/s per
/// core) and the only one near the speed target, at ratio 5.3; levels 2-6
/// raise the ratio to 5.6-7.2 at 40-60 % of the speed. zstd level 1 does
/// about 500 MB/s at ratio 11.
pub const DEFAULT_GZIP_LEVEL: i32 = 1;
/// Default zstd level.
pub const DEFAULT_ZSTD_LEVEL: i32 = 1;

/// Compression of an archive file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Codec {
    /// gzip members (`.jsonl.gz`), the default.
    Gzip,
    /// zstd frames (`.jsonl.zst`).
    Zstd,
}

impl Codec {
    /// File name extension without the leading dot (`jsonl.gz`).
    pub fn extension(self) -> &'static str {
        match self {
            Codec::Gzip => "jsonl.gz",
            Codec::Zstd => "jsonl.zst",
        }
    }

    /// Name used in the manifest and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Gzip => "gzip",
            Codec::Zstd => "zstd",
        }
    }

    /// Parse `gzip`/`gz` or `zstd`/`zst`.
    pub fn parse(s: &str) -> Option<Codec> {
        match s.to_ascii_lowercase().as_str() {
            "gzip" | "gz" => Some(Codec::Gzip),
            "zstd" | "zst" => Some(Codec::Zstd),
            _ => None,
        }
    }

    /// Default compression level.
    pub fn default_level(self) -> i32 {
        match self {
            Codec::Gzip => DEFAULT_GZIP_LEVEL,
            Codec::Zstd => DEFAULT_ZSTD_LEVEL,
        }
    }

    /// The codec of a finalized (`x.jsonl.gz`) or open (`x.jsonl.gz.part`)
    /// archive file name, with the name's stem (`x`) and whether it is a part.
    pub fn of_file_name(name: &str) -> Option<(Codec, &str, bool)> {
        let (name, part) = match name.strip_suffix(".part") {
            Some(n) => (n, true),
            None => (name, false),
        };
        for codec in [Codec::Gzip, Codec::Zstd] {
            if let Some(stem) = name.strip_suffix(codec.extension()) {
                if let Some(stem) = stem.strip_suffix('.') {
                    if !stem.is_empty() {
                        return Some((codec, stem, part));
                    }
                }
            }
        }
        None
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Errors of the archive. `Config` is a caller mistake (bad argument), the
/// others are sink failures.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// An invalid setting or argument.
    #[error("{0}")]
    Config(String),
    /// A line handed to the writer is not a valid envelope line.
    #[error("invalid line: {0}")]
    InvalidLine(String),
    /// A file or directory operation failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    /// An archive file or manifest is damaged.
    #[error("{path}: {reason}")]
    Corrupt { path: String, reason: String },
    /// The writer was closed or failed earlier.
    #[error("{0}")]
    State(String),
}

impl ArchiveError {
    /// True for caller mistakes (maps to `ConfigError` in Python).
    pub fn is_config(&self) -> bool {
        matches!(self, ArchiveError::Config(_))
    }

    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        ArchiveError::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn io_path(what: &str, path: &Path, source: io::Error) -> Self {
        ArchiveError::Io {
            context: format!("{what} {}", path.display()),
            source,
        }
    }
}

/// Result of archive operations.
pub type Result<T> = std::result::Result<T, ArchiveError>;

#[cfg(test)]
mod tests;
