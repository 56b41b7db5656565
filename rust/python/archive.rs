//! Bindings for the archive writer and reader (`crate::archive`).
//!
//! Compression and file IO run with the GIL released. Every Rust error
//! becomes `ssmd.errors.ConfigError` (bad argument) or `SinkError`.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use super::errors::archive_err;
use crate::archive::{
    self, open_lines_with, ArchiveError, Codec, Date, FileCodec, Lines, MergeReader, ReadFilter,
    WriterConfig,
};
use crate::error::Error;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // A wait for a manifest lock held by another process is logged on
    // `ssmd.archive` (Rust itself never logs).
    archive::set_lock_wait_hook(Box::new(|w| {
        let msg = w.message();
        Python::with_gil(|py| {
            let _ = py
                .import("logging")
                .and_then(|l| l.call_method1("getLogger", ("ssmd.archive",)))
                .and_then(|log| log.call_method1("warning", ("%s", msg)));
        });
    }));
    m.add_class::<ArchiveWriter>()?;
    m.add_class::<ArchiveReader>()?;
    m.add_class::<ReadWarning>()?;
    m.add_class::<LineChunks>()?;
    m.add_function(wrap_pyfunction!(list_files, m)?)?;
    m.add_function(wrap_pyfunction!(count_lines, m)?)?;
    m.add_function(wrap_pyfunction!(stamp_seq, m)?)?;
    Ok(())
}

#[cold]
fn to_py(_py: Python<'_>, e: &ArchiveError) -> PyErr {
    archive_err(e)
}

#[cold]
fn config_error(_py: Python<'_>, msg: String) -> PyErr {
    Error::Config(msg).into()
}

/// A poisoned lock only means another thread panicked while holding it;
/// the writer's own state stays consistent, so keep going.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Writes envelope lines into the gzip (or zstd) JSONL archive.
#[pyclass(module = "ssmd._core")]
pub struct ArchiveWriter {
    inner: Mutex<archive::ArchiveWriter>,
}

#[pymethods]
impl ArchiveWriter {
    #[new]
    #[pyo3(signature = (root, venue, writer, *, rotation_secs = 900, codec = "gzip", level = None, fsync = true, max_buffer_bytes = 4_194_304, lock_timeout = 10.0))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        root: PathBuf,
        venue: String,
        writer: String,
        rotation_secs: u64,
        codec: &str,
        level: Option<i32>,
        fsync: bool,
        max_buffer_bytes: usize,
        lock_timeout: f64,
    ) -> PyResult<Self> {
        if !(0.0..=86_400.0).contains(&lock_timeout) {
            return Err(config_error(
                py,
                format!("bad lock_timeout {lock_timeout}: seconds from 0 to 86400"),
            ));
        }
        let codec = Codec::parse(codec).ok_or_else(|| {
            config_error(
                py,
                format!("unknown codec {codec:?}: use \"gzip\" or \"zstd\""),
            )
        })?;
        let cfg = WriterConfig {
            root,
            venue,
            writer,
            rotation_secs,
            codec,
            level,
            fsync,
            max_buffer_bytes,
            lock_timeout: std::time::Duration::from_secs_f64(lock_timeout),
        };
        let w = py
            .allow_threads(|| archive::ArchiveWriter::open(cfg))
            .map_err(|e| to_py(py, &e))?;
        Ok(ArchiveWriter {
            inner: Mutex::new(w),
        })
    }

    /// Buffer complete `\n`-terminated envelope lines; returns the count.
    fn write(&self, py: Python<'_>, lines: &[u8]) -> PyResult<usize> {
        py.allow_threads(|| lock(&self.inner).write(lines))
            .map_err(|e| to_py(py, &e))
    }

    /// Compress, append and fsync the buffer; returns the lines made
    /// durable since the previous `flush`.
    fn flush(&self, py: Python<'_>) -> PyResult<u64> {
        py.allow_threads(|| lock(&self.inner).flush())
            .map_err(|e| to_py(py, &e))
    }

    /// Finalize the open file if its window ended before `now_ns`.
    fn rotate(&self, py: Python<'_>, now_ns: u64) -> PyResult<bool> {
        py.allow_threads(|| lock(&self.inner).rotate_if_due(now_ns))
            .map_err(|e| to_py(py, &e))
    }

    /// Flush, finalize the open file and write the manifest.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        py.allow_threads(|| lock(&self.inner).close())
            .map(drop)
            .map_err(|e| to_py(py, &e))
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (exc_type = None, exc = None, tb = None))]
    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: Option<&Bound<'_, PyAny>>,
        exc: Option<&Bound<'_, PyAny>>,
        tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let _ = (exc_type, exc, tb);
        self.close(py)?;
        Ok(false)
    }

    /// The `.part` file being written, or `None`.
    #[getter]
    fn path(&self) -> Option<String> {
        lock(&self.inner)
            .current_path()
            .map(|p| p.to_string_lossy().into_owned())
    }

    /// Lines accepted by `write`.
    #[getter]
    fn lines_written(&self) -> u64 {
        lock(&self.inner).stats().lines_in
    }

    /// Uncompressed bytes accepted by `write`.
    #[getter]
    fn bytes_in(&self) -> u64 {
        lock(&self.inner).stats().bytes_in
    }

    /// Compressed bytes written to files.
    #[getter]
    fn bytes_out(&self) -> u64 {
        lock(&self.inner).stats().bytes_out
    }

    /// gzip members (zstd frames) written.
    #[getter]
    fn members(&self) -> u64 {
        lock(&self.inner).stats().members
    }

    fn __repr__(&self) -> String {
        let w = lock(&self.inner);
        let c = w.config();
        format!(
            "ArchiveWriter(root={:?}, venue={:?}, writer={:?}, codec={:?})",
            c.root.display().to_string(),
            c.venue,
            c.writer,
            c.codec.name()
        )
    }
}

