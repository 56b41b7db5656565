//! Reading the archive: listing files, a k-way merge of file streams by
//! `rx` with filters, and per-subject counts.
//!
//! Lines within one file keep their file order (they are almost sorted);
//! the merge only compares the head line of each open file. Files are
//! opened lazily: a file whose manifest says its smallest `rx` is later
//! than every line still to merge stays closed, so a month of files costs
//! a handful of open decoders, not thousands.
use super::line::{parse_envelope, split_subject};
use super::manifest::{read_manifest_in, Manifest};
use super::recover::{open_lines, Damage, Fill, Lines, ReadWarning};
use super::repair::{date_dirs, same_file};
use super::time::Date;
use super::{ArchiveError, Codec, Result};
use crate::subject;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::fs;
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
        // Every line yielded is a whole envelope line: the same rule as
        // `count_lines` and `scan_file`, so they agree on what is readable.
        let Some(env) = parse_envelope(line) else {
            return Check::Bad;
        };
        let rx = env.rx;
        if self.rx_from.is_some_and(|f| rx < f) || self.rx_to.is_some_and(|t| rx >= t) {
            return Check::Skip;
        }
        if self.kinds.is_none() && self.instruments.is_none() {
            return Check::Keep(rx);
        }
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

struct Stream {
    path: PathBuf,
    lines: Lines,
    lineno: u64,
    bad: BadLines,
}

/// Lines that are not envelope lines, for the warning.
#[derive(Default)]
struct BadLines {
    count: u64,
    first: u64,
}

impl BadLines {
    fn add(&mut self, lineno: u64) {
        if self.count == 0 {
            self.first = lineno;
        }
        self.count += 1;
    }

    /// Add them to the file's damage record.
    fn record(&self, d: &mut Damage) {
        if self.count > 0 {
            d.lines += self.count;
            d.note(format!(
                "{} line{} not an envelope line (first: line {})",
                self.count,
                if self.count == 1 { " is" } else { "s are" },
                self.first
            ));
        }
    }
}

impl Stream {
    /// Read up to the next line that passes `filter`; its rx, or `None` at
    /// the end of the file.
    fn advance(&mut self, filter: &ReadFilter) -> Option<u64> {
        loop {
            if !self.lines.advance() {
                return None;
            }
            self.lineno += 1;
            let line = self.lines.line();
            match filter.check(&line[..line.len() - 1]) {
                Check::Keep(rx) => return Some(rx),
                Check::Skip => {}
                Check::Bad => self.bad.add(self.lineno),
            }
        }
    }

    /// What reading the file lost, once it is read to its end.
    fn warning(&mut self) -> Option<ReadWarning> {
        self.bad.record(self.lines.damage_mut());
        ReadWarning::from_damage(&self.path, &self.lines.source().damage)
    }
}

/// The set of listed files, to tell whether a finalized `.part` file's
/// final name is read anyway.
fn listed_set(files: &[PathBuf]) -> HashSet<PathBuf> {
    files.iter().cloned().collect()
}

/// `files` without the `.part` files whose final name is listed too and is
/// the same file (a finalize interrupted between link and unlink).
fn without_twins(files: &[PathBuf]) -> Vec<PathBuf> {
    let set = listed_set(files);
    files
        .iter()
        .filter(|p| {
            let is_part = p.extension().is_some_and(|e| e == "part");
            !(is_part && set.contains(&p.with_extension("")) && same_file(p, &p.with_extension("")))
        })
        .cloned()
        .collect()
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
    listed: HashSet<PathBuf>,
    warnings: Vec<ReadWarning>,
    /// Decode buffers of files read to their end, for the next files
    /// (a day is read file after file: each would grow its own again).
    spare: Vec<Fill>,
}

/// Decode buffers kept for reuse, and the largest kept: the room a writer
/// member (4 MiB of lines and the last write) is decoded into. A buffer
/// grown by one huge member is let go, so the pool holds at most 4 × 8 MiB.
const SPARE_BUFFERS: usize = 4;
const SPARE_MAX_BYTES: usize = 8 << 20;

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
        let files = without_twins(files);
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
            listed: listed_set(&files),
            warnings: Vec::new(),
            spare: Vec::new(),
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
            let listed = &self.listed;
            let mut lines = match open_lines(&p.path, None, &|q| listed.contains(q)) {
                Ok(Some(lines)) => lines,
                Ok(None) => continue,
                Err(w) => {
                    self.warnings.push(w);
                    continue;
                }
            };
            if let Some(buf) = self.spare.pop() {
                lines.reuse_buffer(buf);
            }
            let mut s = Stream {
                path: p.path,
                lines,
                lineno: 0,
                bad: BadLines::default(),
            };
            if let Some(rx) = s.advance(&self.filter) {
                self.heap.push(Reverse((rx, self.streams.len())));
                self.streams.push(Some(s));
            } else {
                self.warnings.extend(s.warning());
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
            // Take the stream's lines while it stays the head of the merge: its next
            // line sorts before every other stream's and before the next file to
            // open (no heap push and pop per line, the common case of one file at a
            // time).
            let next_file = self.pending.last().map_or(u64::MAX, |p| p.min_rx);
            let slot = &mut self.streams[id];
            let s = slot.as_mut().expect("a stream in the heap is open");
            loop {
                out.extend_from_slice(s.lines.line());
                n += 1;
                match s.advance(&self.filter) {
                    Some(rx) => {
                        let head = self
                            .heap
                            .peek()
                            .map_or(true, |Reverse(top)| (rx, id) < *top);
                        if head && rx < next_file && n < max_lines && out.len() < max_bytes {
                            continue;
                        }
                        self.heap.push(Reverse((rx, id)));
                    }
                    None => {
                        self.warnings.extend(s.warning());
                        let buf = s.lines.take_buffer();
                        if self.spare.len() < SPARE_BUFFERS && buf.capacity() <= SPARE_MAX_BYTES {
                            self.spare.push(buf);
                        }
                        *slot = None;
                    }
                }
                break;
            }
        }
        Ok(n)
    }

    /// Warnings so far, one per file that lost content or was skipped, in
    /// the order found (a file's warning comes once it is read to its end).
    pub fn warnings(&self) -> &[ReadWarning] {
        &self.warnings
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
    /// Files that lost content or were skipped.
    pub warnings: Vec<ReadWarning>,
}

/// Count the readable lines of `files` per subject and per kind (no merge,
/// no filter), skipping damage as the reader does. Lines whose subject has
/// no `.json.{kind}` count under kind `""`.
pub fn count_lines(files: &[PathBuf]) -> Result<Counts> {
    let files = without_twins(files);
    let listed = listed_set(&files);
    let mut subjects: HashMap<Vec<u8>, u64> = HashMap::new();
    let mut counts = Counts::default();
    let mut line = Vec::new();
    for path in &files {
        let mut lines = match open_lines(path, None, &|q| listed.contains(q)) {
            Ok(Some(l)) => l,
            Ok(None) => continue,
            Err(w) => {
                counts.warnings.push(w);
                continue;
            }
        };
        let mut bad = BadLines::default();
        let mut lineno = 0u64;
        while lines.next_line(&mut line) {
            lineno += 1;
            let Some(env) = parse_envelope(&line) else {
                bad.add(lineno);
                continue;
            };
            if let Some(c) = subjects.get_mut(env.subj) {
                *c += 1;
            } else {
                subjects.insert(env.subj.to_vec(), 1);
            }
            counts.lines += 1;
        }
        bad.record(lines.damage_mut());
        counts
            .warnings
            .extend(ReadWarning::from_damage(path, &lines.source().damage));
    }
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
