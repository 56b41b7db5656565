//! Bindings for the frame processor, normalization and checksum helpers.
use std::collections::HashMap;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};
use rustc_hash::FxHashMap;

use crate::error::Error;
use crate::model::Venue;
use crate::normalize::Normalizer;
use crate::processor::{self, Rx};
use crate::records::BookSide;
use crate::venues::kraken::KrakenBook;
use crate::venues::Setting;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Processor>()?;
    m.add_class::<Batch>()?;
    m.add_function(wrap_pyfunction!(normalize, m)?)?;
    m.add_function(wrap_pyfunction!(kraken_checksum, m)?)?;
    m.add_function(wrap_pyfunction!(venues, m)?)?;
    m.add_function(wrap_pyfunction!(subject_token, m)?)?;
    m.add_function(wrap_pyfunction!(record_fields, m)?)?;
    Ok(())
}

fn venue_of(name: &str) -> PyResult<Venue> {
    Venue::parse(name).ok_or_else(|| {
        let known: Vec<&str> = Venue::ALL.iter().map(|v| v.as_str()).collect();
        Error::Config(format!(
            "unknown venue {name:?} (known: {})",
            known.join(", ")
        ))
        .into()
    })
}

/// Hold the Python frame objects (a `str` that is not valid Unicode, i.e.
/// has lone surrogates, is replaced by its `surrogatepass` UTF-8 bytes so it
/// becomes a malformed frame instead of an error for the whole batch).
fn frame_objects<'py>(frames: &Bound<'py, PyAny>) -> PyResult<Vec<Bound<'py, PyAny>>> {
    let not_frames = |what: String| -> PyErr {
        Error::Type(format!(
            "frames must be a sequence of bytes or str, got {what}"
        ))
        .into()
    };
    let mut objs = Vec::with_capacity(frames.len().unwrap_or(0));
    let iter = frames
        .try_iter()
        .map_err(|_| not_frames(type_name(frames)))?;
    for f in iter {
        let f = f?;
        if f.is_instance_of::<PyBytes>() {
            objs.push(f);
        } else if let Ok(s) = f.downcast::<PyString>() {
            if s.to_str().is_ok() {
                objs.push(f);
            } else {
                objs.push(s.call_method1("encode", ("utf-8", "surrogatepass"))?);
            }
        } else {
            return Err(not_frames(format!("an item of type {}", type_name(&f))));
        }
    }
    Ok(objs)
}

fn type_name(o: &Bound<'_, PyAny>) -> String {
    o.get_type()
        .name()
        .map_or_else(|_| "?".into(), |n| n.to_string())
}