/// Strings of an optional iterable (a lone `str` counts as one item).
fn strings(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<String>> {
    let Some(obj) = obj else {
        return Ok(Vec::new());
    };
    if let Ok(s) = obj.downcast::<PyString>() {
        return Ok(vec![s.to_str()?.to_owned()]);
    }
    obj.try_iter()?
        .map(|x| x.and_then(|x| x.extract::<String>()))
        .collect()
}

/// Iterates over archive files, yielding `bytes` chunks of complete lines
/// in `rx` order.
#[pyclass(module = "ssmd._core")]
pub struct ArchiveReader {
    inner: Mutex<MergeReader>,
    chunk_lines: usize,
    /// The chunk being filled, kept between chunks (its capacity is reused).
    scratch: Mutex<Vec<u8>>,
}

const CHUNK_MAX_BYTES: usize = 8 << 20;

impl ArchiveReader {
    /// The next chunk into `buf` (cleared first), read without the GIL;
    /// returns its lines, 0 at the end. Rust callers (the signal engine)
    /// use it to read a chunk without copying it into a `bytes`.
    pub(crate) fn fill(&self, py: Python<'_>, buf: &mut Vec<u8>) -> PyResult<usize> {
        buf.clear();
        py.allow_threads(|| lock(&self.inner).read_chunk(buf, self.chunk_lines, CHUNK_MAX_BYTES))
            .map_err(|e| to_py(py, &e))
    }
}

#[pymethods]
impl ArchiveReader {
    #[new]
    #[pyo3(signature = (files, *, kinds = None, instruments = None, rx_from = None, rx_to = None, chunk_lines = 4096))]
    fn new(
        py: Python<'_>,
        files: Vec<PathBuf>,
        kinds: Option<&Bound<'_, PyAny>>,
        instruments: Option<&Bound<'_, PyAny>>,
        rx_from: Option<u64>,
        rx_to: Option<u64>,
        chunk_lines: usize,
    ) -> PyResult<Self> {
        if chunk_lines == 0 {
            return Err(config_error(py, "chunk_lines must be positive".into()));
        }
        let filter = ReadFilter::default()
            .kinds(strings(kinds)?)
            .instruments(strings(instruments)?)
            .rx_range(rx_from, rx_to);
        let reader = py
            .allow_threads(|| MergeReader::open(&files, filter))
            .map_err(|e| to_py(py, &e))?;
        Ok(ArchiveReader {
            inner: Mutex::new(reader),
            chunk_lines,
            scratch: Mutex::new(Vec::new()),
        })
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let mut buf = std::mem::take(&mut *lock(&self.scratch));
        let chunk = self
            .fill(py, &mut buf)
            .map(|n| (n > 0).then(|| PyBytes::new(py, &buf)));
        *lock(&self.scratch) = buf;
        chunk
    }

    /// Files that lost content or were skipped so far, one warning each,
    /// in the order found (a file's comes once it is read to its end).
    #[getter]
    fn warnings(&self) -> Vec<ReadWarning> {
        lock(&self.inner)
            .warnings()
            .iter()
            .map(ReadWarning::from)
            .collect()
    }
}

/// What reading one file could not read (or that it skipped the file).
#[pyclass(module = "ssmd._core", frozen, eq, get_all)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadWarning {
    /// The file.
    file: String,
    /// gzip members (zstd frames) dropped.
    members_dropped: u64,
    /// Compressed bytes skipped.
    bytes_dropped: u64,
    /// Lines dropped (partial, over-long or not envelope lines).
    lines_dropped: u64,
    /// What happened.
    reason: String,
}

