//! Raising the Python exception tree of `ssmd.errors` from Rust (cold path).
use pyo3::prelude::*;

/// Build an instance of `ssmd.errors.<name>` with `message`.
#[cold]
pub fn ssmd_error(py: Python<'_>, name: &str, message: String) -> PyErr {
    match py
        .import("ssmd.errors")
        .and_then(|m| m.getattr(name))
        .and_then(|cls| cls.call1((message.clone(),)))
    {
        Ok(instance) => PyErr::from_value(instance),
        Err(_) => pyo3::exceptions::PyRuntimeError::new_err(message),
    }
}