/// Borrow the bytes of the objects of [`frame_objects`].
fn frame_slices<'a>(objs: &'a [Bound<'_, PyAny>]) -> PyResult<Vec<&'a [u8]>> {
    objs.iter()
        .map(|o| match o.downcast::<PyBytes>() {
            Ok(b) => Ok(b.as_bytes()),
            Err(_) => Ok(o.downcast::<PyString>()?.to_str()?.as_bytes()),
        })
        .collect()
}

/// Turns raw frames of one venue connection into envelope lines.
#[pyclass(module = "ssmd._core")]
pub struct Processor {
    inner: processor::Processor,
}

#[pymethods]
impl Processor {
    #[new]
    // the default is processor::DEFAULT_MAX_FRAME_BYTES, written out for the text signature
    #[pyo3(signature = (venue, conn, env = "prod", *, replay = false, max_frame_bytes = 16_777_216))]
    fn new(
        venue: &str,
        conn: &str,
        env: &str,
        replay: bool,
        max_frame_bytes: usize,
    ) -> PyResult<Self> {
        let v = venue_of(venue)?;
        if conn.is_empty() {
            return Err(Error::Config("connection id must not be empty".into()).into());
        }
        let mut inner = processor::Processor::new(v, conn, env);
        inner.replay = replay;
        inner.max_frame_bytes = max_frame_bytes;
        Ok(Processor { inner })
    }

    #[getter]
    fn venue(&self) -> &'static str {
        self.inner.venue.as_str()
    }

    #[getter]
    fn conn(&self) -> &str {
        self.inner.conn()
    }

    /// True when replaying a recording: a sequence number that goes back
    /// restarts the stream (recorded as a `restart` status line) instead of
    /// being dropped as a duplicate.
    #[getter]
    fn replay(&self) -> bool {
        self.inner.replay
    }

    #[getter]
    fn frames_seen(&self) -> u64 {
        self.inner.frame_no()
    }

    /// Frames longer than this many bytes become `malformed` lines unparsed.
    #[getter]
    fn max_frame_bytes(&self) -> usize {
        self.inner.max_frame_bytes
    }

    /// Tape entries visited by field lookups so far (routing work; tests
    /// check it grows linearly with the frames).
    #[getter]
    fn tape_visits(&self) -> u64 {
        self.inner.tape_visits()
    }

    /// Process a batch of frames received at `rx_ns` (one int, or one per frame).
    fn process(
        &mut self,
        py: Python<'_>,
        frames: &Bound<'_, PyAny>,
        rx_ns: &Bound<'_, PyAny>,
    ) -> PyResult<Batch> {
        let objs = frame_objects(frames)?;
        let slices = frame_slices(&objs)?;
        let each: Vec<i64>;
        let rx = if let Ok(t) = rx_ns.extract::<i64>() {
            Rx::All(t)
        } else {
            each = rx_ns.extract().map_err(|_| {
                Error::Type(format!(
                    "rx_ns must be an int or a sequence of ints, got {}",
                    type_name(rx_ns)
                ))
            })?;
            if each.len() != slices.len() {
                return Err(Error::Config(format!(
                    "rx_ns has {} timestamps for {} frames",
                    each.len(),
                    slices.len()
                ))
                .into());
            }
            Rx::Each(&each)
        };
        let inner = &mut self.inner;
        let batch = py.allow_threads(|| inner.process(&slices, rx));
        Ok(Batch {
            inner: batch,
            conn: self.inner.conn().to_owned(),
        })
    }

    /// Kalshi: the category of a series, from the secmaster.
    fn set_category(&mut self, series: &str, category: &str) -> PyResult<()> {
        Ok(self
            .inner
            .configure(Setting::Category { series, category })?)
    }

    /// Kalshi: many series → category at once.
    fn set_categories(&mut self, mapping: HashMap<String, String>) -> PyResult<()> {
        for (series, category) in &mapping {
            self.set_category(series, category)?;
        }
        Ok(())
    }

    /// Kraken spot: the pair's price and quantity precisions for checksums.
    fn set_precision(
        &mut self,
        symbol: &str,
        price_precision: u32,
        qty_precision: u32,
    ) -> PyResult<()> {
        Ok(self.inner.configure(Setting::Precision {
            symbol,
            price: price_precision,
            qty: qty_precision,
        })?)
    }

    /// Kraken spot: the subscribed book depth (levels kept per side).
    fn set_book_depth(&mut self, depth: usize) -> PyResult<()> {
        Ok(self.inner.configure(Setting::BookDepth(depth))?)
    }

    /// Forget the book and sequence state kept for `instrument` (unsubscribed,
    /// or moved to another connection), so state stays bounded by what is subscribed.
    fn forget(&mut self, instruments: Vec<String>) {
        for i in &instruments {
            self.inner.forget(i);
        }
    }

    /// A new connection: forget sequence and book state.
    fn reset(&mut self) {
        self.inner.reset();
    }

    /// Running counts since the processor was made.
    fn counters<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (k, v) in self.inner.counters.pairs() {
            d.set_item(k, v)?;
        }
        Ok(d)
    }
}

/// The result of one `Processor.process` call.
#[pyclass(module = "ssmd._core", frozen)]
pub struct Batch {
    inner: processor::Batch,
    conn: String,
}

#[pymethods]
impl Batch {
    fn __len__(&self) -> usize {
        self.inner.entries.len()
    }

    #[getter]
    fn frames(&self) -> usize {
        self.inner.frames
    }