impl From<&archive::ReadWarning> for ReadWarning {
    fn from(w: &archive::ReadWarning) -> ReadWarning {
        ReadWarning {
            file: w.path.to_string_lossy().into_owned(),
            members_dropped: w.members,
            bytes_dropped: w.bytes,
            lines_dropped: w.lines,
            reason: w.reason.clone(),
        }
    }
}

impl ReadWarning {
    fn to_rust(&self) -> archive::ReadWarning {
        archive::ReadWarning {
            path: PathBuf::from(&self.file),
            members: self.members_dropped,
            bytes: self.bytes_dropped,
            lines: self.lines_dropped,
            reason: self.reason.clone(),
        }
    }
}

#[pymethods]
impl ReadWarning {
    #[new]
    #[pyo3(signature = (file, reason, *, members_dropped = 0, bytes_dropped = 0, lines_dropped = 0))]
    fn new(
        file: PathBuf,
        reason: String,
        members_dropped: u64,
        bytes_dropped: u64,
        lines_dropped: u64,
    ) -> Self {
        ReadWarning {
            file: file.to_string_lossy().into_owned(),
            members_dropped,
            bytes_dropped,
            lines_dropped,
            reason,
        }
    }

    /// `{file}: {reason} (dropped …)`.
    fn __str__(&self) -> String {
        self.to_rust().message()
    }

    fn __repr__(&self) -> String {
        format!(
            "ReadWarning(file={:?}, reason={:?}, members_dropped={}, bytes_dropped={}, lines_dropped={})",
            self.file, self.reason, self.members_dropped, self.bytes_dropped, self.lines_dropped
        )
    }
}

/// Iterates over the lines of one file of any layout (gzip, zstd or plain
/// text), skipping damage as the archive reader does: `bytes` chunks of
/// complete `\n`-terminated lines (a last line without a newline gets one).
/// `verify=False` hands each member out as it decodes instead of after its
/// checksum passed, so a damaged member keeps the lines decoded before the
/// damage. `warning` is set once the file is read to its end, if it lost
/// content.
#[pyclass(module = "ssmd._core")]
pub struct LineChunks {
    inner: Mutex<LinesState>,
}

struct LinesState {
    path: PathBuf,
    lines: Option<Lines>,
    warning: Option<archive::ReadWarning>,
}

#[pymethods]
impl LineChunks {
    #[new]
    #[pyo3(signature = (path, *, codec = "gzip", verify = true))]
    fn new(py: Python<'_>, path: PathBuf, codec: &str, verify: bool) -> PyResult<Self> {
        let codec = match codec {
            "plain" => FileCodec::Plain,
            c => Codec::parse(c).map(FileCodec::from).ok_or_else(|| {
                config_error(
                    py,
                    format!("unknown codec {c:?}: use \"gzip\", \"zstd\" or \"plain\""),
                )
            })?,
        };
        let limit = if verify {
            archive::VERIFY_MEMBER_BYTES
        } else {
            0
        };
        let opened = py.allow_threads(|| open_lines_with(&path, Some(codec), &|_| false, limit));
        let (lines, warning) = match opened {
            Ok(l) => (l, None),
            Err(w) => (None, Some(w)),
        };
        Ok(LineChunks {
            inner: Mutex::new(LinesState {
                path,
                lines,
                warning,
            }),
        })
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        let mut buf = Vec::new();
        py.allow_threads(|| {
            let mut st = lock(&self.inner);
            let LinesState {
                path,
                lines,
                warning,
            } = &mut *st;
            let Some(src) = lines.as_mut() else { return };
            let mut line = Vec::new();
            while buf.len() < CHUNK_MAX_BYTES / 8 {
                if !src.next_line(&mut line) {
                    *warning = archive::ReadWarning::from_damage(path, &src.source().damage);
                    *lines = None;
                    break;
                }
                buf.extend_from_slice(&line);
            }
        });
        (!buf.is_empty()).then(|| PyBytes::new(py, &buf))
    }

