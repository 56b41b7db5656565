//! Bindings for `ssmd archive verify`: the file scanner and the manifest
//! reader (`crate::archive::scan_file`, `read_manifest_value`).
use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyList, PyString};

use super::errors::archive_err;
use crate::archive::{self, Seq};

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<FileScan>()?;
    m.add_function(wrap_pyfunction!(scan_file, m)?)?;
    m.add_function(wrap_pyfunction!(read_manifest, m)?)?;
    Ok(())
}

/// A stream sequence key as `(M, i)`, `i = -1` for a plain `M`.
type Key = (u64, i64);
/// `(runs, first_m, last_m, first_idx, last_idx, first_key, last_key)`.
type SegmentTuple = (Vec<(u64, u64)>, u64, u64, Vec<i64>, Vec<i64>, Key, Key);

fn key(s: Seq) -> Key {
    (
        s.stream,
        s.index.map_or(-1, |i| i64::try_from(i).unwrap_or(i64::MAX)),
    )
}

fn idx(i: Option<u64>) -> i64 {
    i.map_or(-1, |i| i64::try_from(i).unwrap_or(i64::MAX))
}

/// What scanning one archive file found: what the reader reads of it, the
/// manifest figures of that, the damage skipped and the stream sequences.
#[pyclass(module = "ssmd._core", frozen, get_all)]
pub struct FileScan {
    /// `gzip` or `zstd`.
    codec: String,
    /// An open (`.part`) file.
    part: bool,
    /// Gone since it was listed (a `.part` finalized or removed meanwhile).
    gone: bool,
    /// Why it was not read (not a regular file, cannot be opened).
    skipped: Option<String>,
    /// Size of the file and sha256 of all of it.
    size: u64,
    sha256: String,
    /// Members (frames) that decoded, readable lines, their bytes.
    members: u64,
    lines: u64,
    raw_bytes: u64,
    first_rx: Option<u64>,
    last_rx: Option<u64>,
    /// Smallest and largest stream sequence, `(M, i)` (`i = -1`: plain).
    first_seq: Option<Key>,
    last_seq: Option<Key>,
    /// Gap status lines, `(rx, subject)`.
    gaps: Vec<(u64, String)>,
    /// Stream gaps they record, `(from, to)`.
    recorded: Vec<(u64, u64)>,
    /// Sequence segments (a reset inside the file starts a new one).
    segments: Vec<SegmentTuple>,
    /// `M` ranges archived twice within the file.
    duplicates: Vec<(u64, u64)>,
    /// What reading dropped, as a reader's warning counts it.
    members_dropped: u64,
    bytes_dropped: u64,
    lines_dropped: u64,
    /// Why content was lost, `None` when nothing was.
    error: Option<String>,
    /// Bytes of a `.part` file's torn last member.
    torn_tail: u64,
}

/// Scan one archive file (see `FileScan`); raises `SinkError` on an I/O
/// error other than the file being gone or unreadable.
#[pyfunction]
fn scan_file(py: Python<'_>, path: PathBuf) -> PyResult<FileScan> {
    let s = py
        .allow_threads(|| archive::scan_file(&path))
        .map_err(|e| archive_err(&e))?;
    let e = &s.entry;
    Ok(FileScan {
        codec: s.codec.name().to_owned(),
        part: s.part,
        gone: s.gone,
        skipped: s.skipped.clone(),
        size: s.file_len,
        sha256: s.sha256.clone(),
        members: e.members,
        lines: e.lines,
        raw_bytes: e.raw_bytes,
        first_rx: e.first_rx,
        last_rx: e.last_rx,
        first_seq: e.first_seq.map(key),
        last_seq: e.last_seq.map(key),
        gaps: e.gaps.iter().map(|g| (g.rx, g.subj.clone())).collect(),
        recorded: s.recorded.clone(),
        segments: s
            .segments
            .iter()
            .map(|g| {
                (
                    g.runs.clone(),
                    g.first_m,
                    g.last_m,
                    g.first_idx.iter().copied().map(idx).collect(),
                    g.last_idx.iter().copied().map(idx).collect(),
                    key(g.first_key),
                    key(g.last_key),
                )
            })
            .collect(),
        duplicates: s.duplicates.clone(),
        members_dropped: s.damage.members,
        bytes_dropped: s.damage.bytes,
        lines_dropped: s.damage.lines,
        error: s.error.clone(),
        torn_tail: s.damage.torn_tail,
    })
}

fn to_py<'py>(py: Python<'py>, v: &serde_json::Value) -> PyResult<Bound<'py, PyAny>> {
    use serde_json::Value as V;
    Ok(match v {
        V::Null => py.None().into_bound(py),
        V::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        V::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => u.into_pyobject(py)?.into_any(),
            (None, Some(i)) => i.into_pyobject(py)?.into_any(),
            _ => n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any(),
        },
        V::String(s) => PyString::new(py, s).into_any(),
        V::Array(a) => {
            let l = PyList::empty(py);
            for x in a {
                l.append(to_py(py, x)?)?;
            }
            l.into_any()
        }
        V::Object(o) => {
            let d = PyDict::new(py);
            for (k, x) in o {
                d.set_item(k, to_py(py, x)?)?;
            }
            d.into_any()
        }
    })
}

/// The manifest of a date directory as written (every key kept), `None`
/// when there is none; `SinkError` when it is not a valid manifest.
#[pyfunction]
fn read_manifest(py: Python<'_>, day_dir: PathBuf) -> PyResult<Option<Bound<'_, PyAny>>> {
    let v = py
        .allow_threads(|| archive::read_manifest_value(&day_dir))
        .map_err(|e| archive_err(&e))?;
    v.map(|v| to_py(py, &v)).transpose()
}