    /// Every archived line (data, unknown, status, malformed), newline-terminated, in order.
    fn lines<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.buf)
    }

    /// Lines grouped by subject in order of first appearance:
    /// `(subject, lines, count, first message id)`.
    fn groups<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let b = &self.inner;
        // pass 1: per subject, in first-seen order: lines, bytes, first entry
        let mut order: Vec<(&str, usize, usize, usize)> = Vec::new();
        let mut index: FxHashMap<&str, usize> = FxHashMap::default();
        let mut slot: Vec<u32> = Vec::with_capacity(b.entries.len());
        for (k, e) in b.entries.iter().enumerate() {
            let subj = b.subject(e);
            let i = *index.entry(subj).or_insert_with(|| {
                order.push((subj, 0, 0, k));
                order.len() - 1
            });
            order[i].1 += 1;
            order[i].2 += b.line(e).len();
            slot.push(i as u32);
        }
        if order.len() == 1 {
            // one subject: its lines are the batch's lines, already contiguous
            let (s, n, _, first) = order[0];
            let e = &b.entries[first];
            let list = PyList::empty(py);
            list.append((
                s,
                PyBytes::new(py, &b.buf),
                n,
                format!("{}:{}.{}", self.conn, e.frame, e.index),
            ))?;
            return Ok(list);
        }
        // pass 2: one buffer in group order, then one bytes object per group
        let mut offset = Vec::with_capacity(order.len());
        let mut total = 0usize;
        for g in &order {
            offset.push(total);
            total += g.2;
        }
        let mut buf = vec![0u8; total];
        let mut pos = offset.clone();
        for (e, &i) in b.entries.iter().zip(&slot) {
            let line = b.line(e);
            let p = &mut pos[i as usize];
            buf[*p..*p + line.len()].copy_from_slice(line);
            *p += line.len();
        }
        let list = PyList::empty(py);
        for (g, &start) in order.iter().zip(&offset) {
            let e = &b.entries[g.3];
            list.append((
                g.0,
                PyBytes::new(py, &buf[start..start + g.2]),
                g.1,
                format!("{}:{}.{}", self.conn, e.frame, e.index),
            ))?;
        }
        Ok(list)
    }

    /// ``(subject, lines, bytes)`` per subject in first-seen order: what
    /// ``groups()`` says without copying the lines (for counting).
    fn subjects<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let b = &self.inner;
        let mut order: Vec<(&str, usize, usize)> = Vec::new();
        let mut index: FxHashMap<&str, usize> = FxHashMap::default();
        for e in &b.entries {
            let subj = b.subject(e);
            let i = *index.entry(subj).or_insert_with(|| {
                order.push((subj, 0, 0));
                order.len() - 1
            });
            order[i].1 += 1;
            order[i].2 += b.line(e).len();
        }
        let list = PyList::empty(py);
        for g in order {
            list.append(g)?;
        }
        Ok(list)
    }

    /// The exchange time (ms since epoch) of up to `limit` archived
    /// messages, spread evenly over the batch; messages without one are
    /// left out. For sampling lag without building `messages()`.
    #[pyo3(signature = (limit = 64))]
    fn exchange_ms(&self, limit: usize) -> Vec<i64> {
        let entries = &self.inner.entries;
        let step = entries.len().div_ceil(limit.max(1)).max(1);
        entries
            .iter()
            .step_by(step)
            .filter_map(|e| e.ts_ms)
            .collect()
    }

    /// One dict per archived message (slow path, for tests and tools).
    fn messages<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let b = &self.inner;
        let list = PyList::empty(py);
        for e in &b.entries {
            let d = PyDict::new(py);
            d.set_item("subject", b.subject(e))?;
            d.set_item("kind", b.kind(e))?;
            d.set_item("instrument", b.instrument(e))?;
            d.set_item("class", e.class.as_str())?;
            d.set_item("ts_ms", e.ts_ms)?;
            d.set_item("seq", e.seq)?;
            d.set_item("dedupe_id", e.dedupe.as_deref())?;
            d.set_item("msg_id", format!("{}:{}.{}", self.conn, e.frame, e.index))?;
            d.set_item("msg", PyBytes::new(py, b.msg(e)))?;
            d.set_item("line", PyBytes::new(py, b.line(e)))?;
            list.append(d)?;
        }
        Ok(list)
    }

    /// Control frames: `(kind, raw bytes)`.
    #[getter]
    fn controls<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        for (k, raw) in &self.inner.controls {
            list.append((k.as_str(), PyBytes::new(py, raw)))?;
        }
        Ok(list)
    }

    /// Book resync requests: `(instrument, reason)`.
    #[getter]
    fn resyncs(&self) -> Vec<(String, &'static str)> {
        self.inner
            .resyncs
            .iter()
            .map(|r| (r.instrument.clone(), r.reason))
            .collect()
    }

    /// Archived lines of this batch per class (`data`, `unknown`, `status`, `malformed`) plus `control`.
    #[getter]
    fn counts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for c in ["data", "unknown", "status", "malformed"] {
            d.set_item(c, 0)?;
        }
        for e in &self.inner.entries {
            let k = e.class.as_str();
            let n: usize = d.get_item(k)?.map_or(Ok(0), |v| v.extract())?;
            d.set_item(k, n + 1)?;
        }
        d.set_item("control", self.inner.controls.len())?;
        Ok(d)
    }
}

