//! Bindings for the columnar form (`crate::columns`): archive files into
//! Arrow record batches, handed to Python through the Arrow PyCapsule
//! interface (`__arrow_c_array__`, `__arrow_c_schema__`), which pyarrow and
//! polars import without a copy.
use std::collections::HashSet;
use std::ffi::CString;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyDict};

use super::archive::ReadWarning;
use super::errors::archive_err;
use crate::columns::{self, export_array, export_schema, Data, Kind, Select};
use crate::error::Error;
use crate::model::Venue;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ColumnReader>()?;
    m.add_class::<ArrowBatch>()?;
    m.add_class::<ArrowSchema>()?;
    m.add_function(wrap_pyfunction!(arrow_schema, m)?)?;
    m.add_function(wrap_pyfunction!(column_kinds, m)?)?;
    m.add("COLUMNS_SCHEMA_VERSION", columns::SCHEMA_VERSION)?;
    Ok(())
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cold]
fn config(msg: String) -> PyErr {
    Error::Config(msg).into()
}

fn kind_of(name: &str) -> PyResult<Kind> {
    Kind::parse(name).ok_or_else(|| {
        let known: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
        config(format!(
            "unknown kind {name:?} (known: {})",
            known.join(", ")
        ))
    })
}

fn schema_capsule<'py>(
    py: Python<'py>,
    kind: Kind,
    views: bool,
) -> PyResult<Bound<'py, PyCapsule>> {
    let name = CString::new("arrow_schema").expect("no NUL");
    PyCapsule::new(py, export_schema(&kind.schema(views)), Some(name))
}

/// The normalized kinds with a columnar schema, in table order.
#[pyfunction]
fn column_kinds() -> Vec<&'static str> {
    Kind::ALL.iter().map(|k| k.as_str()).collect()
}

/// The Arrow schema of one kind (an object with `__arrow_c_schema__`);
/// `views=False`: the stored schema, without the float64 views.
#[pyfunction]
#[pyo3(signature = (kind, views = true))]
fn arrow_schema(kind: &str, views: bool) -> PyResult<ArrowSchema> {
    Ok(ArrowSchema {
        kind: kind_of(kind)?,
        views,
    })
}

/// The Arrow schema of one normalized kind.
#[pyclass(module = "ssmd._core", frozen)]
pub struct ArrowSchema {
    kind: Kind,
    views: bool,
}

#[pymethods]
impl ArrowSchema {
    #[getter]
    fn kind(&self) -> &'static str {
        self.kind.as_str()
    }

    fn __arrow_c_schema__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyCapsule>> {
        schema_capsule(py, self.kind, self.views)
    }
}

/// One record batch of one kind, exported once through `__arrow_c_array__`.
#[pyclass(module = "ssmd._core", frozen)]
pub struct ArrowBatch {
    kind: Kind,
    views: bool,
    rows: usize,
    data: Mutex<Option<Data>>,
}

#[pymethods]
impl ArrowBatch {
    #[getter]
    fn kind(&self) -> &'static str {
        self.kind.as_str()
    }

    #[getter]
    fn num_rows(&self) -> usize {
        self.rows
    }

    /// `(schema capsule, array capsule)`; the buffers move to the consumer,
    /// so a batch can be imported once.
    #[pyo3(signature = (requested_schema = None))]
    fn __arrow_c_array__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<PyObject>,
    ) -> PyResult<(Bound<'py, PyCapsule>, Bound<'py, PyCapsule>)> {
        // A requested schema other than our own is ignored, as the protocol
        // allows: the columns are what they are.
        let _ = requested_schema;
        let data = lock(&self.data)
            .take()
            .ok_or_else(|| config("this batch was already imported".to_owned()))?;
        let schema = schema_capsule(py, self.kind, self.views)?;
        let name = CString::new("arrow_array").expect("no NUL");
        let array = PyCapsule::new(py, export_array(data), Some(name))?;
        Ok((schema, array))
    }
}

/// Reads one venue's archive files into record batches per normalized
/// kind, in `rx` order.
#[pyclass(module = "ssmd._core")]
pub struct ColumnReader {
    inner: Mutex<columns::ColumnReader>,
    views: bool,
}

#[pymethods]
impl ColumnReader {
    #[new]
    #[pyo3(signature = (files, venue, *, kinds = None, instruments = None, rx_from = None, rx_to = None, batch_rows = 262_144, views = true))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        files: Vec<PathBuf>,
        venue: &str,
        kinds: Option<Vec<String>>,
        instruments: Option<Vec<String>>,
        rx_from: Option<u64>,
        rx_to: Option<u64>,
        batch_rows: usize,
        views: bool,
    ) -> PyResult<Self> {
        let v = Venue::parse(venue).ok_or_else(|| config(format!("unknown venue {venue:?}")))?;
        let kinds = match kinds {
            None => None,
            Some(k) => Some(
                k.iter()
                    .map(|k| kind_of(k))
                    .collect::<PyResult<HashSet<Kind>>>()?,
            ),
        };
        if batch_rows == 0 {
            return Err(config("batch_rows must be at least 1".to_owned()));
        }
        let select = Select {
            kinds,
            instruments: instruments.map(|i| i.into_iter().collect()),
            rx_from,
            rx_to,
            views,
        };
        let reader = py
            .allow_threads(|| columns::ColumnReader::open(&files, v, select, batch_rows))
            .map_err(|e| archive_err(&e))?;
        Ok(ColumnReader {
            inner: Mutex::new(reader),
            views,
        })
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<(&'static str, ArrowBatch)>> {
        let mut guard = lock(&self.inner);
        let r: &mut columns::ColumnReader = &mut guard;
        let next = py
            .allow_threads(|| r.next_batch())
            .map_err(|e| archive_err(&e))?;
        Ok(next.map(|(kind, data)| {
            (
                kind.as_str(),
                ArrowBatch {
                    kind,
                    views: self.views,
                    rows: data.len,
                    data: Mutex::new(Some(data)),
                },
            )
        }))
    }

    /// One per file that lost content or was skipped, so far.
    #[getter]
    fn warnings(&self) -> Vec<ReadWarning> {
        lock(&self.inner)
            .warnings()
            .iter()
            .map(ReadWarning::from)
            .collect()
    }

    /// What was read so far: lines per subject kind, lines that gave no
    /// row, and per kind the rows, first/last `rx`, first/last venue `seq`
    /// and smallest/largest stream sequence.
    fn figures<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let mut r = lock(&self.inner);
        let f = r.figures();
        let d = PyDict::new(py);
        d.set_item("lines", f.lines.clone())?;
        d.set_item("lines_without_rows", f.lines_without_rows.clone())?;
        d.set_item("rx_out_of_range", f.rx_out_of_range)?;
        let kinds = PyDict::new(py);
        for (k, v) in &f.kinds {
            let e = PyDict::new(py);
            e.set_item("rows", v.rows)?;
            e.set_item("rx", v.rx)?;
            e.set_item("seq", v.seq)?;
            e.set_item("stream_seq", v.stream_seq)?;
            kinds.set_item(k.as_str(), e)?;
        }
        d.set_item("kinds", kinds)?;
        Ok(d)
    }
}
