//! The archive writer: buffered envelope lines → one gzip member (zstd
//! frame) per flush, fsynced, rotated by the lines' `rx` window, finalized
//! into the day's manifest.
use super::line::gap_subject;
use super::line::{parse_rx_seq, Seq};
use super::lock::{FileLock, DEFAULT_LOCK_TIMEOUT};
use super::manifest::{read_manifest_in, sync_dir, update_manifest, FileStats, UpdateOpts};
use super::repair::{rename_noreplace, repair_parts, stem, stem_taken};
use super::scan::hex;
use super::time::{window_date_hhmm, window_start, Date};
use super::{ArchiveError, Codec, Result, DEFAULT_MAX_BUFFER_BYTES, DEFAULT_ROTATION_SECS};
use memchr::memchr_iter;
use sha2::{Digest, Sha256};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Settings of an [`ArchiveWriter`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriterConfig {
    /// Archive root (`SSMD_ARCHIVE_DIR`).
    pub root: PathBuf,
    /// Venue directory name (`kalshi`, `kraken-futures`, …).
    pub venue: String,
    /// Writer name (host or shard), part of every file name.
    pub writer: String,
    /// Rotation window in seconds, a divisor of 86400 (UTC, aligned on midnight).
    pub rotation_secs: u64,
    pub codec: Codec,
    /// Compression level; `None` for the codec's default.
    pub level: Option<i32>,
    /// fsync file data on every flush and directories on create/rename.
    pub fsync: bool,
    /// Flush automatically once this many uncompressed bytes are buffered.
    pub max_buffer_bytes: usize,
    /// Bound on waiting for a manifest lock held by another process.
    pub lock_timeout: Duration,
}

impl WriterConfig {
    /// Defaults: 15-minute rotation, gzip at its default level, fsync on,
    /// 4 MiB buffer.
    pub fn new(
        root: impl Into<PathBuf>,
        venue: impl Into<String>,
        writer: impl Into<String>,
    ) -> Self {
        WriterConfig {
            root: root.into(),
            venue: venue.into(),
            writer: writer.into(),
            rotation_secs: DEFAULT_ROTATION_SECS,
            codec: Codec::Gzip,
            level: None,
            fsync: true,
            max_buffer_bytes: DEFAULT_MAX_BUFFER_BYTES,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
        }
    }

    fn update_opts(&self) -> UpdateOpts<'_> {
        UpdateOpts {
            writer: &self.writer,
            fsync: self.fsync,
            lock_timeout: self.lock_timeout,
        }
    }

    fn validate(&self) -> Result<i32> {
        let cfg = |m: String| Err(ArchiveError::Config(m));
        if !valid_name(&self.venue) {
            return cfg(format!(
                "invalid venue name {:?}: use letters, digits, '-', '_', '.'",
                self.venue
            ));
        }
        if !valid_name(&self.writer) {
            return cfg(format!(
                "invalid writer name {:?}: use letters, digits, '-', '_', '.'",
                self.writer
            ));
        }
        if let Some((_, tail)) = self.writer.rsplit_once('-') {
            if tail.len() >= 2 && tail.bytes().all(|c| c.is_ascii_digit()) {
                return cfg(format!(
                    "invalid writer name {:?}: a '-NN' ending is reserved for restart suffixes",
                    self.writer
                ));
            }
        }
        if self.rotation_secs == 0 || 86_400 % self.rotation_secs != 0 {
            // Windows then never straddle midnight: a file's lines belong to
            // its date directory (late lines aside).
            return cfg(format!(
                "rotation_secs must divide a day (86400), got {}",
                self.rotation_secs
            ));
        }
        if self.max_buffer_bytes == 0 {
            return cfg("max_buffer_bytes must be positive".into());
        }
        let level = self.level.unwrap_or_else(|| self.codec.default_level());
        let range = match self.codec {
            Codec::Gzip => 0..=12,
            Codec::Zstd => zstd::compression_level_range(),
        };
        if !range.contains(&level) {
            return cfg(format!(
                "{} level must be in {}..={}, got {level}",
                self.codec,
                range.start(),
                range.end()
            ));
        }
        Ok(level)
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('.')
        && s.len() <= 128
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// Counters of a writer since it was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Lines accepted by `write`.
    pub lines_in: u64,
    /// Uncompressed bytes accepted by `write`.
    pub bytes_in: u64,
    /// Lines written and flushed (durable when fsync is on).
    pub lines_out: u64,
    /// Compressed bytes written.
    pub bytes_out: u64,
    /// gzip members (zstd frames) written.
    pub members: u64,
    /// Files finalized (by rotation or close).
    pub files: u64,
    /// `.part` files repaired and finalized at open.
    pub repaired: u64,
}

enum Encoder {
    Gzip(libdeflater::Compressor),
    Zstd(zstd::bulk::Compressor<'static>),
}

impl Encoder {
    fn new(codec: Codec, level: i32) -> Result<Encoder> {
        match codec {
            Codec::Gzip => {
                let lvl = libdeflater::CompressionLvl::new(level)
                    .map_err(|_| ArchiveError::Config(format!("bad gzip level {level}")))?;
                Ok(Encoder::Gzip(libdeflater::Compressor::new(lvl)))
            }
            Codec::Zstd => {
                let mut c = zstd::bulk::Compressor::new(level)
                    .map_err(|e| ArchiveError::Config(format!("bad zstd level {level}: {e}")))?;
                c.set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(true))
                    .map_err(|e| ArchiveError::io("configuring zstd", e))?;
                Ok(Encoder::Zstd(c))
            }
        }
    }

    /// Compress `input` into `out` (replacing its contents).
    fn compress(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<()> {
        match self {
            Encoder::Gzip(c) => {
                let bound = c.gzip_compress_bound(input.len());
                if out.len() < bound {
                    out.resize(bound, 0);
                }
                let n = c
                    .gzip_compress(input, out)
                    .map_err(|e| ArchiveError::io("gzip", io::Error::other(format!("{e:?}"))))?;
                out.truncate(n);
            }
            Encoder::Zstd(c) => {
                out.clear();
                out.reserve(zstd::zstd_safe::compress_bound(input.len()));
                c.compress_to_buffer(input, out)
                    .map_err(|e| ArchiveError::io("zstd", e))?;
            }
        }
        Ok(())
    }
}

struct OpenFile {
    window: u64,
    date: Date,
    day_dir: PathBuf,
    part: PathBuf,
    name: String,
    file: File,
    len: u64,
    sha: Sha256,
    members: u64,
    stats: FileStats,
}

struct LineMeta {
    start: usize,
    end: usize,
    rx: u64,
    seq: Option<Seq>,
}

/// Writes envelope lines into `{root}/{venue}/{date}/{HHMM}-{writer}.jsonl.gz`.
///
/// Lines are buffered; [`flush`](Self::flush) compresses the buffer into
/// one gzip member, appends it and fsyncs. After `flush` returns `Ok`,
/// every line written before is durable. A line whose `rx` falls in a later
/// window than the open file rotates first; late lines go into the open
/// file. Dropping an open writer closes it, ignoring errors; call
/// [`close`](Self::close) to see them.
pub struct ArchiveWriter {
    cfg: WriterConfig,
    venue_dir: PathBuf,
    lock: Option<FileLock>,
    encoder: Encoder,
    current: Option<OpenFile>,
    buf: Vec<u8>,
    pending: FileStats,
    out: Vec<u8>,
    metas: Vec<LineMeta>,
    stats: WriterStats,
    acked: u64,
    closed: bool,
    poisoned: Option<String>,
}

impl std::fmt::Debug for ArchiveWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArchiveWriter")
            .field("cfg", &self.cfg)
            .field("path", &self.current_path())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl ArchiveWriter {
    /// Open a writer: take the writer's lock, then repair and finalize the
    /// `.part` files a previous run of this writer left behind.
    pub fn open(cfg: WriterConfig) -> Result<ArchiveWriter> {
        let level = cfg.validate()?;
        let encoder = Encoder::new(cfg.codec, level)?;
        let venue_dir = cfg.root.join(&cfg.venue);
        if !venue_dir.is_dir() {
            fs::create_dir_all(&venue_dir)
                .map_err(|e| ArchiveError::io_path("creating", &venue_dir, e))?;
            if cfg.fsync {
                sync_dir(&cfg.root)?;
            }
        }
        let lock_path = venue_dir.join(format!(".{}.lock", cfg.writer));
        let lock = FileLock::try_acquire(&lock_path)
            .map_err(|e| ArchiveError::io_path("locking", &lock_path, e))?
            .ok_or_else(|| {
                ArchiveError::State(format!(
                    "writer {:?} of venue {:?} is already open (lock {})",
                    cfg.writer,
                    cfg.venue,
                    lock_path.display()
                ))
            })?;
        let repaired = repair_parts(&venue_dir, &cfg.venue, &cfg.update_opts())?;
        Ok(ArchiveWriter {
            stats: WriterStats {
                repaired: repaired.len() as u64,
                ..WriterStats::default()
            },
            buf: Vec::with_capacity(cfg.max_buffer_bytes.min(64 << 20) + 4096),
            cfg,
            venue_dir,
            lock: Some(lock),
            encoder,
            current: None,
            pending: FileStats::default(),
            out: Vec::new(),
            metas: Vec::new(),
            acked: 0,
            closed: false,
            poisoned: None,
        })
    }

    /// The settings this writer was opened with.
    pub fn config(&self) -> &WriterConfig {
        &self.cfg
    }

    /// Counters since open.
    pub fn stats(&self) -> WriterStats {
        self.stats
    }

    /// The `.part` file being written, if any.
    pub fn current_path(&self) -> Option<&Path> {
        self.current.as_ref().map(|f| f.part.as_path())
    }

    /// Uncompressed bytes waiting for the next flush.
    pub fn buffered_bytes(&self) -> usize {
        self.buf.len()
    }

    fn check_usable(&self) -> Result<()> {
        if let Some(p) = &self.poisoned {
            return Err(ArchiveError::State(format!("writer failed earlier: {p}")));
        }
        if self.closed {
            return Err(ArchiveError::State("writer is closed".into()));
        }
        Ok(())
    }

    /// Buffer one or more complete `\n`-terminated envelope lines; returns
    /// the number of lines. Every line is checked before any is accepted.
    pub fn write(&mut self, data: &[u8]) -> Result<usize> {
        self.check_usable()?;
        if data.is_empty() {
            return Ok(0);
        }
        if data.last() != Some(&b'\n') {
            return Err(ArchiveError::InvalidLine(
                "data must be complete lines, each ending with a newline".into(),
            ));
        }
        let mut metas = std::mem::take(&mut self.metas);
        metas.clear();
        let mut start = 0;
        for end in memchr_iter(b'\n', data) {
            let line = &data[start..end];
            let Some(head) = parse_rx_seq(line) else {
                self.metas = metas;
                return Err(ArchiveError::InvalidLine(format!(
                    "line {} does not start with {{\"rx\":<int>: {}",
                    memchr_iter(b'\n', &data[..start]).count() + 1,
                    preview(line)
                )));
            };
            metas.push(LineMeta {
                start,
                end,
                rx: head.rx,
                seq: head.seq,
            });
            start = end + 1;
        }
        let res = self.route(data, &metas);
        let n = metas.len();
        self.metas = metas;
        res.map(|()| n)
    }

    fn route(&mut self, data: &[u8], metas: &[LineMeta]) -> Result<()> {
        for m in metas {
            let window = window_start(m.rx, self.cfg.rotation_secs);
            match &self.current {
                Some(f) if window <= f.window => {}
                Some(_) => {
                    self.flush_buffer()?;
                    self.finalize()?;
                    self.open_file(window)?;
                }
                None => self.open_file(window)?,
            }
            let line = &data[m.start..=m.end];
            self.buf.extend_from_slice(line);
            self.pending.add(m.rx, m.seq, line.len());
            if let Some(subj) = gap_subject(&data[m.start..m.end]) {
                self.pending.add_gap(m.rx, subj);
            }
            self.stats.lines_in += 1;
            self.stats.bytes_in += line.len() as u64;
            if self.buf.len() >= self.cfg.max_buffer_bytes {
                self.flush_buffer()?;
            }
        }
        Ok(())
    }

    /// Compress, append and fsync everything buffered. Returns the number
    /// of lines made durable since the previous `flush` (including lines
    /// flushed automatically or by rotation in between).
    pub fn flush(&mut self) -> Result<u64> {
        self.check_usable()?;
        self.flush_buffer()?;
        Ok(self.take_acked())
    }

    fn take_acked(&mut self) -> u64 {
        let n = self.stats.lines_out - self.acked;
        self.acked = self.stats.lines_out;
        n
    }

    /// Finalize the open file if its window ended before `now_ns` (for a
    /// quiet feed, so files do not stay `.part` until the next line).
    /// Returns whether a file was finalized.
    pub fn rotate_if_due(&mut self, now_ns: u64) -> Result<bool> {
        self.check_usable()?;
        let now_window = window_start(now_ns, self.cfg.rotation_secs);
        match &self.current {
            Some(f) if f.window < now_window => {
                self.flush_buffer()?;
                self.finalize()?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Flush, finalize the open file and release the writer. Returns the
    /// lines made durable since the previous `flush`. Closing twice is a
    /// no-op.
    pub fn close(&mut self) -> Result<u64> {
        if self.closed {
            return Ok(0);
        }
        self.check_usable()?;
        self.flush_buffer()?;
        self.finalize()?;
        self.closed = true;
        self.lock = None;
        Ok(self.take_acked())
    }

    fn open_file(&mut self, window: u64) -> Result<()> {
        let (date, hhmm) = window_date_hhmm(window);
        let day_dir = self.venue_dir.join(date.to_string());
        if !day_dir.is_dir() {
            fs::create_dir_all(&day_dir)
                .map_err(|e| ArchiveError::io_path("creating", &day_dir, e))?;
            if self.cfg.fsync {
                sync_dir(&self.venue_dir)?;
            }
        }
        let taken: Vec<String> = read_manifest_in(&day_dir)?
            .map(|m| m.files.into_iter().map(|f| f.name).collect())
            .unwrap_or_default();
        let ext = self.cfg.codec.extension();
        for suffix in 0..10_000 {
            let s = stem(&hhmm, &self.cfg.writer, suffix);
            if stem_taken(&day_dir, &s, &taken) {
                continue;
            }
            let name = format!("{s}.{ext}");
            let part = day_dir.join(format!("{name}.part"));
            match OpenOptions::new().write(true).create_new(true).open(&part) {
                Ok(file) => {
                    if self.cfg.fsync {
                        sync_dir(&day_dir)?;
                    }
                    self.current = Some(OpenFile {
                        window,
                        date,
                        day_dir,
                        part,
                        name,
                        file,
                        len: 0,
                        sha: Sha256::new(),
                        members: 0,
                        stats: FileStats::default(),
                    });
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(ArchiveError::io_path("creating", &part, e)),
            }
        }
        Err(ArchiveError::State(format!(
            "no free file name for window {hhmm} in {}",
            day_dir.display()
        )))
    }

    fn flush_buffer(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let Some(f) = self.current.as_mut() else {
            return Err(ArchiveError::State(
                "buffered lines without an open file".into(),
            ));
        };
        self.encoder.compress(&self.buf, &mut self.out)?;
        if let Err(e) = f.file.write_all(&self.out) {
            // Undo a partial append so the file stays a sequence of whole
            // members; the buffer is kept for a retry.
            let undo = f
                .file
                .set_len(f.len)
                .and_then(|()| f.file.seek(SeekFrom::Start(f.len)));
            if let Err(u) = undo {
                self.poisoned = Some(format!("cannot undo a failed write: {u}"));
            }
            return Err(ArchiveError::io_path("writing", &f.part, e));
        }
        if self.cfg.fsync {
            if let Err(e) = f.file.sync_data() {
                // After a failed fsync the page cache cannot be trusted.
                self.poisoned = Some(format!("fsync failed: {e}"));
                return Err(ArchiveError::io_path("syncing", &f.part, e));
            }
        }
        let n = self.out.len() as u64;
        f.sha.update(&self.out);
        f.len += n;
        f.members += 1;
        f.stats.merge(&self.pending);
        self.stats.lines_out += self.pending.lines;
        self.stats.bytes_out += n;
        self.stats.members += 1;
        self.pending = FileStats::default();
        self.buf.clear();
        Ok(())
    }

    fn finalize(&mut self) -> Result<()> {
        let Some(f) = self.current.take() else {
            return Ok(());
        };
        let OpenFile {
            date,
            day_dir,
            part,
            mut name,
            file,
            len,
            sha,
            members,
            stats,
            ..
        } = f;
        drop(file);
        if stats.lines == 0 {
            fs::remove_file(&part).map_err(|e| ArchiveError::io_path("removing", &part, e))?;
            return Ok(());
        }
        let mut target = day_dir.join(&name);
        let mut suffix = 0;
        loop {
            match rename_noreplace(&part, &target) {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    // Someone took the name meanwhile: never overwrite.
                    suffix += 1;
                    let s = stem(&name[..4], &self.cfg.writer, suffix);
                    if stem_taken(&day_dir, &s, &[]) {
                        continue;
                    }
                    name = format!("{s}.{}", self.cfg.codec.extension());
                    target = day_dir.join(&name);
                }
                Err(e) => return Err(ArchiveError::io_path("finalizing", &part, e)),
            }
        }
        if self.cfg.fsync {
            sync_dir(&day_dir)?;
        }
        let entry = stats.into_entry(
            name,
            len,
            members,
            hex(&sha.finalize()),
            self.cfg.codec.name(),
        );
        update_manifest(
            &day_dir,
            &self.cfg.venue,
            date,
            vec![entry],
            &self.cfg.update_opts(),
        )?;
        self.stats.files += 1;
        Ok(())
    }
}

#[cfg(test)]
impl ArchiveWriter {
    /// Simulate a crash: the `.part` stays as it is, the lock is released.
    pub(crate) fn abandon(mut self) -> PathBuf {
        let p = self.current_path().expect("an open file").to_path_buf();
        self.closed = true;
        p
    }
}

impl Drop for ArchiveWriter {
    fn drop(&mut self) {
        if !self.closed && self.poisoned.is_none() {
            let _ = self.close();
        }
    }
}

fn preview(line: &[u8]) -> String {
    let cut = &line[..line.len().min(80)];
    let mut s = String::from_utf8_lossy(cut).into_owned();
    if line.len() > 80 {
        s.push('…');
    }
    s
}
