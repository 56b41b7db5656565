//! Reading the archive: listing files, a k-way merge of file streams by
//! `rx` with filters, and per-subject counts.
//!
//! Lines within one file keep their file order (they are almost sorted);
//! the merge only compares the head line of each open file. Files are
//! opened lazily: a file whose manifest says its smallest `rx` is later
//! than every line still to merge stays closed, so a month of files costs
//! a handful of open decoders, not thousands.
use super::line::{parse_envelope, parse_rx_seq, split_subject};
use super::manifest::{read_manifest_in, Manifest};
use super::repair::date_dirs;
use super::time::Date;
use super::{ArchiveError, Codec, Result};
use crate::subject;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

/// Archive files under `root` (all venues, or one), with dates in
/// `from..=to`, sorted by path. Only finalized `.jsonl.gz`/`.jsonl.zst`
/// files unless `include_parts`.
pub fn list_files(
    root: &Path,
    venue: Option<&str>,
    from: Option<Date>,
    to: Option<Date>,
    include_parts: bool,
) -> Result<Vec<PathBuf>> {
    if !root.is_dir() {
        return Err(ArchiveError::Config(format!(
            "archive directory not found: {}",
            root.display()
        )));
    }
    let venues: Vec<PathBuf> = match venue {
        Some(v) => vec![root.join(v)],
        None => {
            let mut v = Vec::new();
            for ent in fs::read_dir(root).map_err(|e| ArchiveError::io_path("listing", root, e))? {
                let ent = ent.map_err(|e| ArchiveError::io_path("listing", root, e))?;
                let hidden = ent.file_name().to_string_lossy().starts_with('.');
                if !hidden && ent.path().is_dir() {
                    v.push(ent.path());
                }
            }
            v
        }
    };
    let mut out = Vec::new();
    for vdir in venues {
        for (date, ddir) in date_dirs(&vdir)? {
            if from.is_some_and(|f| date < f) || to.is_some_and(|t| date > t) {
                continue;
            }
            for ent in
                fs::read_dir(&ddir).map_err(|e| ArchiveError::io_path("listing", &ddir, e))?
            {
                let ent = ent.map_err(|e| ArchiveError::io_path("listing", &ddir, e))?;
                let name = ent.file_name();
                let Some(name) = name.to_str() else { continue };
                if let Some((_, _, part)) = Codec::of_file_name(name) {
                    if (!part || include_parts) && !name.starts_with('.') {
                        out.push(ent.path());
                    }
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Which lines a reader yields. Empty sets are "no filter".
#[derive(Clone, Debug, Default)]
pub struct ReadFilter {
    kinds: Option<HashSet<Vec<u8>>>,
    instruments: Option<HashSet<Vec<u8>>>,
    rx_from: Option<u64>,
    rx_to: Option<u64>,
}

enum Check {
    Keep(u64),
    Skip,
    Bad,
}

impl ReadFilter {
    /// Keep only these kinds (`trade`, `book`, …).
    #[must_use]
    pub fn kinds<I, S>(mut self, kinds: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let set: HashSet<Vec<u8>> = kinds
            .into_iter()
            .map(|k| k.as_ref().as_bytes().to_vec())
            .collect();
        self.kinds = (!set.is_empty()).then_some(set);
        self
    }

    /// Keep only these instruments, given as in the subject (`BTC_USD`) or
    /// as the venue spells them (`BTC/USD`).
    #[must_use]
    pub fn instruments<I, S>(mut self, ids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let set: HashSet<Vec<u8>> = ids
            .into_iter()
            .map(|i| subject::token(i.as_ref()).into_bytes())
            .collect();
        self.instruments = (!set.is_empty()).then_some(set);
        self
    }

    /// Keep lines with `from <= rx < to` (ns since the epoch).
    #[must_use]
    pub fn rx_range(mut self, from: Option<u64>, to: Option<u64>) -> Self {
        self.rx_from = from;
        self.rx_to = to;
        self
    }

    fn overlaps(&self, first: u64, last: u64) -> bool {
        self.rx_from.map_or(true, |f| last >= f) && self.rx_to.map_or(true, |t| first < t)
    }

    #[inline]
    fn check(&self, line: &[u8]) -> Check {
        let Some(head) = parse_rx_seq(line) else {
            return Check::Bad;
        };
        let rx = head.rx;
        if self.rx_from.is_some_and(|f| rx < f) || self.rx_to.is_some_and(|t| rx >= t) {
            return Check::Skip;
        }
        if self.kinds.is_none() && self.instruments.is_none() {
            return Check::Keep(rx);
        }
        let Some(env) = parse_envelope(line) else {
            return Check::Bad;
        };
        let Some((kind, inst)) = split_subject(env.subj) else {
            return Check::Skip;
        };
        if self.kinds.as_ref().is_some_and(|k| !k.contains(kind))
            || self.instruments.as_ref().is_some_and(|i| !i.contains(inst))
        {
            return Check::Skip;
        }
        Check::Keep(rx)
    }
}

/// A decompressing line stream over one archive file.
fn open_decoder(path: &Path) -> Result<(Box<dyn BufRead + Send>, bool)> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let (codec, _, part) = Codec::of_file_name(name)
        .ok_or_else(|| ArchiveError::Config(format!("not an archive file: {}", path.display())))?;
    let file = File::open(path).map_err(|e| ArchiveError::io_path("opening", path, e))?;
    let inner = BufReader::with_capacity(128 << 10, file);
    let reader: Box<dyn BufRead + Send> = match codec {
        Codec::Gzip => Box::new(BufReader::with_capacity(
            256 << 10,
            flate2::bufread::MultiGzDecoder::new(inner),
        )),
        Codec::Zstd => Box::new(BufReader::with_capacity(
            256 << 10,
            zstd::stream::read::Decoder::with_buffer(inner)
                .map_err(|e| ArchiveError::io_path("opening", path, e))?,
        )),
    };
    Ok((reader, part))
}

struct Stream {
    path: PathBuf,
    reader: Box<dyn BufRead + Send>,
    /// A `.part` file: a torn tail ends the stream quietly.
    part: bool,
    line: Vec<u8>,
    lineno: u64,
}

impl Stream {
    /// Read up to the next line that passes `filter`; its rx, or `None` at
    /// the end of the file.
    fn advance(&mut self, filter: &ReadFilter) -> Result<Option<u64>> {
        loop {
            self.line.clear();
            let n = match self.reader.read_until(b'\n', &mut self.line) {
                Ok(n) => n,
                Err(_) if self.part => return Ok(None),
                Err(e) => return Err(ArchiveError::io_path("reading", &self.path, e)),
            };
            if n == 0 {
                return Ok(None);
            }
            self.lineno += 1;
            if self.line.last() != Some(&b'\n') {
                if self.part {
                    return Ok(None);
                }
                return Err(self.corrupt("last line is not terminated"));
            }
            match filter.check(&self.line[..n - 1]) {
                Check::Keep(rx) => return Ok(Some(rx)),
                Check::Skip => {}
                Check::Bad => return Err(self.corrupt("not an envelope line")),
            }
        }
    }

    fn corrupt(&self, what: &str) -> ArchiveError {
        ArchiveError::Corrupt {
            path: self.path.display().to_string(),
            reason: format!("line {}: {what}", self.lineno),
        }
    }
}

struct Pending {
    path: PathBuf,
    /// Smallest rx in the file (from the manifest), 0 when unknown.
    min_rx: u64,
}

/// Merges the lines of many archive files in `rx` order (ties: file order
/// of the input list), applying a [`ReadFilter`].
pub struct MergeReader {
    filter: ReadFilter,
    /// Files not opened yet, sorted by descending `min_rx` (pop = smallest).
    pending: Vec<Pending>,
    streams: Vec<Option<Stream>>,
    heap: BinaryHeap<Reverse<(u64, usize)>>,
}

impl std::fmt::Debug for MergeReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MergeReader")
            .field("pending", &self.pending.len())
            .field("open", &self.heap.len())
            .finish_non_exhaustive()
    }
}

impl MergeReader {
    /// Prepare to merge `files`. Files whose manifest range lies outside
    /// the filter's rx range are skipped without being opened.
    pub fn open(files: &[PathBuf], filter: ReadFilter) -> Result<MergeReader> {
        let mut manifests: HashMap<PathBuf, Option<Manifest>> = HashMap::new();
        let mut pending = Vec::with_capacity(files.len());
        for (order, path) in files.iter().enumerate() {
            let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
            if !manifests.contains_key(&dir) {
                // A damaged manifest only costs the lazy opening.
                let m = read_manifest_in(&dir).ok().flatten();
                manifests.insert(dir.clone(), m);
            }
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let range = manifests[&dir]
                .as_ref()
                .and_then(|m| m.file(name))
                .and_then(|e| Some((e.first_rx?, e.last_rx?)));
            let min_rx = match range {
                Some((first, last)) if !filter.overlaps(first, last) => continue,
                Some((first, _)) => first,
                None => 0,
            };
            pending.push((min_rx, order, path.clone()));
        }
        // Descending, so that `pop` yields the smallest (min_rx, order).
        pending.sort_by_key(|p| Reverse((p.0, p.1)));
        Ok(MergeReader {
            filter,
            pending: pending
                .into_iter()
                .map(|(min_rx, _, path)| Pending { path, min_rx })
                .collect(),
            streams: Vec::new(),
            heap: BinaryHeap::new(),
        })
    }

    /// Open every pending file that may hold a line not later than the
    /// current head of the merge.
    fn open_due(&mut self) -> Result<()> {
        while let Some(p) = self.pending.last() {
            if let Some(Reverse((rx, _))) = self.heap.peek() {
                if p.min_rx > *rx {
                    break;
                }
            }
            let p = self.pending.pop().expect("peeked above");
            let (reader, part) = open_decoder(&p.path)?;
            let mut s = Stream {
                path: p.path,
                reader,
                part,
                line: Vec::new(),
                lineno: 0,
            };
            if let Some(rx) = s.advance(&self.filter)? {
                self.heap.push(Reverse((rx, self.streams.len())));
                self.streams.push(Some(s));
            }
        }
        Ok(())
    }

    /// Append up to `max_lines` lines (stopping early once `out` holds
    /// `max_bytes`) in rx order to `out`; returns the number appended, 0 at
    /// the end.
    pub fn read_chunk(
        &mut self,
        out: &mut Vec<u8>,
        max_lines: usize,
        max_bytes: usize,
    ) -> Result<usize> {
        let mut n = 0;
        while n < max_lines && out.len() < max_bytes {
            self.open_due()?;
            let Some(Reverse((_, id))) = self.heap.pop() else {
                break;
            };
            let slot = &mut self.streams[id];
            let s = slot.as_mut().expect("a stream in the heap is open");
            out.extend_from_slice(&s.line);
            n += 1;
            match s.advance(&self.filter)? {
                Some(rx) => self.heap.push(Reverse((rx, id))),
                None => *slot = None,
            }
        }
        Ok(n)
    }

    /// Files currently open (decoders alive), for diagnostics.
    pub fn open_files(&self) -> usize {
        self.streams.iter().filter(|s| s.is_some()).count()
    }

    /// The next line (with its newline) into `line`; false at the end.
    pub fn next_line(&mut self, line: &mut Vec<u8>) -> Result<bool> {
        line.clear();
        Ok(self.read_chunk(line, 1, usize::MAX)? == 1)
    }
}

/// Lines per subject and per kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub lines: u64,
    pub by_subject: BTreeMap<String, u64>,
    pub by_kind: BTreeMap<String, u64>,
}

/// Count the lines of `files` per subject and per kind (no merge, no
/// filter). Lines whose subject has no `.json.{kind}` count under kind `""`.
pub fn count_lines(files: &[PathBuf]) -> Result<Counts> {
    let mut subjects: HashMap<Vec<u8>, u64> = HashMap::new();
    let mut total = 0;
    for path in files {
        let (mut reader, part) = open_decoder(path)?;
        let mut line = Vec::new();
        let mut lineno = 0u64;
        loop {
            line.clear();
            let n = match reader.read_until(b'\n', &mut line) {
                Ok(n) => n,
                Err(_) if part => break,
                Err(e) => return Err(ArchiveError::io_path("reading", path, e)),
            };
            if n == 0 || (part && line.last() != Some(&b'\n')) {
                break;
            }
            lineno += 1;
            let env = parse_envelope(&line).ok_or_else(|| ArchiveError::Corrupt {
                path: path.display().to_string(),
                reason: format!("line {lineno}: not an envelope line"),
            })?;
            if let Some(c) = subjects.get_mut(env.subj) {
                *c += 1;
            } else {
                subjects.insert(env.subj.to_vec(), 1);
            }
            total += 1;
        }
    }
    let mut counts = Counts {
        lines: total,
        ..Counts::default()
    };
    for (subj, n) in subjects {
        let kind = split_subject(&subj).map_or(&b""[..], |(k, _)| k);
        *counts
            .by_kind
            .entry(String::from_utf8_lossy(kind).into_owned())
            .or_default() += n;
        counts
            .by_subject
            .insert(String::from_utf8_lossy(&subj).into_owned(), n);
    }
    Ok(counts)
}

// The Python bindings keep a reader behind a Mutex in a pyclass.
const _: () = {
    const fn assert_send<T: Send>() {}
    assert_send::<MergeReader>();
};