    /// What reading the file lost (set at its end), or why it was skipped.
    #[getter]
    fn warning(&self) -> Option<ReadWarning> {
        lock(&self.inner).warning.as_ref().map(ReadWarning::from)
    }
}

fn parse_date(py: Python<'_>, what: &str, s: Option<&str>) -> PyResult<Option<Date>> {
    s.map(|s| {
        Date::parse(s)
            .ok_or_else(|| config_error(py, format!("bad {what} {s:?}: expected YYYY-MM-DD")))
    })
    .transpose()
}

/// Finalized archive files under `root`, sorted.
#[pyfunction]
#[pyo3(signature = (root, venue = None, date_from = None, date_to = None, *, include_parts = false))]
fn list_files(
    py: Python<'_>,
    root: PathBuf,
    venue: Option<String>,
    date_from: Option<&str>,
    date_to: Option<&str>,
    include_parts: bool,
) -> PyResult<Vec<String>> {
    let from = parse_date(py, "date_from", date_from)?;
    let to = parse_date(py, "date_to", date_to)?;
    let files = py
        .allow_threads(|| archive::list_files(&root, venue.as_deref(), from, to, include_parts))
        .map_err(|e| to_py(py, &e))?;
    Ok(files
        .iter()
        .map(|p: &PathBuf| Path::to_string_lossy(p).into_owned())
        .collect())
}

/// Readable lines per subject over `files`, and the warnings of files
/// that lost content or were skipped.
#[pyfunction]
fn count_lines(
    py: Python<'_>,
    files: Vec<PathBuf>,
) -> PyResult<(HashMap<String, u64>, Vec<ReadWarning>)> {
    let counts = py
        .allow_threads(|| archive::count_lines(&files))
        .map_err(|e| to_py(py, &e))?;
    let warnings = counts.warnings.iter().map(ReadWarning::from).collect();
    Ok((counts.by_subject.into_iter().collect(), warnings))
}

/// Envelope lines of bus messages with their stream sequence stamped in
/// (`"seq":M`, or `"seq":[M,i]` for line `i` of a multi-line message).
/// Returns `(lines, line_count, not_envelopes)`.
#[pyfunction]
#[pyo3(signature = (seqs, payloads, bad_subject, bad_conn = "archiver", rx_ns = None))]
fn stamp_seq<'py>(
    py: Python<'py>,
    seqs: Vec<u64>,
    payloads: Vec<Bound<'py, PyBytes>>,
    bad_subject: &str,
    bad_conn: &str,
    rx_ns: Option<u64>,
) -> PyResult<(Bound<'py, PyBytes>, u64, u64)> {
    if seqs.len() != payloads.len() {
        return Err(config_error(
            py,
            format!("{} seqs for {} payloads", seqs.len(), payloads.len()),
        ));
    }
    let safe = |s: &str| !s.bytes().any(|c| c == b'"' || c == b'\\' || c < 0x20);
    if !safe(bad_subject) || !safe(bad_conn) {
        return Err(config_error(
            py,
            "bad_subject/bad_conn must not need JSON escapes".into(),
        ));
    }
    let rx = rx_ns.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    let total: usize = payloads.iter().map(|p| p.as_bytes().len() + 24).sum();
    let mut out = archive::Stamped {
        data: Vec::with_capacity(total),
        ..Default::default()
    };
    archive::stamp(
        seqs.iter()
            .copied()
            .zip(payloads.iter().map(|p| p.as_bytes())),
        bad_subject,
        bad_conn,
        rx,
        &mut out,
    );
    Ok((PyBytes::new(py, &out.data), out.lines, out.bad))
}
