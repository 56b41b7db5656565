//! `{venue}/{YYYY-MM-DD}/manifest.json`: one entry per finalized file.
//!
//! Several writers share a day's manifest. Each update takes an advisory
//! lock on `.manifest.lock` next to it, re-reads the manifest, merges its
//! entries by file name and replaces the file atomically (tmp, fsync,
//! rename, fsync of the directory).
use super::line::Seq;
use super::lock::FileLock;
use super::time::Date;
use super::{ArchiveError, Result};
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;
use std::time::Duration;

/// Name of the manifest in each date directory.
pub const MANIFEST_NAME: &str = "manifest.json";
const LOCK_NAME: &str = ".manifest.lock";

/// A gap status line seen in a file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    pub rx: u64,
    pub subj: String,
}

/// One finalized archive file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    /// File name within the date directory.
    pub name: String,
    /// Lines in the file.
    pub lines: u64,
    /// Compressed size of the file.
    pub bytes: u64,
    /// Uncompressed size (sum of line lengths with their newlines).
    #[serde(default)]
    pub raw_bytes: u64,
    /// gzip members (zstd frames): one per flush.
    #[serde(default)]
    pub members: u64,
    /// sha256 of the file, lower-case hex.
    pub sha256: String,
    /// Smallest `rx` in the file.
    pub first_rx: Option<u64>,
    /// Largest `rx` in the file.
    pub last_rx: Option<u64>,
    /// Smallest `seq`, if the lines carry one.
    pub first_seq: Option<Seq>,
    /// Largest `seq`.
    pub last_seq: Option<Seq>,
    /// Gap status lines, in file order.
    #[serde(default)]
    pub gaps: Vec<Gap>,
    /// `gzip` or `zstd`.
    pub codec: String,
    /// Keys written by other versions, kept as they are.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// A day's manifest of one venue.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub venue: String,
    pub date: String,
    pub files: Vec<FileEntry>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Manifest {
    /// The entry of file `name`.
    pub fn file(&self, name: &str) -> Option<&FileEntry> {
        self.files.iter().find(|f| f.name == name)
    }
}

/// Line statistics accumulated for a file (the manifest fields that come
/// from the lines themselves).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct FileStats {
    pub lines: u64,
    pub raw_bytes: u64,
    pub first_rx: Option<u64>,
    pub last_rx: Option<u64>,
    pub first_seq: Option<Seq>,
    pub last_seq: Option<Seq>,
    pub gaps: Vec<Gap>,
}

impl FileStats {
    /// Count one line of `len` bytes (newline included).
    #[inline]
    pub fn add(&mut self, rx: u64, seq: Option<Seq>, len: usize) {
        self.lines += 1;
        self.raw_bytes += len as u64;
        self.first_rx = Some(self.first_rx.map_or(rx, |r| r.min(rx)));
        self.last_rx = Some(self.last_rx.map_or(rx, |r| r.max(rx)));
        if let Some(s) = seq {
            self.first_seq = Some(self.first_seq.map_or(s, |f| f.min(s)));
            self.last_seq = Some(self.last_seq.map_or(s, |l| l.max(s)));
        }
    }

    pub fn add_gap(&mut self, rx: u64, subj: &[u8]) {
        self.gaps.push(Gap {
            rx,
            subj: String::from_utf8_lossy(subj).into_owned(),
        });
    }

    pub fn merge(&mut self, o: &FileStats) {
        self.lines += o.lines;
        self.raw_bytes += o.raw_bytes;
        self.first_rx = opt(self.first_rx, o.first_rx, u64::min);
        self.last_rx = opt(self.last_rx, o.last_rx, u64::max);
        self.first_seq = opt(self.first_seq, o.first_seq, Seq::min);
        self.last_seq = opt(self.last_seq, o.last_seq, Seq::max);
        self.gaps.extend(o.gaps.iter().cloned());
    }

    pub fn into_entry(
        self,
        name: String,
        bytes: u64,
        members: u64,
        sha256: String,
        codec: &str,
    ) -> FileEntry {
        FileEntry {
            name,
            lines: self.lines,
            bytes,
            raw_bytes: self.raw_bytes,
            members,
            sha256,
            first_rx: self.first_rx,
            last_rx: self.last_rx,
            first_seq: self.first_seq,
            last_seq: self.last_seq,
            gaps: self.gaps,
            codec: codec.to_owned(),
            extra: serde_json::Map::new(),
        }
    }
}

