//! Raising core errors as the exception classes of `ssmd.errors` (cold path).
//!
//! The classes are defined once, in Python; each is imported the first time
//! it is needed and cached (`import_exception!`). A class missing from
//! `ssmd.errors` fails loudly at that import, never falling back to another
//! exception; `error_classes()` resolves every one so a test can check them.
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyType};
use pyo3::PyTypeInfo;

use crate::archive::ArchiveError;
use crate::error::{Error, ErrorClass};

pyo3::import_exception!(ssmd.errors, ConfigError);
pyo3::import_exception!(ssmd.errors, ParseError);
pyo3::import_exception!(ssmd.errors, SinkError);

/// The Python class of an error class.
fn class_object(py: Python<'_>, c: ErrorClass) -> Bound<'_, PyType> {
    match c {
        ErrorClass::Config => ConfigError::type_object(py),
        ErrorClass::Parse => ParseError::type_object(py),
        ErrorClass::Sink => SinkError::type_object(py),
        ErrorClass::Type => PyTypeError::type_object(py),
    }
}

impl From<Error> for PyErr {
    #[cold]
    fn from(e: Error) -> PyErr {
        Python::with_gil(|py| PyErr::from_type(class_object(py, e.class()), e.to_string()))
    }
}

/// An archive error as its Python exception.
#[cold]
pub fn archive_err(e: &ArchiveError) -> PyErr {
    Error::from_archive(e).into()
}

/// `{variant class name: the Python class it is raised as}` for every class.
#[pyfunction]
pub fn error_classes(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    for c in ErrorClass::ALL {
        d.set_item(c.python_name(), class_object(py, c))?;
    }
    Ok(d)
}