/// Normalize frames (or archived `msg` values) of `venue` to records, as JSON lines.
#[pyfunction]
fn normalize<'py>(
    py: Python<'py>,
    venue: &str,
    frames: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let v = venue_of(venue)?;
    let objs = frame_objects(frames)?;
    let slices = frame_slices(&objs)?;
    let out = py.allow_threads(|| {
        let mut normalizer = Normalizer::new(v);
        let mut out = Vec::with_capacity(slices.iter().map(|s| s.len()).sum::<usize>());
        normalizer.write_all(slices.iter().copied(), &mut out);
        out
    });
    Ok(PyBytes::new(py, &out))
}

/// Kraken spot v2 book checksum of the given levels (`(price, qty)` text).
#[pyfunction]
fn kraken_checksum(
    asks: Vec<(String, String)>,
    bids: Vec<(String, String)>,
    price_precision: u32,
    qty_precision: u32,
) -> PyResult<u32> {
    let mut book = KrakenBook::default();
    for (side, levels) in [(BookSide::Ask, &asks), (BookSide::Bid, &bids)] {
        for (p, q) in levels {
            if !book.apply(side, p.as_bytes(), q.as_bytes()) {
                return Err(Error::Parse(format!("not a decimal level: {p:?} {q:?}")).into());
            }
        }
    }
    Ok(book.checksum(price_precision, qty_precision))
}

/// Names of the venues the core understands.
#[pyfunction]
fn venues() -> Vec<&'static str> {
    Venue::ALL.iter().map(|v| v.as_str()).collect()
}

/// The subject token of a venue id (docs/bus.md; the rule is in `rust/subject.rs`).
/// A lone surrogate, which no UTF-8 frame can carry, counts as U+FFFD, as it
/// does when the core unescapes `\ud800` from a frame.
#[pyfunction]
fn subject_token(id: &Bound<'_, PyString>) -> PyResult<String> {
    if let Ok(s) = id.to_str() {
        return Ok(crate::subject::token(s));
    }
    // lone surrogates: through UTF-16, one U+FFFD each (pairs combine)
    let units = id.call_method1("encode", ("utf-16-le", "surrogatepass"))?;
    let bytes = units.downcast::<PyBytes>()?.as_bytes();
    let wide: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    Ok(crate::subject::token(&String::from_utf16_lossy(&wide)))
}

/// `{record type: field names in JSON order}` of the normalized records,
/// as the Rust structs declare them (`ssmd.types` is checked against it).
#[pyfunction]
fn record_fields() -> HashMap<&'static str, Vec<&'static str>> {
    crate::records::RECORD_FIELDS
        .iter()
        .map(|(kind, fields)| (*kind, fields.to_vec()))
        .collect()
}