fn opt<T: Copy>(a: Option<T>, b: Option<T>, f: impl Fn(T, T) -> T) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(f(a, b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// Read `{root}/{venue}/{date}/manifest.json`; `Ok(None)` when absent.
pub fn read_manifest(root: &Path, venue: &str, date: Date) -> Result<Option<Manifest>> {
    read_manifest_in(&root.join(venue).join(date.to_string()))
}

/// Read the manifest of a date directory; `Ok(None)` when absent.
pub(crate) fn read_manifest_in(day_dir: &Path) -> Result<Option<Manifest>> {
    let path = day_dir.join(MANIFEST_NAME);
    let data = match fs::read(&path) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ArchiveError::io_path("reading", &path, e)),
    };
    serde_json::from_slice(&data)
        .map(Some)
        .map_err(|e| ArchiveError::Corrupt {
            path: path.display().to_string(),
            reason: format!("invalid manifest: {e}"),
        })
}

/// The manifest of a date directory as written (every key kept, values as
/// they are), after checking that it is a valid manifest; `Ok(None)` when
/// absent.
pub fn read_manifest_value(day_dir: &Path) -> Result<Option<serde_json::Value>> {
    let path = day_dir.join(MANIFEST_NAME);
    let data = match fs::read(&path) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ArchiveError::io_path("reading", &path, e)),
    };
    let invalid = |e: serde_json::Error| ArchiveError::Corrupt {
        path: path.display().to_string(),
        reason: format!("invalid manifest: {e}"),
    };
    let value: serde_json::Value = serde_json::from_slice(&data).map_err(invalid)?;
    Manifest::deserialize(&value).map_err(invalid)?;
    Ok(Some(value))
}

/// How a writer updates a manifest.
#[derive(Clone, Copy, Debug)]
pub(crate) struct UpdateOpts<'a> {
    pub writer: &'a str,
    pub fsync: bool,
    /// Bound on waiting for another process's manifest lock.
    pub lock_timeout: Duration,
}

/// Merge `entries` (by name) into the manifest of `day_dir` and replace it
/// atomically, under the directory's manifest lock.
pub(crate) fn update_manifest(
    day_dir: &Path,
    venue: &str,
    date: Date,
    entries: Vec<FileEntry>,
    opts: &UpdateOpts<'_>,
) -> Result<()> {
    let fsync = opts.fsync;
    let lock_path = day_dir.join(LOCK_NAME);
    let what = format!("manifest update by writer {}", opts.writer);
    let _lock = FileLock::acquire(&lock_path, opts.lock_timeout, &what)
        .map_err(|e| ArchiveError::io_path("locking", &lock_path, e))?;
    let mut manifest = read_manifest_in(day_dir)?.unwrap_or_else(|| Manifest {
        venue: venue.to_owned(),
        date: date.to_string(),
        files: Vec::new(),
        extra: serde_json::Map::new(),
    });
    for entry in entries {
        match manifest.files.iter_mut().find(|f| f.name == entry.name) {
            Some(slot) => *slot = entry,
            None => manifest.files.push(entry),
        }
    }
    manifest.files.sort_by(|a, b| a.name.cmp(&b.name));
    let mut data = serde_json::to_vec_pretty(&manifest).map_err(|e| ArchiveError::Corrupt {
        path: day_dir.display().to_string(),
        reason: format!("cannot encode manifest: {e}"),
    })?;
    data.push(b'\n');

    let tmp = day_dir.join(format!(".{MANIFEST_NAME}.{}.tmp", std::process::id()));
    let path = day_dir.join(MANIFEST_NAME);
    let write = || -> io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(&data)?;
        if fsync {
            f.sync_all()?;
        }
        fs::rename(&tmp, &path)
    };
    if let Err(e) = write() {
        let _ = fs::remove_file(&tmp);
        return Err(ArchiveError::io_path("writing", &path, e));
    }
    if fsync {
        sync_dir(day_dir)?;
    }
    Ok(())
}

/// fsync a directory so that a create or rename in it is durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| ArchiveError::io_path("syncing directory", dir, e))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}
